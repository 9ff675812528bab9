"""The dev stack's generated Prometheus config: every stack process scraped, the rules loaded."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest

from devstack import prometheus
from devstack.config import PORTS, StackConfig


def config() -> StackConfig:
    return StackConfig(data_dir=Path("/nonexistent"), ports={name: 20000 + i for i, name in enumerate(PORTS)})


def test_scrapes_every_metrics_target_and_loads_the_rules() -> None:
    rendered = prometheus.render_config(config())
    static = [c for c in rendered["scrape_configs"] if "static_configs" in c]
    jobs = {c["job_name"]: c["static_configs"][0]["targets"] for c in static}
    assert jobs == {job: [target] for job, target in config().metrics_targets().items()}
    [pattern] = rendered["rule_files"]
    assert glob.glob(pattern), f"no rule files match {pattern}"


def test_a_server_run_elsewhere_is_not_scraped() -> None:
    rendered = prometheus.render_config(config(), skip_jobs=("temporal",))
    assert "temporal" not in {c["job_name"] for c in rendered["scrape_configs"]}


def test_extra_targets_are_discovered_from_files(tmp_path: Path) -> None:
    stack_config = StackConfig(data_dir=tmp_path, ports=config().ports)
    [extra] = [c for c in prometheus.render_config(stack_config)["scrape_configs"] if "file_sd_configs" in c]
    [pattern] = extra["file_sd_configs"][0]["files"]
    path = prometheus.add_targets(stack_config, "drill", {"agent-worker-v1": "127.0.0.1:9001"})
    assert glob.glob(pattern) == [str(path)]
    assert json.loads(path.read_text()) == [{"targets": ["127.0.0.1:9001"], "labels": {"job": "agent-worker-v1"}}]
    prometheus.remove_targets(stack_config, "drill")
    assert glob.glob(pattern) == []


def test_the_discovery_directory_exists_before_prometheus_starts(tmp_path: Path) -> None:
    """Prometheus cannot watch a missing directory: it would log an error every refresh."""
    if prometheus.binary() is None:
        pytest.skip("Debian's prometheus is not installed (make prometheus): no process spec to write")
    stack_config = StackConfig(data_dir=tmp_path, ports=config().ports)
    assert prometheus.spec(stack_config) is not None
    assert prometheus.targets_dir(stack_config).is_dir()
