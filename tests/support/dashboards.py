"""The Grafana dashboards' queries as a real Prometheus answers them: each query with Grafana's
variables expanded as Grafana would, asked of the Prometheus a test stack started.

``tests/integration/test_dashboards_and_alerts.py`` checks every panel against the default stack;
panels whose series only another stack produces are listed in :data:`OTHER_STACKS` with the test
that checks them there."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator

import pytest

from devstack import prometheus
from devstack.config import REPO_ROOT
from devstack.stack import Stack

DASHBOARDS = sorted((REPO_ROOT / "ops" / "grafana" / "dashboards").glob("*.json"))
# Grafana's variables, as Grafana would expand them for a 1h dashboard on a 2s scrape.
# The pickers at "All" (".*", which also matches a series without the label).
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "${datasource}": "",
    "$datasource": "",
    "$job": ".*",
    "$namespace": ".*",
    "$task_queue": ".*",
    "$build_id": ".*",
}
S3_BLOB_PANELS = (("overview.json", "S3 blob store requests"), ("overview.json", "S3 blob store request latency"))
# (dashboard file, panel title) -> the test that sees its data, on a stack of its own.
OTHER_STACKS: dict[tuple[str, str], str] = dict.fromkeys(
    S3_BLOB_PANELS,
    "tests/integration/test_agent_s3_blobs.py: the default stack keeps blobs in a directory, which counts no requests",
)


def panel_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every panel."""
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                yield path.name, panel["title"], target["expr"]


def expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def query(stack: Stack, expr: str) -> list[dict]:
    """The instant-query result; a PromQL error fails with Prometheus's own message."""
    url = f"{prometheus.url(stack.config)}/api/v1/query?" + urllib.parse.urlencode({"query": expand(expr)})
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.load(response)
    except urllib.error.HTTPError as err:
        pytest.fail(f"Prometheus rejected {expr!r}: {err.read().decode()}")
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for_panel_data(stack: Stack, panels: Iterable[tuple[str, str]], timeout_s: float = 60) -> None:
    """Until every query of ``panels`` returns data (the series need a scrape or two to show in
    a rate); fails naming the queries still empty."""
    wanted = set(panels)
    queries = [(d, t, e) for d, t, e in panel_queries() if (d, t) in wanted]
    assert {(d, t) for d, t, _ in queries} == wanted, f"no such panels: {wanted - {(d, t) for d, t, _ in queries}}"
    deadline = time.monotonic() + timeout_s
    while empty := [f"{d} / {t}: {e}" for d, t, e in queries if not query(stack, e)]:
        assert time.monotonic() < deadline, "panel queries without data:\n" + "\n".join(empty)
        time.sleep(2)
