"""Conversation rules: message validation, approval threshold, keys, continue-as-new, summary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.support.policy import (
    Guardrail,
    continue_as_new_reason,
    escalation_key,
    message_problem,
    needs_approval,
    person_required,
    settings_problems,
    step_key,
)
from agent.support.summary import remember_ask, summarize
from agent.support.types import ActionRecord, Approval, ConversationSettings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the message is empty"),
        ("  \n\t", "the message is empty"),
        ("x" * 1024 * 1024, "the message is 1.0 MiB, more than the 8 KiB this conversation accepts"),
        ("é" * 4097, "the message is 8 KiB, more than the 8 KiB"),  # 8194 bytes: counted in UTF-8
        (42, "the message must be text"),
    ],
    ids=["empty", "blank", "1MB", "utf8-over", "not-text"],
)
def test_messages_that_are_refused(text: object, problem: str) -> None:
    message = message_problem(text, 8 * 1024)
    assert message is not None and message.startswith(problem)


def test_messages_that_are_taken() -> None:
    assert message_problem("x" * 8192, 8192) is None
    assert message_problem("Where is my order?", 8192) is None


def test_threshold_is_exclusive() -> None:
    assert not needs_approval(10_000, 10_000)
    assert needs_approval(10_001, 10_000)


def test_keys_derive_from_conversation_and_step() -> None:
    assert step_key("support-1", 3) == "support-1/step-3"
    assert escalation_key("support-1", "APR-2") == "support-1/APR-2/escalation"


def test_settings_problems() -> None:
    assert settings_problems(ConversationSettings()) == []
    bad = ConversationSettings(
        approval_threshold_cents=-1, approval_timeout_s=0, max_message_bytes=10**6, max_history_events=5
    )
    problems = settings_problems(bad)
    assert any("approval_threshold_cents" in p for p in problems)
    assert any("approval_timeout_s" in p for p in problems)
    assert any("max_message_bytes must be between 1 and 65536" in p for p in problems)
    assert any("max_history_events must be at least 100" in p for p in problems)


def test_continue_as_new_budget() -> None:
    s = ConversationSettings(max_turns_per_run=10, max_history_events=500, max_history_bytes=1000)
    quiet = {"turns_this_run": 1, "history_length": 10, "history_bytes": 10, "server_suggests": False}
    assert continue_as_new_reason(s, **quiet) is None
    assert continue_as_new_reason(s, **{**quiet, "turns_this_run": 10}) == "10 turns in this run"
    assert continue_as_new_reason(s, **{**quiet, "history_length": 500}) == "500 history events"
    assert continue_as_new_reason(s, **{**quiet, "history_bytes": 2000}) == "2 KiB of history"
    assert continue_as_new_reason(s, **{**quiet, "server_suggests": True}) == "the server suggests it"


def test_summary_keeps_asks_actions_and_open_approvals() -> None:
    asked: list[str] = []
    for i in range(12):
        asked = remember_ask(asked, f"question {i} " + "word " * 50)
    assert len(asked) == 8 and asked[0].startswith("question 4") and len(asked[0]) <= 120
    approval = Approval("APR-3", "refund", "ORD-1", 15000, "EUR", "broken", "k", "refund 150.00 EUR on ORD-1", NOW, NOW)
    action = ActionRecord("ticket", "TCK-1001", "ticket TCK-1001: help", "k2", NOW)
    text = summarize(12, asked, [action], [approval])
    assert text.startswith("Summary of the 12 earlier turn(s)")
    assert "ticket TCK-1001: help" in text and "APR-3 (refund 150.00 EUR on ORD-1)" in text
    assert summarize(0, [], [], []) == ""


@pytest.mark.parametrize(
    ("fulfilment", "asked", "refunds_this_turn", "rule"),
    [
        ("delivered", "Please refund €5 on ORD-1005", 0, None),
        ("shipped", "Please refund €5 on ORD-1005", 0, Guardrail.NOT_DELIVERED),
        ("delivered", "Please refund €5 on ORD-1005", 1, Guardrail.REFUND_BURST),
        ("delivered", "Where is ORD-1005?", 0, Guardrail.UNASKED_REFUND),
        # What the model did wrong is named before the state of the goods.
        ("shipped", "Where is ORD-1005?", 3, Guardrail.UNASKED_REFUND),
        ("shipped", "Please refund €5 on ORD-1005", 1, Guardrail.REFUND_BURST),
        ("delivered", "Please refund €5 on ORD-1001", 0, Guardrail.UNASKED_REFUND),  # another order
    ],
)
def test_which_rule_sends_a_refund_to_a_person(
    fulfilment: str, asked: str, refunds_this_turn: int, rule: str | None
) -> None:
    assert person_required(fulfilment, asked, "ORD-1005", refunds_this_turn) == rule
