"""The approvals of one conversation: refunds that wait for a person (workflow-safe bookkeeping).

The workflow decides *when* (a tool asked for a refund above the threshold, a decision
arrived, a deadline passed); this module keeps *what*: the approvals by id, their states, which
decision is acceptable and why not, what the conversation has committed, and what a new run
inherits. No I/O and no clock of its own: the workflow passes ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.support.toolbox import ApprovalRequest
from agent.support.types import Approval, ApprovalDecision, ApprovalStatus

MAX_NOTE_CHARS = 2000
DECIDED_APPROVALS_CARRIED = 10
"""Decided approvals a new run inherits (all pending ones are), so a late resend of a decision
still gets a sentence naming what became of it."""


class ApprovalBook:
    def __init__(self, approvals: list[Approval], counter: int) -> None:
        self._by_id = {a.approval_id: a for a in approvals}
        self.counter = counter
        """Approvals opened so far, across runs: ids (``APR-<n>``) are never reused."""

    def __getitem__(self, approval_id: str) -> Approval:
        return self._by_id[approval_id]

    def all(self) -> list[Approval]:
        return list(self._by_id.values())

    def pending(self) -> list[Approval]:
        return [a for a in self._by_id.values() if a.status == ApprovalStatus.PENDING]

    def overdue(self, now: datetime) -> list[Approval]:
        return [a for a in self.pending() if now >= a.deadline]

    def open(self, request: ApprovalRequest, idempotency_key: str, now: datetime, timeout_s: float) -> Approval:
        """A new pending approval; ``idempotency_key`` is the refund's, fixed now, whoever approves."""
        self.counter += 1
        approval = Approval(
            approval_id=f"APR-{self.counter}",
            action="refund",
            order_id=request.order_id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            reason=request.reason,
            idempotency_key=idempotency_key,
            summary=request.summary,
            requested_at=now,
            deadline=now + timedelta(seconds=timeout_s),
        )
        self._by_id[approval.approval_id] = approval
        return approval

    @staticmethod
    def decide(approval: Approval, decision: ApprovalDecision, now: datetime) -> None:
        approval.status = ApprovalStatus.APPROVED if decision.approve else ApprovalStatus.REJECTED
        approval.decided_by, approval.note = decision.approver.strip(), decision.note
        approval.decided_at = now

    def waiting_cents(self, currency: str) -> int:
        """Amounts waiting for, or under, a decision in ``currency`` (a cap counts them as spent)."""
        return sum(
            a.amount_cents
            for a in self._by_id.values()
            if a.currency == currency and a.status in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
        )

    def to_carry(self) -> list[Approval]:
        approvals = self.all()
        decided = [a for a in approvals if a.status != ApprovalStatus.PENDING][-DECIDED_APPROVALS_CARRIED:]
        return decided + self.pending()

    def problem(self, decision: ApprovalDecision, *, conversation_id: str, now: datetime, ending: bool) -> str | None:
        """Why ``decision`` cannot be taken (one sentence for the approver), or None."""
        approval_id = decision.approval_id
        approval = self._by_id.get(approval_id) if isinstance(approval_id, str) else None
        if approval is None:
            known = ", ".join(a.approval_id for a in self.pending()) or "none is pending"
            return f"conversation {conversation_id} has no approval {approval_id!r} (pending: {known})"
        if approval.status != ApprovalStatus.PENDING:
            return (
                f"approval {approval.approval_id} was already {_what_became_of(approval)}; it cannot be decided again"
            )
        if now >= approval.deadline:
            expired = f"{approval.deadline:%Y-%m-%d %H:%M:%S} UTC"
            return f"approval {approval.approval_id} expired at {expired} and is being escalated"
        if ending:
            return f"conversation {conversation_id} is ending; its pending approvals are being escalated"
        if not isinstance(decision.approver, str) or not decision.approver.strip():
            return "say who decides: approver must not be empty"
        if not isinstance(decision.note, str) or len(decision.note) > MAX_NOTE_CHARS:
            return f"note must be text of at most {MAX_NOTE_CHARS} characters"
        return None


def _what_became_of(approval: Approval) -> str:
    by = approval.decided_by
    return {
        ApprovalStatus.APPROVED: f"approved by {by}",
        ApprovalStatus.EXECUTED: f"approved by {by} and carried out",
        ApprovalStatus.FAILED: f"approved by {by} (the refund was refused: {approval.result})",
        ApprovalStatus.REJECTED: f"rejected by {by}",
        ApprovalStatus.ESCALATED: f"escalated to ticket {approval.result} without a decision",
    }.get(approval.status, approval.status)
