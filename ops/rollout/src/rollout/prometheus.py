"""Error rate per version from Prometheus: the SDK's failure counters split by ``build_id``.

Workers started with ``TEMPORAL_WORKER_BUILD_ID`` and ``TEMPORAL_DEPLOYMENT_NAME`` put both on
every series they export (workerkit/metrics.py, the Go worker's metrics package), so one query
per counter covers every version of the deployment.
"""

from __future__ import annotations

from datetime import timedelta

import httpx

from rollout.deployment import DeploymentState
from rollout.errors import RolloutError

# Workflow executions that ended, and those that ended badly.
CLOSED = ("temporal_workflow_completed_total", "temporal_workflow_failed_total")
FAILED = ("temporal_workflow_failed_total",)
# Failures that do not end a workflow but show a broken build first: workflow tasks that throw
# (a non-determinism error, say) and failed activity attempts.
ERRORS = (
    "temporal_workflow_task_execution_failed_total",
    "temporal_activity_execution_failed_total",
    "temporal_workflow_failed_total",
)


def _increase(metrics: tuple[str, ...], deployment: str, window: timedelta) -> str:
    seconds = max(int(window.total_seconds()), 60)
    name = deployment.replace("\\", "\\\\").replace('"', '\\"')
    # One selector over several counter names keeps each series apart (``or`` would merge
    # series whose labels match); a version without any series counts as zero below.
    names = "|".join(metrics)
    selector = f'{{__name__=~"{names}", deployment_name="{name}"}}'
    return f"sum by (build_id) (increase({selector}[{seconds}s]))"


async def _by_build_id(http: httpx.AsyncClient, base_url: str, query: str) -> dict[str, float]:
    try:
        response = await http.get(f"{base_url.rstrip('/')}/api/v1/query", params={"query": query})
    except httpx.HTTPError as err:
        raise RolloutError(f"cannot query Prometheus at {base_url} ({err}); check PROMETHEUS_URL") from None
    if response.status_code != 200:
        raise RolloutError(
            f"Prometheus at {base_url} answered HTTP {response.status_code} to a query; check PROMETHEUS_URL"
        )
    body = response.json()
    if body.get("status") != "success":
        raise RolloutError(f"Prometheus at {base_url} rejected a query: {body.get('error', 'no reason given')}")
    return {r["metric"].get("build_id", ""): float(r["value"][1]) for r in body["data"]["result"]}


async def prometheus_errors(state: DeploymentState, base_url: str, window: timedelta) -> None:
    """Fill in failed / closed workflows and errors per minute for each version of ``state``."""
    async with httpx.AsyncClient(timeout=10) as http:
        closed = await _by_build_id(http, base_url, _increase(CLOSED, state.name, window))
        failed = await _by_build_id(http, base_url, _increase(FAILED, state.name, window))
        errors = await _by_build_id(http, base_url, _increase(ERRORS, state.name, window))
    minutes = window.total_seconds() / 60
    for version in state.versions:
        version.closed = closed.get(version.build_id, 0.0)
        version.failed = failed.get(version.build_id, 0.0)
        version.errors_per_min = errors.get(version.build_id, 0.0) / minutes
        version.error_source = "prometheus"
