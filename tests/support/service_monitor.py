"""A chart ServiceMonitor endpoint as the scrape job Prometheus Operator would generate, run by a
real Prometheus: what labels the scraped series end up with.

The operator writes each ServiceMonitor endpoint as a scrape job whose relabelling first sets the
target labels it always sets (``namespace`` from ``__meta_kubernetes_namespace``, among others),
then applies the endpoint's own ``relabelings``. Here the Kubernetes discovery is replaced by a
static target carrying the same ``__meta_kubernetes_namespace``; the relabelling is the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from harness import free_ports

# What the operator puts before an endpoint's relabelings, for the label that matters here.
OPERATOR_PREFIX = [{"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"}]


def snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def relabel_configs(endpoint: dict) -> list[dict]:
    """The operator's prefix, then the endpoint's relabelings in Prometheus's own spelling."""
    return OPERATOR_PREFIX + [{snake(k): v for k, v in r.items()} for r in endpoint.get("relabelings", [])]


@contextmanager
def prometheus_scraping(
    binary: str, root: Path, target: str, kubernetes_namespace: str, jobs: dict[str, list[dict]]
) -> Iterator[str]:
    """A Prometheus scraping ``target`` once per job (job name -> relabel_configs); its URL."""
    root.mkdir(parents=True, exist_ok=True)
    static = [{"targets": [target], "labels": {"__meta_kubernetes_namespace": kubernetes_namespace}}]
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": job, "static_configs": static, "relabel_configs": relabel} for job, relabel in jobs.items()
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    [port] = free_ports(1)
    with (root / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def series(base_url: str, expr: str, timeout_s: float = 60) -> list[dict[str, str]]:
    """The label sets of ``expr``'s instant result, once it has any."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            with urllib.request.urlopen(url, timeout=5) as response:
                result = json.load(response)["data"]["result"]
            if result:
                return [r["metric"] for r in result]
        except OSError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus at {base_url} returned nothing for {expr} in {timeout_s}s")
        time.sleep(1)
