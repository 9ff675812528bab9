"""Approvals in SupportAgentWorkflow: a refund above the threshold waits for a person, who
approves or rejects it; past its deadline, or when the conversation ends, it goes to a ticket.
Each path pays at most once, and the customer is told what became of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from agent_doubles import Agents, say, use

from agent.chat.client import ChatError
from agent.support.types import ApprovalStatus

ASK = "Please refund 120 EUR on order ORD-1001, the keyboard arrived broken"


async def _ask_for_a_big_refund(agents: Agents, **settings: object) -> tuple[str, str]:
    """A conversation with one pending approval (120.00 EUR on ORD-1001, above 100.00)."""
    agents.model.script += [
        use("refund_order", order_id="ORD-1001", amount_cents=12_000, reason="arrived broken"),
        say("A person needs to approve this refund."),
    ]
    cid = await agents.start("cust-ada", **settings)
    reply = await agents.conversations.send(cid, ASK)
    (approval_id,) = reply.approvals_requested
    return cid, approval_id


async def test_an_approved_refund_is_paid_once_and_told_to_the_customer(agents: Agents) -> None:
    before = len(agents.refunds_of("ORD-1001"))
    cid, approval_id = await _ask_for_a_big_refund(agents)
    assert [a.approval_id for a in await agents.conversations.approvals(cid)] == [approval_id]
    assert agents.refunds_of("ORD-1001")[before:] == [], "nothing is paid before a person decides"

    agents.model.script.append(say("Your refund was approved and paid."))
    outcome = await agents.conversations.decide(cid, approval_id, approve=True, approver="lead-ana", decision_id="d-1")
    again = await agents.conversations.decide(cid, approval_id, approve=True, approver="lead-ana", decision_id="d-1")

    assert outcome.status == ApprovalStatus.EXECUTED and outcome.refund_id
    assert again == outcome, "a resent decision gets the first one's answer"
    assert [r.amount_cents for r in agents.refunds_of("ORD-1001")[before:]] == [12_000]
    assert outcome.message == "Your refund was approved and paid."
    # The model was told the outcome as the result of the refund it asked for.
    last = agents.model.requests[-1]
    assert last.tool_choice == "none" and last.messages[-1].role == "tool"
    reply = await agents.conversations.send(cid, "Thanks!")
    assert reply.notices == ["Your refund was approved and paid."]


async def test_a_rejected_refund_pays_nothing(agents: Agents) -> None:
    before = len(agents.refunds_of("ORD-1001"))
    cid, approval_id = await _ask_for_a_big_refund(agents)

    outcome = await agents.conversations.decide(
        cid, approval_id, approve=False, approver="lead-ana", note="photos needed"
    )

    assert outcome.status == ApprovalStatus.REJECTED and outcome.refund_id is None
    assert agents.refunds_of("ORD-1001")[before:] == []
    status = await agents.conversations.status(cid)
    assert status.pending_approvals == [] and status.actions == []


async def test_an_approval_past_its_deadline_goes_to_a_ticket(agents: Agents) -> None:
    before = len(agents.refunds_of("ORD-1001"))
    cid, approval_id = await _ask_for_a_big_refund(agents, approval_timeout_s=3600)
    agents.model.script.append(say("Nobody decided in time, so a person will follow up on a ticket."))

    await agents.env.sleep(timedelta(hours=2))
    async with agents.time_passing():
        status = await agents.conversations.status(cid)
        while status.pending_approvals:
            await agents.env.sleep(timedelta(seconds=1))
            status = await agents.conversations.status(cid)

    assert [a.kind for a in status.actions] == ["ticket"]
    with pytest.raises(ChatError) as refused:
        await agents.conversations.decide(cid, approval_id, approve=True, approver="lead-ana")
    assert "escalated" in str(refused.value)
    assert agents.refunds_of("ORD-1001")[before:] == []
    (ticket,) = [a for a in status.actions if a.kind == "ticket"]
    assert agents.business.get_ticket(ticket.ref_id).priority == "high"
    reply = await agents.conversations.send(cid, "Any news?")
    assert reply.notices == ["Nobody decided in time, so a person will follow up on a ticket."]


async def test_ending_with_a_pending_approval_escalates_it(agents: Agents) -> None:
    cid, approval_id = await _ask_for_a_big_refund(agents)

    summary = await agents.conversations.end(cid, "customer left")

    (approval,) = summary.approvals
    assert approval.approval_id == approval_id and approval.status == ApprovalStatus.ESCALATED
    assert [a.kind for a in summary.actions] == ["ticket"]
    assert summary.end_reason == "customer left"


@pytest.mark.parametrize(
    ("approval_id", "approver", "says"),
    [
        ("APR-404", "lead-ana", "has no approval 'APR-404'"),
        (None, "   ", "approver must not be empty"),
    ],
)
async def test_a_bad_decision_is_refused_with_a_sentence(
    agents: Agents, approval_id: str | None, approver: str, says: str
) -> None:
    cid, pending = await _ask_for_a_big_refund(agents)

    with pytest.raises(ChatError) as refused:
        await agents.conversations.decide(cid, approval_id or pending, approve=True, approver=approver)

    assert says in str(refused.value)
    assert [a.approval_id for a in await agents.conversations.approvals(cid)] == [pending]


async def test_a_decided_approval_cannot_be_decided_again(agents: Agents) -> None:
    cid, approval_id = await _ask_for_a_big_refund(agents)
    await agents.conversations.decide(cid, approval_id, approve=False, approver="lead-ana")

    with pytest.raises(ChatError) as refused:
        await agents.conversations.decide(cid, approval_id, approve=True, approver="lead-bob")

    assert "already rejected by lead-ana" in str(refused.value)
