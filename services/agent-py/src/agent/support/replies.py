"""What the agent says on its own, without the model: apologies, hand-overs, and the fallback
sentences about approvals used when the model cannot word them (workflow-safe, pure text).

Kept in one place so the customer-facing voice can be reviewed (and translated) without reading
the workflow. Texts that reach the model as tool results are here too: they are what it words
its answer from.
"""

from __future__ import annotations

from datetime import datetime

from agent.support.policy import format_money
from agent.support.types import Approval

TOO_MANY_ROUNDS = "I could not finish this request within the steps I may take for one message; please ask again."

CONTEXT_LENGTH = "context_length"
MODEL_REJECTED = "model_rejected"
MODEL_UNAVAILABLE = "model_unavailable"
BUDGET_SPENT = "budget_spent"


def apology(kind: str) -> str:
    """The answer to a message the model could not answer (``AgentReply.error`` says ``kind``)."""
    if kind == CONTEXT_LENGTH:
        return (
            "This conversation has grown longer than the language model can read at once. I have "
            "set the earlier messages aside (I keep a summary); please send your last message again."
        )
    if kind == MODEL_REJECTED:
        return (
            "The language model refused this request, so I could not answer it. Please rephrase "
            "your message, or ask for a person and I will open a ticket."
        )
    return (
        "The language model is not answering right now (it is overloaded or failing). Please "
        "try again in a few minutes; nothing was lost."
    )


def handed_over(ticket_id: str) -> str:
    return (
        f"This conversation has used the model budget it may spend, so a person takes it over from "
        f"here: ticket {ticket_id}. Nothing more will be done automatically."
    )


def not_handed_over(why: str) -> str:
    return (
        "This conversation has used the model budget it may spend, and no ticket could be opened "
        f"({why}); please contact support."
    )


def approval_pending(approval: Approval, threshold_cents: int) -> dict[str, object]:
    """The refund tool's result when a person must decide: the model tells the customer."""
    threshold = format_money(threshold_cents, approval.currency)
    return {
        "status": "pending_approval",
        "approval_id": approval.approval_id,
        "amount": format_money(approval.amount_cents, approval.currency),
        "order_id": approval.order_id,
        "message": (
            f"Refunds above {threshold} need a person's approval. {approval.approval_id} ({approval.summary}) "
            f"waits for a decision until {_utc(approval.deadline)}; nothing has been paid yet."
        ),
    }


def approved(approval: Approval, refund_id: str | None) -> str:
    done = f"was approved and paid ({refund_id})." if refund_id else f"failed: {approval.result}"
    return f"Your refund of {_amount(approval)} on {approval.order_id} {done}"


def rejected(approval: Approval) -> str:
    why = f": {approval.note}" if approval.note else "."
    return f"A support lead did not approve the refund of {_amount(approval)} on {approval.order_id}{why}"


def escalated(approval: Approval, why: str, ticket_id: str) -> str:
    return (
        f"Your refund request {approval.approval_id} was not decided in time ({why}); nothing was paid. "
        f"I opened ticket {ticket_id} so a person follows up."
    )


def not_escalated(approval: Approval) -> str:
    return (
        f"Your refund request {approval.approval_id} was not decided in time and I could not open a "
        "ticket for it; please contact support."
    )


def _amount(approval: Approval) -> str:
    return format_money(approval.amount_cents, approval.currency)


def _utc(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"
