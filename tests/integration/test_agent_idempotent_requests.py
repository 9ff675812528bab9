"""Resent requests act once: a message, a decision or an end request sent again with the same id
gets the first one's answer, within a run, across continue-as-new and after the conversation
ended. Runs on the session stack; the conversation continues as new after every turn."""

from __future__ import annotations

import uuid

import pytest
from harness import refunds_of
from temporalio.client import Client

from agent.chat.client import EXIT_REJECTED, ChatError, Conversations
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart
from agent.testing import eventually
from devstack.stack import Stack


async def test_resends_get_the_first_answer_in_a_run_across_continue_as_new_and_after_the_end(
    stack: Stack, agents_client: Client
) -> None:
    chat = Conversations(agents_client)
    cid = f"test-resend-{uuid.uuid4().hex[:10]}"
    settings = ConversationSettings(approval_threshold_cents=100, max_turns_per_run=1)
    await chat.start(ConversationStart(settings=settings, customer_id="cust-katherine"), cid)

    async def run_index_is(n: int) -> None:
        async def reached() -> bool:
            return (await chat.status(cid)).run_index >= n

        await eventually(reached, 30, f"run {n} of {cid}")

    small = "Please refund $0.50 on order ORD-1004, the case is scuffed"
    first = await chat.send(cid, small, message_id="m-small")
    assert "refund_order" in first.tools_used
    # Same run: the server attaches the resend to the first update.
    assert await chat.send(cid, small, message_id="m-small") == first
    await run_index_is(1)
    # The next run has not seen the update id: it answers from what the first run carried.
    assert await chat.send(cid, small, message_id="m-small") == first
    assert (await chat.status(cid)).turns == 1 and len(refunds_of(stack, cid)) == 1

    large = await chat.send(cid, "Please refund $2 on order ORD-1004, it arrived damaged", message_id="m-large")
    assert large.approvals_requested == ["APR-1"]
    await run_index_is(2)
    outcome = await chat.decide(cid, "APR-1", approve=True, approver="lead-ana", decision_id="d-1")
    assert outcome.status == ApprovalStatus.EXECUTED
    assert await chat.decide(cid, "APR-1", approve=True, approver="lead-ana", decision_id="d-1") == outcome
    # A second decision (a new id) is a new request, refused as before.
    with pytest.raises(ChatError) as refused:
        await chat.decide(cid, "APR-1", approve=False, approver="lead-bob", decision_id="d-2")
    assert refused.value.exit_code == EXIT_REJECTED and "already approved by lead-ana" in refused.value.message
    # Ids are per kind of request: a message may carry the id a decision had.
    hello = await chat.send(cid, "Hello", message_id="d-1")
    assert hello.turn == 3
    assert len(refunds_of(stack, cid)) == 2

    summary = await chat.end(cid, "done", request_id="e-1")
    # The conversation has ended; the resent end request is answered from the recorded outcome.
    assert await chat.end(cid, "done", request_id="e-1") == summary
    with pytest.raises(ChatError, match="has ended"):
        await chat.end(cid, "done", request_id="e-2")
    assert summary.turns == 3 and len(refunds_of(stack, cid)) == 2


async def test_a_bad_request_id_is_one_sentence(agents_client: Client) -> None:
    with pytest.raises(ChatError) as bad:
        await Conversations(agents_client).send("whatever", "Hello", message_id="no spaces allowed")
    assert bad.value.exit_code == EXIT_REJECTED
    assert bad.value.message.startswith("'no spaces allowed' cannot be a request id")
