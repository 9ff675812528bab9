"""Deterministic rules of a support conversation (pure functions, workflow-safe).

Kept apart from the workflow so each rule is unit-tested on its own and reads as policy, not
as orchestration.
"""

from __future__ import annotations

from agent.support.types import MESSAGE_BYTES_CEILING, ConversationSettings

HISTORY_EVENTS_FLOOR = 100
"""A run must fit at least one full turn; smaller budgets would continue-as-new forever."""


def format_money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


def human_bytes(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def settings_problems(s: ConversationSettings) -> list[str]:
    """Every way these settings cannot work, as sentences; empty when they are fine."""
    problems = []
    if s.approval_threshold_cents < 0:
        problems.append("approval_threshold_cents must not be negative")
    for name in ("approval_timeout_s", "max_idle_s", "model_timeout_s", "model_heartbeat_s"):
        if not getattr(s, name) > 0:
            problems.append(f"{name} must be a positive number of seconds")
    if s.cooldown_s < 0:
        problems.append("cooldown_s must not be negative")
    if not 1 <= s.max_message_bytes <= MESSAGE_BYTES_CEILING:
        problems.append(f"max_message_bytes must be between 1 and {MESSAGE_BYTES_CEILING}")
    for name in (
        "max_tool_rounds",
        "tool_failure_limit",
        "model_max_attempts",
        "max_turns_per_run",
        "search_top_k",
        "max_refund_cents_per_conversation",
        "max_conversation_tokens",
    ):
        if getattr(s, name) < 1:
            problems.append(f"{name} must be at least 1")
    if s.max_history_events < HISTORY_EVENTS_FLOOR:
        problems.append(f"max_history_events must be at least {HISTORY_EVENTS_FLOOR}")
    if s.inline_text_limit_bytes < 64:
        problems.append("inline_text_limit_bytes must be at least 64")
    return problems


def message_problem(text: object, max_bytes: int) -> str | None:
    """Why a customer message cannot be taken, or None. Checked by the update validator, so a
    refused message never reaches history and the conversation is unaffected."""
    if not isinstance(text, str):
        return "the message must be text"
    if not text.strip():
        return "the message is empty; type what you need help with"
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return (
            f"the message is {human_bytes(size)}, more than the {human_bytes(max_bytes)} this "
            "conversation accepts; shorten it or split it into several messages"
        )
    return None


def needs_approval(amount_cents: int, threshold_cents: int) -> bool:
    return amount_cents > threshold_cents


# Where the goods must be for a refund without a person: they have arrived.
DELIVERED = "delivered"
_ASKING_WORDS = ("refund", "money back", "reimburse", "return")


def customer_asked_refund(message: str, order_id: str) -> bool:
    """Whether the customer's own message asks for money back on this order. A refund the model
    decided on its own (a planted instruction, a confused model) waits for a person instead."""
    text = message.lower()
    return order_id.lower() in text and any(word in text for word in _ASKING_WORDS)


class Guardrail:
    """Rules held in code whatever the model asks. Each refusal is counted by rule
    (``agent_guardrail_refusals_total{rule}``) and audited with the conversation
    (``agent.support.audit``, ``agent chat refusals``); the model gets it as a tool result."""

    OTHER_CUSTOMER = "other_customer"
    """The business service refused another customer's order or ticket."""
    ABOVE_REMAINING = "above_remaining"
    """More than is left to refund on the order."""
    CONVERSATION_CAP = "conversation_refund_cap"
    """More than the conversation may refund in all."""
    WRONG_CURRENCY = "wrong_currency"
    """A refund in another currency than the order's."""
    NOT_DELIVERED = "not_delivered"
    """A refund on goods not yet delivered: waits for a person instead of being paid."""
    UNASKED_REFUND = "unasked_refund"
    """A refund the customer's own message did not ask for: waits for a person."""
    REFUND_BURST = "refund_burst"
    """A refund after the first of one message: waits for a person."""
    UNKNOWN_TOOL = "unknown_tool"
    """A tool the agent does not have."""
    BAD_ARGUMENTS = "bad_arguments"
    """Arguments that do not parse or do not fit the tool."""
    TOKEN_BUDGET = "token_budget"
    """The conversation spent its model tokens: handed to a person."""


# Why a refund went to a person instead of being paid, as an audit record says it.
PERSON_REASONS = {
    Guardrail.UNASKED_REFUND: "the customer's own message did not ask for this refund",
    Guardrail.REFUND_BURST: "a refund was already paid for this message",
    Guardrail.NOT_DELIVERED: "the goods are not delivered yet",
}


def person_required(fulfilment: str, asked: str, order_id: str, refunds_this_turn: int) -> str | None:
    """The rule that makes a refund wait for a person whatever its amount, or None. What the
    model did wrong is named before the state of the goods, so an audit shows an unasked refund
    (a planted instruction, a confused model) as such even on goods not yet delivered: a refund
    the customer's own message did not ask for, any but the first of one message (a burst), goods
    not delivered."""
    if not customer_asked_refund(asked, order_id):
        return Guardrail.UNASKED_REFUND
    if refunds_this_turn > 0:
        return Guardrail.REFUND_BURST
    if fulfilment != DELIVERED:
        return Guardrail.NOT_DELIVERED
    return None


def over_conversation_cap(amount_cents: int, committed_cents: int, cap_cents: int) -> bool:
    """Whether a refund of ``amount_cents`` would take the conversation past its cap;
    ``committed_cents``: what it refunded or asked approval for, same currency."""
    return committed_cents + amount_cents > cap_cents


# How the business service words a refund above what is left on the order (its own check, in
# the refund's transaction, which also knows an idempotency key it refunded before).
ABOVE_REMAINING_WORDS = "is left to refund"


def step_key(conversation_id: str, step: int) -> str:
    """Idempotency key of one tool action: the same step of the same conversation asks the
    business service for the same effect, however often it is retried or replayed."""
    return f"{conversation_id}/step-{step}"


def escalation_key(conversation_id: str, approval_id: str) -> str:
    return f"{conversation_id}/{approval_id}/escalation"


def continue_as_new_reason(
    s: ConversationSettings,
    *,
    turns_this_run: int,
    history_length: int,
    history_bytes: int,
    server_suggests: bool,
) -> str | None:
    """Why this run should hand over to a new one now, or None.

    Checked between turns only. One turn adds a bounded number of events (at most
    ``max_tool_rounds`` model calls, each with its tool calls), so a run's history stays under
    ``max_history_events`` plus one turn's worth.
    """
    if turns_this_run >= s.max_turns_per_run:
        return f"{turns_this_run} turns in this run"
    if history_length >= s.max_history_events:
        return f"{history_length} history events"
    if history_bytes >= s.max_history_bytes:
        return f"{human_bytes(history_bytes)} of history"
    if server_suggests:
        return "the server suggests it"
    return None
