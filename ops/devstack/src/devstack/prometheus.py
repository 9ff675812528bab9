"""A Prometheus of the stack's own: scrapes every process's /metrics and evaluates the alert rules.

Debian's ``prometheus`` package (``make prometheus``) brings the binary and may register a system
service; the stack never uses that service: it runs its own process with a generated config and
a data directory inside the stack's data dir, on the ``prometheus`` port of StackConfig.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from devstack.config import REPO_ROOT, StackConfig
from devstack.processes import ProcessSpec, http_ok

RULES_DIR = REPO_ROOT / "ops" / "prometheus" / "rules"
INSTALL_HINT = "prometheus is not installed, so the stack runs without it: `make prometheus` installs Debian's package"
# Short, so a test or a demo sees its traffic on the dashboards within seconds.
SCRAPE_INTERVAL = "2s"
EVALUATION_INTERVAL = "5s"


def binary() -> str | None:
    return shutil.which("prometheus")


def url(config: StackConfig) -> str:
    return f"http://{config.host}:{config.ports['prometheus']}"


def config_path(config: StackConfig) -> Path:
    return config.data_dir / "prometheus" / "prometheus.yml"


# Processes started next to the stack's own (a second version of a worker during a rollout drill,
# say) are scraped through file-based discovery: a JSON file per group of targets, picked up
# without restarting Prometheus.
EXTRA_JOB = "extra"
EXTRA_REFRESH = "2s"


def targets_dir(config: StackConfig) -> Path:
    return config.data_dir / "prometheus" / "targets"


def render_config(config: StackConfig, skip_jobs: tuple[str, ...] = ()) -> dict:
    """The scrape config: one job per StackConfig.metrics_targets() entry, the extra targets of
    :func:`add_targets`, and the alert rules. ``skip_jobs``: targets this stack does not run (a
    server someone else runs has its own)."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": EVALUATION_INTERVAL},
        "rule_files": [str(RULES_DIR / "*.yaml")],
        "scrape_configs": [
            *(
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in config.metrics_targets().items()
                if job not in skip_jobs
            ),
            {
                "job_name": EXTRA_JOB,
                "file_sd_configs": [
                    {"files": [str(targets_dir(config) / "*.json")], "refresh_interval": EXTRA_REFRESH}
                ],
            },
        ],
    }


def add_targets(config: StackConfig, group: str, jobs: dict[str, str]) -> Path:
    """Scrape ``jobs`` (job label -> host:port) from now on, under the file ``group``.json.
    Written to a temporary name first: Prometheus must never read half a file."""
    path = targets_dir(config) / f"{group}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps([{"targets": [t], "labels": {"job": job}} for job, t in jobs.items()], indent=2))
    staged.replace(path)
    return path


def remove_targets(config: StackConfig, group: str) -> None:
    (targets_dir(config) / f"{group}.json").unlink(missing_ok=True)


def spec(config: StackConfig, skip_jobs: tuple[str, ...] = ()) -> ProcessSpec | None:
    """The Prometheus process, or None when the binary is not installed."""
    exe = binary()
    if exe is None:
        return None
    path = config_path(config)
    # The discovery directory exists from the start: Prometheus cannot watch a missing one (it
    # logs an error every refresh) and would miss targets added later.
    targets_dir(config).mkdir(parents=True, exist_ok=True)
    # JSON is YAML, so the stdlib writes the config without a YAML dependency.
    path.write_text(json.dumps(render_config(config, skip_jobs), indent=2))
    return ProcessSpec(
        name="prometheus",
        argv=[
            exe,
            f"--config.file={path}",
            f"--storage.tsdb.path={path.parent / 'data'}",
            f"--web.listen-address={config.host}:{config.ports['prometheus']}",
            "--storage.tsdb.retention.time=2d",
        ],
        ports=[config.ports["prometheus"]],
        ready=http_ok(f"{url(config)}/-/ready"),
    )
