"""A payload under a key the worker does not have: a visible, named failure; no crash; no lost work."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import urllib.request
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agent.queues import AGENT_TASK_QUEUE
from agent.testing import restart
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow
from devstack.stack import Stack
from payload_codec import FileKeySource, KeyRing, data_converter


def _ready(stack: Stack, port_name: str) -> bool:
    url = f"http://{stack.config.host}:{stack.config.ports[port_name]}/readyz"
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


async def _first_workflow_task_failure(client: Client, workflow_id: str):
    for _ in range(150):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id}: no workflow task failure recorded")


async def test_unknown_key_fails_the_task_visibly_and_the_workflow_resumes_with_the_key(stack: Stack) -> None:
    ring_path = stack.config.keyring_path
    document = json.loads(ring_path.read_text())
    new_id = f"k-not-yet-deployed-{secrets.token_hex(3)}"
    new_material = base64.b64encode(secrets.token_bytes(32)).decode()
    # A client that already encrypts with a key the workers have not been given yet.
    ahead = KeyRing.from_document(
        {"keys": {**document["keys"], new_id: new_material}, "active": {**document["active"], "agents": new_id}},
        source="test",
    )
    client = await Client.connect(
        stack.temporal_address, namespace="agents", data_converter=data_converter(ahead, "agents")
    )
    workflow_id = f"missing-key-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        SystemCheckWorkflow.run,
        SystemCheckInput(question="Is my refund coming?", order_id="ORD-1004", refund_cents=100),
        id=workflow_id,
        task_queue=AGENT_TASK_QUEUE,
    )

    failure = await _first_workflow_task_failure(client, workflow_id)
    assert failure.message == "Encoded failure"  # the worker encrypted its own error report
    decoded = await client.data_converter.decode_failure(failure)
    assert f'unknown encryption key id "{new_id}"' in str(decoded)
    assert new_material not in str(decoded)
    assert _ready(stack, "agent_worker"), "the agent worker must survive an undecodable payload"

    # Supply the key (decrypt only; the active key stays), restart the workers: the workflow goes on.
    document["keys"][new_id] = new_material
    ring_path.write_text(json.dumps(document))
    os.chmod(ring_path, 0o600)
    restart(stack, "agent-worker")
    result = await asyncio.wait_for(handle.result(), timeout=90)
    assert result.order.order_id == "ORD-1004" and result.refund.status == "completed"
    assert FileKeySource(ring_path).load().key(new_id)  # the ring now holds it
