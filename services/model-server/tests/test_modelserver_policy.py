"""The simulated policy's building blocks, as documented in the README."""

from __future__ import annotations

from typing import Any

import pytest

from modelserver._answer import compose_answer
from modelserver._arguments import Unfillable, build_arguments
from modelserver._extract import first_id, first_money
from modelserver._relevance import is_question, name_keywords, stem
from modelserver._request import parse_chat_request


@pytest.mark.parametrize(
    ("word", "expected"),
    [("refunds", "refund"), ("refunded", "refund"), ("orders", "order"), ("policies", "policy"),
     ("boxes", "box"), ("status", "status"), ("address", "address"), ("tickets", "ticket")],
)  # fmt: skip
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_tool_name_keywords_drop_generic_words() -> None:
    assert name_keywords("get_order") == ("order",)
    assert name_keywords("search_knowledge_base") == ("knowledge", "base")
    assert name_keywords("lookupRefundStatus") == ("refund", "status")
    assert name_keywords("create_the_tickets") == ("ticket",)


@pytest.mark.parametrize(
    ("text", "question"),
    [("How do refunds work", True), ("refund please?", True), ("Is it late", True), ("Refund ORD-1", False),
     ("Hello", False), ("", False)],
)  # fmt: skip
def test_is_question(text: str, question: bool) -> None:
    assert is_question(text) is question


@pytest.mark.parametrize(
    ("text", "cents", "currency"),
    [("€25", 2500, "EUR"), ("25 EUR", 2500, "EUR"), ("$25.50", 2550, "USD"), ("25.50 euros", 2550, "EUR"),
     ("refund 1,250.00 USD", 125000, "USD"), ("25,50 €", 2550, "EUR"), ("£5", 500, "GBP"), ("EUR 10.1", 1010, "EUR")],
)  # fmt: skip
def test_money(text: str, cents: int, currency: str) -> None:
    money = first_money(text)
    assert money is not None and (money.cents, money.currency) == (cents, currency)


def test_no_money_and_ids() -> None:
    assert first_money("order ORD-25 has 3 items") is None
    assert first_id("see ord-1 and TCK-77 and ORD-1001") == "TCK-77"


def test_arguments_follow_the_schema() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "amount_cents": {"type": "integer"},
            "currency": {"type": "string"},
            "priority": {"type": "string", "enum": ["low", "high"]},
            "notify": {"type": "boolean"},
            "limit": {"type": "integer", "default": 3},
            "note": {"type": ["string", "null"]},
        },
        "required": ["order_id", "amount_cents", "priority", "notify"],
    }
    assert build_arguments(schema, "  refund $12.30 on ORD-5, HIGH priority ") == {
        "order_id": "ORD-5",
        "amount_cents": 1230,
        "currency": "USD",
        "priority": "high",
        "notify": False,
        "limit": 3,
    }
    with pytest.raises(Unfillable) as gap:
        build_arguments(schema, "refund ORD-5")
    assert gap.value.param == "amount_cents"


def _answer(messages: list[dict[str, Any]]) -> str:
    return compose_answer(parse_chat_request({"model": "sim-gpt", "messages": messages}))


def test_answer_summaries_for_plain_errors_and_empty_hits() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "search_docs", "arguments": "{}"}}
    call2 = {"id": "c2", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}
    text = _answer(
        [
            {"role": "user", "content": "q?"},
            {"role": "assistant", "tool_calls": [call, call2]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"hits": []}'},
            {"role": "tool", "tool_call_id": "c2", "content": 'upstream said "error": 502 ' + "x" * 300},
        ]
    )
    lines = text.splitlines()
    assert lines[1] == "- search_docs: no matching documents."
    assert lines[2].startswith('- get_order failed: "upstream said') and lines[2].endswith('…"')
    assert len(lines[2]) < 230


def test_answer_is_byte_identical_and_only_uses_results_after_the_latest_user_message() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "old result"},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "thanks"},
    ]
    assert _answer(messages) == _answer(messages)
    assert "old result" not in _answer(messages) and '"thanks"' in _answer(messages)


def test_required_choice_keeps_calling_after_tool_results() -> None:
    from modelserver._policy import decide

    tools = [{"type": "function", "function": {"name": "get_order", "parameters": {"properties": {"order_id": {}}}}}]
    call = {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "order ORD-3"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
    ]
    body = {"model": "sim-gpt", "messages": messages, "tools": tools}
    assert decide(parse_chat_request({**body, "tool_choice": "auto"})).finish_reason == "stop"
    forced = decide(parse_chat_request({**body, "tool_choice": "required"}))
    assert [(c.name, dict(c.arguments)) for c in forced.calls] == [("get_order", {"order_id": "ORD-3"})]
