"""Human approvals of refunds above the threshold, across worker restarts and crashes.

Orders used here (the session shares one business database): ORD-1001 (approved, 6 EUR),
ORD-1005 (rejected: nothing paid), ORD-1006 (deadline passes: escalated, nothing paid),
ORD-1003 (approved while the workers crash: 9 EUR once).
"""

from __future__ import annotations

import uuid

import pytest
from harness import business_rows, customer_of
from temporalio.client import Client, WorkflowUpdateStage
from temporalio.worker import Replayer

from agent.chat.client import EXIT_REJECTED, ChatError, Conversations
from agent.support.types import ApprovalDecision, ApprovalStatus, ConversationSettings, ConversationStart
from agent.testing import calls_of, eventually, paid_twice, restart, start, stop
from agent.workflows.support_agent import SupportAgentWorkflow
from devstack.stack import Stack
from modelserver.testing import SimulatorHandle

THRESHOLD_CENTS = 500  # refunds above 5.00 wait for a person


@pytest.fixture
def conversations(agents_client: Client) -> Conversations:
    return Conversations(agents_client)


async def refund_request(conversations: Conversations, text: str, approval_timeout_s: float = 300) -> str:
    cid = await conversations.start(
        ConversationStart(
            settings=ConversationSettings(
                approval_threshold_cents=THRESHOLD_CENTS, approval_timeout_s=approval_timeout_s
            ),
            customer_id=customer_of(text),
        ),
        f"test-approval-{uuid.uuid4().hex[:10]}",
    )
    reply = await conversations.send(cid, text)
    assert reply.approvals_requested == ["APR-1"], reply.text
    assert '"status": "pending_approval"' in reply.text  # the model was told, and told the customer
    return cid


async def test_approve_reject_double_and_deadline_survive_a_worker_restart(
    stack: Stack, conversations: Conversations, agents_client: Client
) -> None:
    approved = await refund_request(conversations, "Please refund €6 on order ORD-1001, the keycaps are cracked")
    rejected = await refund_request(conversations, "Please refund €7 on order ORD-1005")
    # Long enough to outlast the restart below, short enough to pass during the test.
    expiring = await refund_request(conversations, "Please refund €8 on order ORD-1006", approval_timeout_s=12)
    for cid in (approved, rejected, expiring):
        assert (await conversations.status(cid)).phase == "waiting_for_approval: APR-1"
        [pending] = await conversations.approvals(cid)
        assert pending.status == ApprovalStatus.PENDING and pending.idempotency_key == f"{cid}/step-2"
    assert business_rows(stack, "SELECT * FROM refunds WHERE idempotency_key LIKE 'test-approval-%'") == []

    # All three wait on durable state and timers, not on the worker process.
    restart(stack, "agent-worker")

    outcome = await conversations.decide(approved, "APR-1", approve=True, approver="lead-ana", note="fine")
    assert outcome.status == ApprovalStatus.EXECUTED and outcome.refund_id
    assert outcome.refund_id in outcome.message  # the agent told the customer the refund is done
    assert business_rows(
        stack, "SELECT refund_id, amount_cents FROM refunds WHERE idempotency_key = ?", f"{approved}/step-2"
    ) == [(outcome.refund_id, 600)]
    # A second decision on the same approval is refused by the validator (nothing recorded).
    for approve in (True, False):
        with pytest.raises(ChatError) as refused:
            await conversations.decide(approved, "APR-1", approve=approve, approver="lead-bob")
        assert refused.value.exit_code == EXIT_REJECTED
        assert "approval APR-1 was already approved by lead-ana and carried out" in refused.value.message

    outcome = await conversations.decide(rejected, "APR-1", approve=False, approver="lead-ana", note="used item")
    assert outcome.status == ApprovalStatus.REJECTED and outcome.refund_id is None
    assert '"status": "rejected"' in outcome.message and "used item" in outcome.message
    reply = await conversations.send(rejected, "Hello")
    assert reply.notices == [outcome.message]  # the customer hears it with the next answer

    async def escalated() -> bool:
        status = await conversations.status(expiring)
        return any(a.kind == "ticket" for a in status.actions) and status.phase == "waiting_for_message"

    await eventually(escalated, 30, "the approval deadline to pass and the escalation to finish")
    status = await conversations.status(expiring)
    assert status.pending_approvals == []
    [ticket] = [a for a in status.actions if a.kind == "ticket"]
    assert ticket.idempotency_key == f"{expiring}/APR-1/escalation"
    assert business_rows(
        stack, "SELECT ticket_id, order_id, priority FROM tickets WHERE idempotency_key = ?", ticket.idempotency_key
    ) == [(ticket.ref_id, "ORD-1006", "high")]
    transcript = await conversations.transcript(expiring)
    assert ticket.ref_id in transcript.entries[-1].text  # the customer was told about the ticket
    with pytest.raises(ChatError, match="was already escalated to ticket"):
        await conversations.decide(expiring, "APR-1", approve=True, approver="lead-late")

    # Nothing was paid for the rejected and the expired request.
    for cid in (rejected, expiring):
        assert business_rows(stack, "SELECT * FROM refunds WHERE idempotency_key LIKE ?", f"{cid}/%") == []

    # The histories (tools, approvals, a worker restart, timers, local activities) replay
    # deterministically against the current code.
    replayer = Replayer(workflows=[SupportAgentWorkflow], data_converter=agents_client.data_converter)
    for cid in (approved, rejected, expiring):
        history = await agents_client.get_workflow_handle(cid).fetch_history()
        await replayer.replay_workflow(history)


