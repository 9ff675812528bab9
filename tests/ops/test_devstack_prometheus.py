"""The dev stack's generated Prometheus config: every stack process scraped, the rules loaded."""

from __future__ import annotations

import glob
from pathlib import Path

from devstack import prometheus
from devstack.config import PORTS, StackConfig


def config() -> StackConfig:
    return StackConfig(data_dir=Path("/nonexistent"), ports={name: 20000 + i for i, name in enumerate(PORTS)})


def test_scrapes_every_metrics_target_and_loads_the_rules() -> None:
    rendered = prometheus.render_config(config())
    jobs = {c["job_name"]: c["static_configs"][0]["targets"] for c in rendered["scrape_configs"]}
    assert jobs == {job: [target] for job, target in config().metrics_targets().items()}
    [pattern] = rendered["rule_files"]
    assert glob.glob(pattern), f"no rule files match {pattern}"


def test_a_server_run_elsewhere_is_not_scraped() -> None:
    rendered = prometheus.render_config(config(), skip_jobs=("temporal",))
    assert "temporal" not in {c["job_name"] for c in rendered["scrape_configs"]}
