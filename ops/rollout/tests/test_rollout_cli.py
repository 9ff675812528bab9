"""The rollout CLI's own logic, without a server: arguments, errors, rollback target, Prometheus.

The drill (tests/integration/test_drill_rollout.py) runs every command against a dev server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.deployment.v1 import RoutingConfig, WorkerDeploymentInfo, WorkerDeploymentVersion

from rollout.cli import main
from rollout.deployment import DeploymentState, Routing, VersionState, previous_current
from rollout.prometheus import _by_build_id, _increase, prometheus_errors


def _summary(build_id: str, last_current: datetime | None) -> WorkerDeploymentInfo.WorkerDeploymentVersionSummary:
    summary = WorkerDeploymentInfo.WorkerDeploymentVersionSummary(
        deployment_version=WorkerDeploymentVersion(deployment_name="d", build_id=build_id)
    )
    if last_current:
        stamp = Timestamp()
        stamp.FromDatetime(last_current)
        summary.last_current_time.CopyFrom(stamp)
    return summary


def _info(current: str, *summaries: WorkerDeploymentInfo.WorkerDeploymentVersionSummary) -> WorkerDeploymentInfo:
    return WorkerDeploymentInfo(
        name="d",
        routing_config=RoutingConfig(
            current_deployment_version=WorkerDeploymentVersion(deployment_name="d", build_id=current)
        ),
        version_summaries=summaries,
    )


def test_rollback_returns_to_the_version_current_most_recently() -> None:
    t = datetime(2026, 11, 23, tzinfo=UTC)
    info = _info(
        "v3",
        _summary("v1", t),
        _summary("v2", t + timedelta(hours=1)),
        _summary("v3", t + timedelta(hours=2)),
        _summary("v4", None),  # ramped once, never current: not a rollback target
    )
    assert previous_current(info) == "v2"
    assert previous_current(_info("v1", _summary("v1", t), _summary("v2", None))) is None


def test_routing_reads_current_and_ramp() -> None:
    config = RoutingConfig(
        current_deployment_version=WorkerDeploymentVersion(deployment_name="d", build_id="v1"),
        ramping_deployment_version=WorkerDeploymentVersion(deployment_name="d", build_id="v2"),
        ramping_version_percentage=30.0,
    )
    routing = Routing.of(WorkerDeploymentInfo(routing_config=config))
    assert routing == Routing("v1", "v2", 30.0)
    assert routing.describe() == "current v1, ramping v2 at 30%"
    assert Routing.of(WorkerDeploymentInfo()).describe() == "current unversioned workers, nothing ramping"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ramp", "v2", "130", "-d", "x"], "the percentage must be between 0 and 100, got 130"),
        (["ramp", "v2", "half", "-d", "x"], "not a percentage: 'half'"),
        (["status", "-d", "x", "--window", "0"], "the window is a whole number of minutes above 0"),
        (["apply", "v1", "--ramp", "v2", "130", "-d", "x"], "--ramp: the percentage must be between 0 and 100"),
        (["apply", "v1", "--ramp", "v2", "some", "-d", "x"], "--ramp: not a percentage: 'some'"),
        (["guard", "-d", "x"], "the following arguments are required: --keep"),
    ],
)
def test_bad_arguments_are_refused_with_a_sentence(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_deployment_and_unreachable_server_exit_1(monkeypatch, capsys) -> None:
    monkeypatch.delenv("TEMPORAL_DEPLOYMENT_NAME", raising=False)
    assert main(["status", "--address", "127.0.0.1:1"]) == 1
    assert "name the deployment with --deployment or TEMPORAL_DEPLOYMENT_NAME" in capsys.readouterr().err
    assert main(["promote", "v2", "-d", "support-agent", "--address", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the Temporal server at 127.0.0.1:1" in err and "Traceback" not in err


def test_prometheus_query_splits_by_build_id() -> None:
    query = _increase(("a_total", "b_total"), 'sup"port', timedelta(minutes=15))
    assert query == 'sum by (build_id) (increase({__name__=~"a_total|b_total", deployment_name="sup\\"port"}[900s]))'


async def test_prometheus_answers_fill_each_version(monkeypatch) -> None:
    answers = {
        "temporal_workflow_completed_total|temporal_workflow_failed_total": {"v1": 90, "v2": 10},
        "temporal_workflow_failed_total": {"v2": 3},
        "temporal_workflow_task_execution_failed_total": {"v2": 30},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        names = query.split('__name__=~"')[1].split('"')[0]
        values = next(v for k, v in answers.items() if names.startswith(k))
        result = [{"metric": {"build_id": b}, "value": [0, str(n)]} for b, n in values.items()]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})

    real_client = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real_client(transport=httpx.MockTransport(handler), **kw))
    state = DeploymentState(
        "agents",
        "d",
        Routing("v1", "v2", 10),
        [VersionState("v1", "current", None, 0), VersionState("v2", "ramping", None, 10)],
    )
    await prometheus_errors(state, "http://prometheus.test", timedelta(minutes=10))
    v1, v2 = state.versions
    assert (v1.failed, v1.closed, v1.error_rate, v1.errors_per_min) == (0, 90, 0, 0)
    assert (v2.failed, v2.closed, v2.error_rate, v2.errors_per_min) == (3, 10, 0.3, 3.0)


async def test_prometheus_errors_are_one_sentence() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=json.dumps({"status": "error", "error": "parse error"}))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(Exception, match="answered HTTP 400 to a query; check PROMETHEUS_URL"):
            await _by_build_id(http, "http://prometheus.test", "up")
