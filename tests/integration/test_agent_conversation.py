"""Support conversations end to end: the real stack (dev server, Go retrieval worker, business
worker, agent worker), the real ``openai`` client against the model simulator, Nexus tools.

Orders used here (the session shares one business database): ORD-1005 (small refunds).
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from datetime import timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from agent.chat.client import Conversations
from agent.support.types import ConversationSettings, ConversationStart
from agent.testing import at, blob_store, calls_of, ledger, paid_twice
from agent.workflows.support_agent import SupportAgentWorkflow
from devstack.stack import Stack


@pytest.fixture
def conversations(agents_client: Client) -> Conversations:
    return Conversations(agents_client)


def model_server(stack: Stack) -> str:
    return f"http://{stack.config.host}:{stack.config.ports['model_server']}"


def refund_rows(stack: Stack, key: str) -> list[tuple[str, int]]:
    with sqlite3.connect(stack.config.data_dir / "business.sqlite3") as conn:
        return conn.execute("SELECT refund_id, amount_cents FROM refunds WHERE idempotency_key = ?", (key,)).fetchall()


def _payloads(event: HistoryEvent) -> list[Payload]:
    """Every payload an event carries, for the event types a conversation writes."""
    a = event
    found: list[Payload] = []
    found += a.activity_task_scheduled_event_attributes.input.payloads
    found += a.activity_task_completed_event_attributes.result.payloads
    for details in a.marker_recorded_event_attributes.details.values():
        found += details.payloads
    if a.HasField("nexus_operation_scheduled_event_attributes"):
        found.append(a.nexus_operation_scheduled_event_attributes.input)
    if a.HasField("nexus_operation_completed_event_attributes"):
        found.append(a.nexus_operation_completed_event_attributes.result)
    found += a.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads
    found += a.workflow_execution_update_completed_event_attributes.outcome.success.payloads
    return found


async def start(conversations: Conversations, **settings: object) -> str:
    return await conversations.start(
        # ORD-1005 is Edsger's; the conversations here ask about no one else's order.
        ConversationStart(customer="test", settings=ConversationSettings(**settings), customer_id="cust-edsger"),  # type: ignore[arg-type]
        f"test-conv-{uuid.uuid4().hex[:10]}",
    )


async def test_policy_question_is_answered_from_retrieved_passages(stack: Stack, conversations: Conversations) -> None:
    cid = await start(conversations)
    reply = await conversations.send(cid, "How long do refunds take?")

    # The simulator's question fallback called the knowledge tool (Go worker, BM25, via Nexus)
    # and answered from its passages, citing them.
    assert reply.tools_used == ["search_knowledge"] and reply.error is None
    assert "refund-policy" in [c.doc_id for c in reply.citations]
    assert "[refund-policy]" in reply.text
    # Model name and token usage of every call, per reply and in the conversation's totals.
    calls = calls_of(ledger(model_server(stack)), cid)
    assert [c["outcome"] for c in calls] == ["ok", "ok"]
    assert reply.model == "sim-gpt"
    assert reply.usage.total_tokens == sum(c["usage"]["total_tokens"] for c in calls) > 0
    status = await conversations.status(cid)
    assert status.usage.model_calls == 2 and status.usage.calls_by_model == {"sim-gpt": 2}
    assert status.usage.prompt_tokens == sum(c["usage"]["prompt_tokens"] for c in calls)
    assert status.phase == "waiting_for_message" and status.turns == 1
    transcript = await conversations.transcript(cid)
    assert [(e.role, e.turn) for e in transcript.entries] == [("user", 1), ("agent", 1)]
    assert transcript.entries[1].citations == reply.citations


async def test_tool_errors_are_answers_and_repeated_failures_cool_down(
    stack: Stack, conversations: Conversations, agents_client: Client
) -> None:
    # High threshold: refunds go straight to the business service, which judges the amount.
    cid = await start(conversations, tool_failure_limit=2, cooldown_s=2, approval_threshold_cents=1_000_000)

    # Unknown order: both tools fail with NOT_FOUND; the model reads the errors and answers.
    reply = await conversations.send(cid, "Please refund €5 on order ORD-9999")
    assert reply.error is None and reply.tools_used == ["lookup_order", "refund_order"]
    assert 'lookup_order failed: "order ORD-9999 does not exist"' in reply.text
    assert 'refund_order failed: "order ORD-9999 does not exist"' in reply.text
    # Two failures in a row reached the limit: a durable 2 s timer before the next model call.
    first, second = calls_of(ledger(model_server(stack)), cid)
    assert at(second) - at(first) >= timedelta(seconds=2)
    history = await agents_client.get_workflow_handle(cid).fetch_history()
    assert any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)

    # Invalid amount: above the order's total, refused before the business service is asked.
    reply = await conversations.send(cid, "Please refund €500 on order ORD-1005")
    refused = 'refund_order failed: "cannot refund 500.00 EUR on order ORD-1005: the order total is 67.00 EUR'
    assert refused in reply.text, reply.text

    # The conversation goes on: a valid refund below the threshold is made at once, keyed on
    # the conversation and step (lookup and refund per turn: step 6 is the third refund).
    reply = await conversations.send(cid, "Please refund €5 on order ORD-1005")
    assert 'refund_order returned: {"status": "refunded", "refund_id": "RF-' in reply.text
    status = await conversations.status(cid)
    [action] = status.actions
    assert action.kind == "refund" and action.idempotency_key == f"{cid}/step-6"
    assert refund_rows(stack, f"{cid}/step-6") == [(action.ref_id, 500)]
    assert paid_twice(calls_of(ledger(model_server(stack)), cid)) == []


async def test_large_texts_travel_by_reference(
    stack: Stack, conversations: Conversations, agents_client: Client
) -> None:
    cid = await start(conversations, inline_text_limit_bytes=256)
    marker = hashlib.sha256(cid.encode()).hexdigest() * 40  # 2560 characters, unique to this test
    text = f"How long do refunds take? {marker}"
    reply = await conversations.send(cid, text)

    # The model saw the whole message (its answer quotes the start of it) ...
    assert f'Answer to "How long do refunds take? {marker[:60]}' in reply.text
    # ... but history holds it only where it entered: the update that carried it in, and the
    # first model call's result (the simulator repeats the message as the search query; a
    # model's output is bounded by max_tokens and must be in history so it is never paid
    # twice). Every later model call, local activity and Nexus call holds a blob reference
    # (or a bounded prefix, for the search query) instead.
    codec = agents_client.data_converter.payload_codec
    assert codec is not None
    history = await agents_client.get_workflow_handle(cid).fetch_history()
    holders = []
    for event in history.events:
        for payload in await codec.decode(_payloads(event)):
            if marker.encode() in payload.data:
                holders.append(EventType.Name(event.event_type))
    assert sorted(holders) == ["EVENT_TYPE_ACTIVITY_TASK_COMPLETED", "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"]
    # The text is in the blob store, named by its hash, sealed by the namespace's codec: the
    # file on disk holds none of it.
    transcript = await conversations.transcript(cid)
    user = transcript.entries[0]
    assert user.ref is not None and user.ref.size == len(text.encode())
    store = blob_store(stack, agents_client)
    assert await store.get(user.ref) == text.encode()
    assert marker.encode() not in store.sealed_path_for(user.ref).read_bytes()
    assert len(user.text) <= 160  # the transcript shows a preview


async def test_idle_conversation_ends_itself(conversations: Conversations, agents_client: Client) -> None:
    cid = await start(conversations, max_idle_s=2)
    await conversations.send(cid, "Hello")
    summary = await agents_client.get_workflow_handle_for(SupportAgentWorkflow.run, cid).result()
    assert summary.end_reason == "no message for 2 s" and summary.turns == 1
    assert summary.transcript is not None  # archived on the way out
