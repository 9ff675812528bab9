"""Every dashboard query and alert expression, evaluated by a real Prometheus scraping a real stack.

The stack (tests/harness.py) starts its own Prometheus with the generated scrape config and the
alert rules. The test runs the demo (ingestion, a scripted conversation with an approval) with
model faults injected, calls the codec server as the UI does (once with a tampered payload, once
without a token), then asks Prometheus's HTTP API for every query: each must parse, and each panel
query must return data, except the few listed in FAILURE_ONLY with the reason they cannot and
those another stack's test checks (support.dashboards.OTHER_STACKS).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
import yaml
from harness import client_for, running_stack
from support.dashboards import OTHER_STACKS, panel_queries, query
from temporalio import workflow
from temporalio.exceptions import NexusOperationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from devstack import prometheus
from devstack.config import REPO_ROOT
from devstack.stack import Stack
from nexus_contracts.retrieval import DEFAULT_ENDPOINT, RetrievalService, SearchRequest

pytestmark = pytest.mark.skipif(
    prometheus.binary() is None, reason="prometheus is not installed and `make prometheus` could not install it"
)

RULE_FILES = sorted((REPO_ROOT / "ops" / "prometheus" / "rules").glob("*.yaml"))

# Counted when a worker's long poll returns empty: only after the queues were idle for a while.
IDLE_ONLY = ("temporal_workflow_task_queue_poll_empty_total", "temporal_activity_poll_no_task_total")
# (dashboard file, panel title) -> why it can have no data even after the fault run below.
# Empty today: every panel that needs a failure is exercised there (EXERCISED_FAULTS).
FAILURE_ONLY: dict[tuple[str, str], str] = {}
# Failure-only panels the fault run below does exercise (and so must show data).
EXERCISED_FAULTS = {
    ("overview.json", "Workflow failures"): "a system check for an order that does not exist",
    ("nexus.json", "Caller: outbound request errors"): "the same check: get_order answers not-found",
    ("nexus.json", "Handler: task failures"): "the same check: the business handler fails the task",
    ("nexus.json", "Handler: errors by operation"): (
        "the same check (business get_order not_found) and the bad search mode (retrieval search bad_request)"
    ),
    ("retrieval.json", "Retrieval errors"): "a search with a mode the retrieval service does not know",
    ("codec.json", "Codec failures"): "a tampered payload sent to the codec server",
    ("overview.json", "Guardrail refusals"): "a conversation for Grace asking for Ada's order ORD-1001",
    ("codec.json", "Codec server auth failures"): "a codec server request with a token nobody issued",
}


def alert_expressions() -> Iterator[tuple[str, str]]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield rule["alert"], rule["expr"]


def post(url: str, body: object, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def run_cli(stack: Stack, *args: str, exit_code: int = 0) -> None:
    env = {**os.environ, **stack.client_env()}
    result = subprocess.run(
        [sys.executable, "-m", "agent", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == exit_code, f"agent {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"


async def codec_server_traffic(stack: Stack) -> None:
    """A decode as the Temporal UI makes it, the same payload tampered, and one with a token nobody issued."""
    client = await client_for(stack, "agents")
    [payload] = await client.data_converter.encode(["dashboards test"])
    metadata = {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()}
    tampered = bytes([payload.data[0], payload.data[1], payload.data[2] ^ 0xFF]) + payload.data[3:]
    token = stack.codec_tokens.auditor_token_file.read_text().strip()
    url = f"{stack.config.codec_server_url}/agents/decode"

    def body(data: bytes) -> dict:
        return {"payloads": [{"metadata": metadata, "data": base64.b64encode(data).decode()}]}

    assert post(url, body(payload.data), {"Authorization": f"Bearer {token}"}) == 200
    assert post(url, body(tampered), {"Authorization": f"Bearer {token}"}) >= 400
    assert post(url, body(payload.data), {"Authorization": "Bearer not-a-codec-token"}) == 401


@workflow.defn(sandboxed=False)
class BadSearchWorkflow:
    """A search the Go handler rejects as a bad request (retrieval_errors_total counts it)."""

    @workflow.run
    async def run(self, collection: str) -> str:
        client = workflow.create_nexus_client(service=RetrievalService, endpoint=DEFAULT_ENDPOINT)
        try:
            await client.execute_operation(
                RetrievalService.search,
                SearchRequest(query="refund", collection=collection, top_k=3, mode="no-such-mode"),
                schedule_to_close_timeout=timedelta(seconds=30),
            )
        except NexusOperationError as err:
            return str(err.cause)
        return "accepted"


async def bad_search(stack: Stack) -> None:
    client = await client_for(stack, "agents")
    async with Worker(
        client,
        task_queue="dashboards-probe",
        workflows=[BadSearchWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        outcome = await client.execute_workflow(
            BadSearchWorkflow.run, "kb", id="dashboards-bad-search", task_queue="dashboards-probe"
        )
    assert outcome != "accepted"


@pytest.fixture(scope="module")
def scraped_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("dashboards")) as stack:
        faults = f"http://{stack.config.host}:{stack.config.ports['model_server']}/admin/faults"
        # One 429 and one 503 that the activity retries through, so the outcome split has data.
        assert (
            post(
                faults,
                [
                    {"kind": "rate_limit", "retry_after": 0.1, "times": 1},
                    {"kind": "server_error", "status": 503, "times": 1},
                ],
            )
            == 200
        )
        run_cli(stack, "check", "--workflow-id", "dashboards-check")
        run_cli(stack, "demo")
        # An order the business worker does not know: its Nexus handler answers not-found and
        # the check workflow fails (exit 1), the failure panels' one planned failure.
        run_cli(stack, "check", "--order", "ORD-MISSING", "--workflow-id", "dashboards-check-fails", exit_code=1)
        asyncio.run(codec_server_traffic(stack))
        asyncio.run(bad_search(stack))
        # Another customer's order: refused below the model, counted by the agent and the business worker.
        run_cli(stack, "chat", "start", "--customer-id", "cust-grace", "--id", "dashboards-guardrail")
        run_cli(stack, "chat", "send", "dashboards-guardrail", "Please look up order ORD-1001")
        # Empty polls exist only once a long poll has returned without a task (about a minute of
        # idle queue), so wait for them; by then every counter has many samples in the window.
        deadline = time.monotonic() + 180
        while not all(query(stack, f"{name}{{job!='temporal'}}") for name in IDLE_ONLY):
            assert time.monotonic() < deadline, f"no worker reported {IDLE_ONLY} within 180s"
            time.sleep(5)
        time.sleep(6)
        yield stack


def test_every_alert_expression_parses(scraped_stack: Stack) -> None:
    names = [name for name, expr in alert_expressions() if query(scraped_stack, expr) is not None]
    assert len(names) >= 10


def test_prometheus_loaded_the_rules_and_scrapes_every_target(scraped_stack: Stack) -> None:
    with urllib.request.urlopen(f"{prometheus.url(scraped_stack.config)}/api/v1/rules", timeout=10) as response:
        loaded = {r["name"] for g in json.load(response)["data"]["groups"] for r in g["rules"]}
    assert loaded == {name for name, _ in alert_expressions()}
    up = {r["metric"]["job"]: r["value"][1] for r in query(scraped_stack, "up")}
    assert up == {job: "1" for job in scraped_stack.config.metrics_targets()}


def test_every_panel_query_returns_data(scraped_stack: Stack) -> None:
    empty = []
    for dashboard, title, expr in panel_queries():
        result = query(scraped_stack, expr)
        if (dashboard, title) in FAILURE_ONLY or (dashboard, title) in OTHER_STACKS:
            continue
        if not result:
            empty.append(f"{dashboard} / {title}: {expr}")
    assert not empty, "panel queries without data after the demo:\n" + "\n".join(empty)


def test_failure_lists_name_real_panels() -> None:
    panels = {(dashboard, title) for dashboard, title, _ in panel_queries()}
    assert set(FAILURE_ONLY) | set(EXERCISED_FAULTS) | set(OTHER_STACKS) <= panels
