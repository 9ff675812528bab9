"""The Temporal server holds ciphertext only; authorised readers still see plain data.

Runs against the session stack after real work (system checks, a failing workflow): reads
histories with a client that has NO codec, and the server's SQLite file byte for byte.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid

import pytest
from harness import client_for, codec_server_decode
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.system_check import SYSTEM_PROMPT, SystemCheckInput, SystemCheckWorkflow
from devstack.config import NAMESPACES
from devstack.stack import Stack
from devstack.temporal_setup import temporal_cli
from keyops.history import iter_payloads, walk_payloads

KNOWN_DOCUMENT_TEXT = "refunds any item returned within 30 days"
MISSING_ORDER = "ORD-4040"


@pytest.fixture(scope="module")
async def workload(stack: Stack) -> dict[str, str]:
    """One successful system check and one that fails (unknown order) with a known message."""
    client = await client_for(stack, "agents")
    ok_id = f"at-rest-ok-{uuid.uuid4().hex[:8]}"
    await client.execute_workflow(
        SystemCheckWorkflow.run,
        SystemCheckInput(question="How long does a refund take?", order_id="ORD-1005", refund_cents=100),
        id=ok_id,
        task_queue=AGENT_TASK_QUEUE,
    )
    failed_id = f"at-rest-failed-{uuid.uuid4().hex[:8]}"
    with pytest.raises(WorkflowFailureError) as failure:
        await client.execute_workflow(
            SystemCheckWorkflow.run,
            SystemCheckInput(question="Where is my order?", order_id=MISSING_ORDER, refund_cents=100),
            id=failed_id,
            task_queue=AGENT_TASK_QUEUE,
        )
    # With the codec, the failure reads in plain text, all the way down to the handler's message.
    cause = failure.value.cause
    messages = []
    while cause is not None:
        messages.append(str(cause))
        cause = cause.__cause__
    assert any(f"order {MISSING_ORDER} does not exist" in m for m in messages), messages
    return {"ok": ok_id, "failed": failed_id}


async def _raw_histories(stack: Stack, namespace: str):
    raw = await Client.connect(stack.temporal_address, namespace=namespace)  # no codec on purpose
    async for execution in raw.list_workflows():
        yield execution.id, await raw.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()


async def test_every_payload_in_every_namespace_is_encrypted(stack: Stack, workload: dict[str, str]) -> None:
    checked = 0
    for namespace in NAMESPACES:
        async for workflow_id, history in _raw_histories(stack, namespace):
            for found in walk_payloads(history.events):
                if found.plain_by_design:
                    continue
                payload = found.payload
                encoding = payload.metadata.get("encoding", b"").decode()
                assert encoding == "binary/encrypted", f"{namespace}/{workflow_id}: a {encoding!r} payload"
                checked += 1
            for event in history.events:
                failure = None
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
                    failure = event.workflow_execution_failed_event_attributes.failure
                if failure is not None:
                    assert failure.message == "Encoded failure" and failure.stack_trace == ""
                    assert failure.HasField("encoded_attributes")
    assert checked > 20  # the workload crossed every namespace


def test_server_database_holds_no_plaintext(stack: Stack, workload: dict[str, str]) -> None:
    files = [p for p in stack.config.data_dir.glob("temporal.sqlite*") if p.is_file()]
    assert files, "the dev server keeps its state in temporal.sqlite"
    data = b"".join(p.read_bytes() for p in files)
    assert workload["ok"].encode() in data  # ids are not payloads: proves we read the right file
    for plaintext in (SYSTEM_PROMPT, KNOWN_DOCUMENT_TEXT, f"order {MISSING_ORDER} does not exist", "Ada Lovelace"):
        assert plaintext.encode() not in data, f"plaintext {plaintext!r} found in the server's database"


async def test_histories_decode_through_the_codec_server(stack: Stack, workload: dict[str, str]) -> None:
    raw = await Client.connect(stack.temporal_address, namespace="agents")
    history = await raw.get_workflow_handle(workload["ok"]).fetch_history()
    status, body = codec_server_decode(stack, "agents", list(iter_payloads(history.events)))
    assert status == 200, body
    decoded = json.loads(body)["payloads"]
    token = stack.codec_tokens.auditor_token_file.read_text().strip()
    texts = [base64.b64decode(p["data"]).decode("utf-8", "replace") for p in decoded]
    assert all(base64.b64decode(p["metadata"]["encoding"]) == b"json/plain" for p in decoded)
    assert any("How long does a refund take?" in t for t in texts)
    assert any("refunded_cents" in t and "ORD-1005" in t for t in texts)  # the business hop's result
    audit = (stack.config.log_dir / "codec-audit.jsonl").read_text()
    assert "local-auditor" in audit and token not in audit
    assert "How long does a refund take?" not in audit  # who and what, never the plaintext


def test_cli_shows_decoded_history_through_the_codec_endpoint(stack: Stack, workload: dict[str, str]) -> None:
    token = stack.codec_tokens.developer_token_file.read_text().strip()
    base = [
        temporal_cli(),
        "workflow",
        "show",
        "--address",
        stack.temporal_address,
        "--namespace",
        "agents",
        "--workflow-id",
        workload["ok"],
        "--output",
        "json",
    ]
    plain = subprocess.run(base, capture_output=True, text=True, timeout=30, check=True).stdout
    # The CLI prints metadata values base64-encoded.
    encrypted = base64.b64encode(b"binary/encrypted").decode()
    assert "How long does a refund take?" not in plain and encrypted in plain
    decoded = subprocess.run(
        [*base, "--codec-endpoint", stack.config.codec_server_url, "--codec-auth", f"Bearer {token}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert decoded.returncode == 0, decoded.stderr
    assert encrypted not in decoded.stdout
    started = json.loads(decoded.stdout)["events"][0]["workflowExecutionStartedEventAttributes"]
    [workflow_input] = started["input"]["payloads"]
    assert base64.b64decode(workflow_input["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(workflow_input["data"]))["question"] == "How long does a refund take?"
