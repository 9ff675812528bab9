"""Bad input gets one clear sentence and leaves the conversation running and unchanged."""

from __future__ import annotations

import random
import string
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from agent.chat.client import EXIT_REJECTED, EXIT_UNKNOWN_CONVERSATION, ChatError, Conversations
from agent.queues import AGENT_TASK_QUEUE
from agent.support.types import ConversationSettings, ConversationStart
from agent.workflows.support_agent import SupportAgentWorkflow


@pytest.fixture
def conversations(agents_client: Client) -> Conversations:
    return Conversations(agents_client)


async def rejected(call: object) -> str:
    with pytest.raises(ChatError) as info:
        await call  # type: ignore[misc]
    assert info.value.exit_code == EXIT_REJECTED, info.value.message
    assert "\n" not in info.value.message
    return info.value.message


async def test_refused_messages_and_decisions_leave_the_conversation_as_it_was(
    conversations: Conversations, agents_client: Client
) -> None:
    cid = await conversations.start(ConversationStart(customer_id="cust-ada"), f"test-bad-{uuid.uuid4().hex[:10]}")
    handle = agents_client.get_workflow_handle(cid)

    assert "the message is empty" in await rejected(conversations.send(cid, ""))
    assert "the message is empty" in await rejected(conversations.send(cid, " \n\t "))
    # 1 MB of text that does not compress: refused by the validator, never written to history.
    megabyte = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=1024 * 1024))
    message = await rejected(conversations.send(cid, megabyte))
    assert "the message is 1.0 MiB, more than the 8 KiB this conversation accepts" in message
    assert "no approval 'APR-9'" in await rejected(conversations.decide(cid, "APR-9", approve=True, approver="lead"))

    # Malformed payloads (not what the update's type says) are refused the same way.
    for update, argument in (
        ("send_message", {"txt": "hello"}),
        ("send_message", "just a string"),
        ("send_message", {"text": 42}),
        ("decide_approval", {"approval_id": "APR-1"}),
        ("no_such_update", {"text": "hello"}),
    ):
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(update, argument)

    # None of it reached the conversation or its history; it still answers.
    status = await conversations.status(cid)
    assert status.turns == 0 and not status.ended
    history = await handle.fetch_history()
    written = {EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events}
    # Only the start, workflow tasks (a busy machine may time one out) and the idle timer:
    # no update, activity, marker or Nexus event.
    assert not {t for t in written if t.startswith(("WORKFLOW_EXECUTION_UPDATE", "ACTIVITY", "MARKER", "NEXUS"))}
    assert sum(e.ByteSize() for e in history.events) < 20_000
    reply = await conversations.send(cid, "Hello")
    assert reply.turn == 1 and reply.error is None
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    # Once ended, the conversation refuses messages with a sentence that says so.
    summary = await conversations.end(cid, "test over")
    assert summary.turns == 1 and summary.end_reason == "test over"
    message = await rejected(conversations.send(cid, "Hello?"))
    assert f"conversation {cid} has ended (completed)" in message
    assert "has ended" in await rejected(conversations.end(cid))
    # Queries still read an ended conversation.
    assert (await conversations.status(cid)).ended


async def test_unknown_conversation(conversations: Conversations) -> None:
    for call in (
        conversations.send("test-no-such-conversation", "Hello"),
        conversations.status("test-no-such-conversation"),
        conversations.decide("test-no-such-conversation", "APR-1", approve=True, approver="lead"),
    ):
        with pytest.raises(ChatError) as info:
            await call
        assert info.value.exit_code == EXIT_UNKNOWN_CONVERSATION
        assert info.value.message == (
            "there is no conversation test-no-such-conversation; start one with `agent chat start`"
        )


async def test_conversation_ids_are_not_reused(conversations: Conversations) -> None:
    cid = await conversations.start(ConversationStart(customer_id="cust-ada"), f"test-bad-{uuid.uuid4().hex[:10]}")
    with pytest.raises(ChatError) as info:
        await conversations.start(ConversationStart(customer_id="cust-ada"), cid)
    assert info.value.exit_code == EXIT_REJECTED and "exists already" in info.value.message
    await conversations.end(cid)


async def test_invalid_settings_fail_the_start_with_every_problem(agents_client: Client) -> None:
    settings = ConversationSettings(approval_threshold_cents=-1, max_message_bytes=10**7)
    with pytest.raises(WorkflowFailureError) as info:
        await agents_client.execute_workflow(
            SupportAgentWorkflow.run,
            ConversationStart(settings=settings, customer_id="cust-ada"),
            id=f"test-bad-{uuid.uuid4().hex[:10]}",
            task_queue=AGENT_TASK_QUEUE,
        )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidSettings"
    assert "approval_threshold_cents must not be negative" in cause.message
    assert "max_message_bytes must be between 1 and 65536" in cause.message


async def test_a_conversation_without_an_identity_is_refused(
    conversations: Conversations, agents_client: Client
) -> None:
    cid = f"test-bad-{uuid.uuid4().hex[:10]}"
    with pytest.raises(ChatError) as refused:
        await conversations.start(ConversationStart(customer="Mallory"), cid)
    assert refused.value.exit_code == EXIT_REJECTED
    assert refused.value.message.startswith("a conversation acts for one customer")
    # Started around the client, the workflow itself refuses: it fails at once, nothing done.
    handle = await agents_client.start_workflow(
        SupportAgentWorkflow.run, ConversationStart(customer="Mallory"), id=cid, task_queue=AGENT_TASK_QUEUE
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "no customer_id: a conversation acts for an authenticated customer" in str(failed.value.cause)
