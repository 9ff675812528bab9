"""SupportAgentWorkflow over time: cool-downs, model failures, the token budget, continue-as-new
with its carried state, requests it must refuse, and the end of a conversation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from agent_doubles import Agents, failing, say, use
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from agent.chat.client import ChatError
from agent.llm.types import ModelErrorType
from agent.support.types import ApprovalStatus, ConversationStart
from agent.workflows.support_agent import SupportAgentWorkflow


async def test_tool_failures_in_a_row_pause_the_next_model_call(agents: Agents) -> None:
    agents.model.script += [use("no_such_tool"), use("no_such_tool"), use("no_such_tool"), say("Sorry.")]
    cid = await agents.start(tool_failure_limit=3, cooldown_s=600, max_tool_rounds=4)
    began = await agents.env.get_current_time()

    async with agents.time_passing():
        reply = await agents.conversations.send(cid, "Help")

    assert reply.text == "Sorry."
    assert await agents.env.get_current_time() - began >= timedelta(seconds=600)


async def test_a_failing_provider_is_retried_then_waited_for_until_it_answers(agents: Agents) -> None:
    attempts = 5
    agents.model.script += [failing(ModelErrorType.SERVER_ERROR)] * attempts + [say("Back again.")]
    cid = await agents.start(model_max_attempts=attempts, cooldown_s=300)

    async with agents.time_passing():
        reply = await agents.conversations.send(cid, "Hello?")

    # The activity's own retries, then one cool-down that ends when the provider answers, then a call.
    assert reply.text == "Back again." and reply.error is None
    assert len(agents.model.requests) == attempts + 1


async def test_a_provider_that_stays_down_gets_an_apology_and_the_conversation_goes_on(agents: Agents) -> None:
    agents.model.then = lambda _: failing(ModelErrorType.SERVER_ERROR)
    agents.model.healthy = False
    cid = await agents.start(model_max_attempts=2, cooldown_s=60)

    async with agents.time_passing():
        reply = await agents.conversations.send(cid, "Hello?")

    assert reply.error == "model_unavailable"
    agents.model.then, agents.model.healthy = (lambda _: say("Hello!")), True
    assert (await agents.conversations.send(cid, "Hello again?")).text == "Hello!"


@pytest.mark.parametrize(
    ("kind", "error"),
    [(ModelErrorType.CONTEXT_LENGTH, "context_length"), (ModelErrorType.BAD_REQUEST, "model_rejected")],
)
async def test_a_request_the_model_refuses_is_not_retried(agents: Agents, kind: str, error: str) -> None:
    agents.model.script += [failing(kind, retryable=False), say("Fine now.")]
    cid = await agents.start()

    reply = await agents.conversations.send(cid, "A very long message")

    assert reply.error == error and len(agents.model.requests) == 1
    assert (await agents.conversations.send(cid, "Shorter")).text == "Fine now."
    if error == "context_length":
        # The earlier messages were set aside: the model sees only the new one (and a summary).
        assert [m.role for m in agents.model.requests[-1].messages if m.role == "user"] == ["user"]


async def test_past_its_token_budget_a_conversation_goes_to_a_person(agents: Agents) -> None:
    agents.model.then = lambda _: say("Sure.", tokens=10)
    cid = await agents.start("cust-ada", max_conversation_tokens=30)
    await agents.conversations.send(cid, "One")
    await agents.conversations.send(cid, "Two")
    paid = len(agents.model.requests)

    reply = await agents.conversations.send(cid, "Three")

    assert reply.error == "budget_spent" and "ticket" in reply.text
    assert len(agents.model.requests) == paid, "no model call past the budget"
    status = await agents.conversations.status(cid)
    assert status.usage.total_tokens == 40
    assert [a.kind for a in status.actions] == ["ticket"]


async def test_continue_as_new_carries_the_conversation_and_its_answers(agents: Agents) -> None:
    agents.model.script += [
        use("refund_order", order_id="ORD-1004", amount_cents=20_000, reason="broken"),
        say("A person will decide."),
    ]
    agents.model.then = lambda _: say("Noted.")
    cid = await agents.start("cust-katherine", max_turns_per_run=2)
    first = await agents.conversations.send(
        cid, "Please refund 200 USD on order ORD-1004, the headphones broke", message_id="m-1"
    )
    await agents.conversations.send(cid, "Thanks", message_id="m-2")

    status = await agents.conversations.status(cid)
    assert status.run_index == 1 and status.turns == 2
    # A resend that reaches the next run gets the first answer, and is not a new turn.
    assert await agents.conversations.send(cid, "(resent)", message_id="m-1") == first
    assert (await agents.conversations.status(cid)).turns == 2
    # The approval opened in the first run is decided in the second, and pays once.
    (approval_id,) = first.approvals_requested
    outcome = await agents.conversations.decide(cid, approval_id, approve=True, approver="lead-ana")
    assert outcome.status == ApprovalStatus.EXECUTED
    assert [r.amount_cents for r in agents.refunds_of("ORD-1004")] == [20_000]
    transcript = await agents.conversations.transcript(cid)
    assert transcript.archive is not None and "refund" in transcript.summary.lower()


async def test_requests_a_conversation_cannot_take_are_refused_with_a_sentence(agents: Agents) -> None:
    cid = await agents.start(max_message_bytes=100)

    with pytest.raises(ChatError, match="100"):
        await agents.conversations.send(cid, "x" * 101)
    with pytest.raises(ChatError, match="empty"):
        await agents.conversations.send(cid, "   ")
    await agents.conversations.end(cid)
    with pytest.raises(ChatError, match="ended"):
        await agents.conversations.send(cid, "Are you there?")


async def test_a_conversation_without_a_customer_fails_at_once(agents: Agents) -> None:
    handle = await agents.client.start_workflow(
        SupportAgentWorkflow.run, ConversationStart(customer="Nobody"), id="no-identity", task_queue="agent"
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "no customer_id" in str(failed.value.cause)


async def test_an_idle_conversation_ends_on_its_own(agents: Agents) -> None:
    cid = await agents.start(max_idle_s=3600)
    await agents.conversations.send(cid, "Hi")

    handle = agents.client.get_workflow_handle_for(SupportAgentWorkflow.run, cid)
    async with agents.time_passing():
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(0.05)
    summary = await handle.result()

    assert summary.end_reason == "no message for 3600 s" and summary.turns == 1