async def test_approved_refund_happens_once_when_workers_crash_around_it(
    stack: Stack, conversations: Conversations, agents_client: Client
) -> None:
    cid = await refund_request(conversations, "Please refund €9 on order ORD-1003, it arrived scratched")
    key = f"{cid}/step-2"
    handle = agents_client.get_workflow_handle_for(SupportAgentWorkflow.run, cid)

    # The business worker is down, so the approved refund's Nexus operation is in flight (and
    # retried) when the agent worker is killed: the crash lands around the refund.
    stop(stack, "business-worker")
    try:
        update = await handle.start_update(
            SupportAgentWorkflow.decide_approval,
            ApprovalDecision("APR-1", True, "lead-ana"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        restart(stack, "agent-worker", kill=True)
    finally:
        start(stack, "business-worker")
    outcome = await update.result()

    assert outcome.status == ApprovalStatus.EXECUTED
    assert business_rows(stack, "SELECT refund_id, amount_cents FROM refunds WHERE idempotency_key = ?", key) == [
        (outcome.refund_id, 900)
    ]
    # Restart the business worker too and ask for the same key again (as a replay would): the
    # write side answers with the same refund.
    restart(stack, "business-worker", kill=True)
    again = await conversations.status(cid)
    assert [a.ref_id for a in again.actions if a.kind == "refund"] == [outcome.refund_id]
    assert business_rows(stack, "SELECT COUNT(*) FROM refunds WHERE idempotency_key = ?", key) == [(1,)]
    assert (
        business_rows(stack, "SELECT idempotency_key FROM refunds GROUP BY idempotency_key HAVING COUNT(*) > 1") == []
    )
    # And no model call of the conversation was paid twice across the crash.
    sim = SimulatorHandle(f"http://{stack.config.host}:{stack.config.ports['model_server']}")
    assert paid_twice(calls_of(sim.ledger(), cid)) == []


async def test_ending_the_conversation_escalates_what_still_waits(stack: Stack, conversations: Conversations) -> None:
    cid = await refund_request(conversations, "Please refund $6 on order ORD-1002")
    summary = await conversations.end(cid, "customer left")
    [approval] = summary.approvals
    assert approval.status == ApprovalStatus.ESCALATED and approval.result and approval.result.startswith("TCK-")
    assert business_rows(
        stack, "SELECT ticket_id FROM tickets WHERE idempotency_key = ?", f"{cid}/APR-1/escalation"
    ) == [(approval.result,)]
    assert business_rows(stack, "SELECT * FROM refunds WHERE idempotency_key LIKE ?", f"{cid}/%") == []
