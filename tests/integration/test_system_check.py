"""Every hop with real parts: dev server, Go worker binary, Python workers, model server, Nexus."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import nexusrpc
import pytest
from support.probe_workflows import CallMissingOperationWorkflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import NexusOperationError
from temporalio.worker import Worker

from agent.queues import AGENT_TASK_QUEUE
from agent.testing import ledger
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow
from devstack.stack import Stack


def _ledger(stack: Stack) -> list[dict]:
    return ledger(f"http://{stack.config.host}:{stack.config.ports['model_server']}")


async def test_system_check_crosses_every_hop(stack: Stack, agents_client: Client) -> None:
    workflow_id = f"test-system-check-{uuid.uuid4().hex[:8]}"
    calls_before = len(_ledger(stack))
    result = await agents_client.execute_workflow(
        SystemCheckWorkflow.run,
        SystemCheckInput(question="How long does a refund take?", order_id="ORD-1001", refund_cents=300),
        id=workflow_id,
        task_queue=AGENT_TASK_QUEUE,
    )
    # Go retrieval worker, through the retrieval endpoint: a ranked hit from the ingested knowledge base.
    assert result.search.total_documents >= 3
    assert result.search.hits and result.search.hits[0].doc_id == "refund-policy"
    # Business worker: the lookup and the workflow-run refund, keyed on this workflow's id.
    assert result.order.order_id == "ORD-1001" and result.order.customer == "Ada Lovelace"
    assert result.refund.amount_cents == 300 and result.refund.status == "completed"
    assert result.refund.idempotency_key == f"{workflow_id}/refund"
    # Model activity through the openai client against the offline model server.
    assert result.answer.content and result.answer.usage.total_tokens > 0
    assert result.hops == ["retrieval.search", "business.get_order", "business.refund", "llm.chat_completion"]
    new_calls = _ledger(stack)[calls_before:]
    # The question's embedding (hybrid search), then the answer: both keyed on this workflow.
    assert [(c["request_key"].split("/")[0], c["endpoint"]) for c in new_calls] == [
        (workflow_id, "embeddings"),
        (workflow_id, "chat.completions"),
    ]
    assert result.search.mode == "hybrid"

    # The Nexus refund ran a workflow in the business namespace, visible there.
    business = await Client.connect(stack.temporal_address, namespace="business")
    refunds = [w async for w in business.list_workflows("WorkflowType = 'RefundWorkflow'")]
    assert any(workflow_id in w.id for w in refunds)


async def test_refund_is_not_repeated_when_the_check_runs_again(stack: Stack, agents_client: Client) -> None:
    workflow_id = f"test-idempotent-{uuid.uuid4().hex[:8]}"
    check = SystemCheckInput(question="refund?", order_id="ORD-1002", refund_cents=100)
    runs = [
        await agents_client.execute_workflow(
            SystemCheckWorkflow.run, check, id=workflow_id, task_queue=AGENT_TASK_QUEUE
        )
        for _ in range(3)
    ]
    # Same workflow id, so the same idempotency key: one refund, reported with the same id.
    assert len({run.refund.refund_id for run in runs}) == 1
    # Each run looks the order up before refunding: only the first run's refund changed it.
    assert [run.order.refunded_cents - runs[0].order.refunded_cents for run in runs] == [0, 100, 100]


async def test_missing_operation_fails_with_typed_nexus_error(stack: Stack, agents_client: Client) -> None:
    task_queue = f"probe-{uuid.uuid4().hex[:8]}"
    async with Worker(agents_client, task_queue=task_queue, workflows=[CallMissingOperationWorkflow]):
        with pytest.raises(WorkflowFailureError) as failure:
            await agents_client.execute_workflow(
                CallMissingOperationWorkflow.run,
                "retrieval",
                id=f"probe-missing-op-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=60),
            )
    cause = failure.value.cause
    assert isinstance(cause, NexusOperationError), repr(cause)
    assert cause.operation == "no_such_operation" and cause.endpoint == "retrieval"
    handler_error = cause.cause
    assert isinstance(handler_error, nexusrpc.HandlerError), repr(handler_error)
    assert handler_error.type == nexusrpc.HandlerErrorType.NOT_FOUND


def test_agent_cli_prints_every_hop(stack: Stack) -> None:
    env = {**os.environ, **stack.client_env()}
    done = subprocess.run(
        [sys.executable, "-m", "agent", "check", "--order", "ORD-1003", "--refund-cents", "200"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for hop in ("retrieval.search", "business.get_order", "business.refund", "llm.chat_completion", "ORD-1003"):
        assert hop in done.stdout


def test_agent_cli_reports_unreachable_server(stack: Stack) -> None:
    env = {**os.environ, **stack.client_env(), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-m", "agent", "check"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "cannot reach the Temporal server at 127.0.0.1:1" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_agent_cli_refuses_to_run_without_keys(stack: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEC_")}
    env.update(TEMPORAL_ADDRESS=stack.temporal_address)
    done = subprocess.run([sys.executable, "-m", "agent", "check"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "payload encryption" in done.stdout and "CODEC_KEYRING_FILE" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
