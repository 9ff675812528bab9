"""Chat completions through the official ``openai`` client: shapes, policy, determinism."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
    ChatCompletionUserMessageParam,
)

from modelserver.testing import SimulatorHandle


def tool(name: str, properties: dict[str, Any], required: list[str] | None = None) -> ChatCompletionFunctionToolParam:
    parameters: dict[str, object] = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    return {
        "type": "function",
        "function": {"name": name, "description": f"{name} (test tool)", "parameters": parameters},
    }


SEARCH = tool(
    "search_knowledge_base", {"query": {"type": "string"}, "top_k": {"type": "integer", "default": 5}}, ["query"]
)
GET_ORDER = tool("get_order", {"order_id": {"type": "string"}})
REFUND = tool(
    "refund_order",
    {"order_id": {"type": "string"}, "amount_cents": {"type": "integer"}, "reason": {"type": "string"}},
    ["order_id", "amount_cents"],
)
SUPPORT_TOOLS = [SEARCH, GET_ORDER, REFUND]

PREFIX = "[simulated answer from the offline model server; no language model was used]"


def user(text: str) -> ChatCompletionUserMessageParam:
    return {"role": "user", "content": text}


def calls_of(completion: ChatCompletion) -> list[tuple[str, dict[str, Any]]]:
    calls = completion.choices[0].message.tool_calls or []
    return [(c.function.name, json.loads(c.function.arguments)) for c in calls if c.type == "function"]


def test_plain_completion_parses_and_says_it_is_simulated(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sim-gpt", messages=[{"role": "system", "content": "Be brief."}, user("Hello there")]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "sim-gpt"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.tool_calls is None
    assert choice.message.content == f'{PREFIX} You said: "Hello there". This is a simulated reply; no tool was needed.'
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_usage_counts_words_and_punctuation(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="sim-gpt", messages=[user("Hi, you!")])
    assert completion.usage is not None
    # 3 per reply + 3 per message + "Hi" "," "you" "!"
    assert completion.usage.prompt_tokens == 3 + 3 + 4


def test_knowledge_search_for_a_question(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sim-gpt", messages=[user("How long do refunds take?")], tools=SUPPORT_TOOLS
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.content is None
    assert calls_of(completion) == [("search_knowledge_base", {"query": "How long do refunds take?", "top_k": 5})]
    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_") and len(call.id) == len("call_") + 12


def test_order_lookup_takes_the_id(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sim-gpt", messages=[user("Where is my order ORD-1001?")], tools=SUPPORT_TOOLS
    )
    # refund_order also mentions "order" but cannot be filled without an amount, so it is skipped.
    assert calls_of(completion) == [("get_order", {"order_id": "ORD-1001"})]


def test_refund_takes_id_and_amount_in_cents(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sim-gpt", messages=[user("refund €25 on ORD-1001")], tools=SUPPORT_TOOLS
    )
    assert calls_of(completion) == [
        ("refund_order", {"order_id": "ORD-1001", "amount_cents": 2500, "reason": "refund €25 on ORD-1001"})
    ]


def test_parallel_tool_calls_for_several_relevant_tools(client: openai.OpenAI) -> None:
    messages = [user("Check the knowledge base about returns, and show order ORD-1002 please.")]
    completion = client.chat.completions.create(model="sim-gpt", messages=messages, tools=SUPPORT_TOOLS)
    assert [name for name, _ in calls_of(completion)] == ["search_knowledge_base", "get_order"]
    ids = [c.id for c in completion.choices[0].message.tool_calls or []]
    assert len(set(ids)) == 2

    single = client.chat.completions.create(
        model="sim-gpt", messages=messages, tools=SUPPORT_TOOLS, parallel_tool_calls=False
    )
    assert [name for name, _ in calls_of(single)] == ["search_knowledge_base"]


def test_answer_after_tool_results_cites_hits_and_reports_failures(client: openai.OpenAI) -> None:
    hits = {
        "hits": [
            {"doc_id": "kb-12", "text": "Refunds are processed within 5 business days. Card refunds can take longer."},
            {"doc_id": "kb-7", "text": "Contact support for anything else."},
        ]
    }
    messages: list[ChatCompletionMessageParam] = [
        user("How long do refunds take for ORD-1001?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "search_knowledge_base", "arguments": "{}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_order", "arguments": "{}"}},
                {"id": "call_c", "type": "function", "function": {"name": "refund_order", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": json.dumps(hits)},
        {"role": "tool", "tool_call_id": "call_b", "content": '{"order_id": "ORD-1001", "status": "shipped"}'},
        {"role": "tool", "tool_call_id": "call_c", "content": '{"error": {"message": "amount exceeds order total"}}'},
    ]
    completion = client.chat.completions.create(model="sim-gpt", messages=messages, tools=SUPPORT_TOOLS)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "\n".join(
        [
            f'{PREFIX} Answer to "How long do refunds take for ORD-1001?" based on 3 tool result(s):',
            (
                "- search_knowledge_base: [kb-12] Refunds are processed within 5 business days. "
                "[kb-7] Contact support for anything else."
            ),
            '- get_order returned: {"order_id": "ORD-1001", "status": "shipped"}',
            '- refund_order failed: "amount exceeds order total"',
        ]
    )


def test_same_request_twice_is_identical_and_has_the_same_digest(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    messages = [user("Where is ORD-7 and how are orders shipped?")]
    first = client.chat.completions.create(model="sim-gpt", messages=messages, tools=SUPPORT_TOOLS)
    second = client.chat.completions.create(model="sim-gpt", messages=messages, tools=SUPPORT_TOOLS)
    assert first.choices[0].message.model_dump_json() == second.choices[0].message.model_dump_json()
    assert first.id == second.id
    answer_a = client.chat.completions.create(model="sim-gpt", messages=[user("Same words")])
    answer_b = client.chat.completions.create(model="sim-gpt", messages=[user("Same words")])
    assert answer_a.choices[0].message.content == answer_b.choices[0].message.content
    digests = [call["request_digest"] for call in sim.ledger()]
    assert digests[0] == digests[1] and digests[2] == digests[3] and digests[0] != digests[2]


def test_tool_choice_none_required_and_named(client: openai.OpenAI) -> None:
    question = [user("How long do refunds take?")]
    none = client.chat.completions.create(model="sim-gpt", messages=question, tools=SUPPORT_TOOLS, tool_choice="none")
    assert none.choices[0].finish_reason == "stop"

    hello = [user("Hello")]
    required = client.chat.completions.create(
        model="sim-gpt", messages=hello, tools=SUPPORT_TOOLS, tool_choice="required"
    )
    assert calls_of(required) == [("search_knowledge_base", {"query": "Hello", "top_k": 5})]

    named = client.chat.completions.create(
        model="sim-gpt",
        messages=[user("anything about ORD-9")],
        tools=SUPPORT_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_order"}},
    )
    assert calls_of(named) == [("get_order", {"order_id": "ORD-9"})]

    with pytest.raises(openai.BadRequestError) as unfillable:
        client.chat.completions.create(model="sim-gpt", messages=hello, tools=[GET_ORDER], tool_choice="required")
    assert unfillable.value.code == "simulator_cannot_fill_arguments"


def test_stream_returns_chunks_that_reassemble(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="sim-gpt",
        messages=[user("Tell me a story that is long enough to be cut into several chunks")],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    whole = client.chat.completions.create(
        model="sim-gpt", messages=[user("Tell me a story that is long enough to be cut into several chunks")]
    )
    assert len([p for p in pieces if p]) > 1
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "stop"
    assert usage is not None and whole.usage is not None
    assert usage.total_tokens == whole.usage.total_tokens


def test_models_list_and_unknown_model(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "sim-gpt" and "sim-gpt-mini" in ids
    assert client.models.retrieve("sim-gpt-mini").owned_by == "offline-model-server"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-unknown", messages=[user("hi")])
    assert missing.value.code == "model_not_found"
    assert missing.value.param == "model"


def test_mini_model_has_a_real_context_limit(client: openai.OpenAI) -> None:
    long_text = "word " * 16_500
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="sim-gpt-mini", messages=[user(long_text)])
    assert too_long.value.code == "context_length_exceeded"
    assert (
        client.chat.completions.create(model="sim-gpt", messages=[user(long_text)]).choices[0].finish_reason == "stop"
    )


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "robot", "content": "hi"}], "messages[0].role"),
        ([user("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "{}"}], "messages[1].tool_call_id"),
        (
            [
                user("hi"),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "call_x", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}
                    ],
                },
                user("again"),
            ],
            "messages[2]",
        ),
    ],
)
def test_invalid_conversations_are_rejected_like_the_real_api(
    client: openai.OpenAI, messages: list[Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(model="sim-gpt", messages=messages, tools=[GET_ORDER])
    assert invalid.value.param == param
    assert invalid.value.type == "invalid_request_error"


def test_tool_choice_must_name_an_offered_tool(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(
            model="sim-gpt",
            messages=[user("hi")],
            tools=[SEARCH],
            tool_choice={"type": "function", "function": {"name": "refund_order"}},
        )
    assert invalid.value.param == "tool_choice"


def test_allowed_tools_narrows_the_choice(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sim-gpt",
        messages=[user("refund €10 on ORD-1 and show order ORD-1")],
        tools=[GET_ORDER, REFUND],
        tool_choice={
            "type": "allowed_tools",
            "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "get_order"}}]},
        },
    )
    assert [name for name, _ in calls_of(completion)] == ["get_order"]


def test_content_parts_and_camel_case_tool_names(client: openai.OpenAI) -> None:
    ticket = tool("openSupportTicket", {"customer_id": {"type": "string"}, "urgent": {"type": "boolean"}})
    completion = client.chat.completions.create(
        model="sim-gpt",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Please open a ticket for CUST-42"}]}],
        tools=[ticket],
    )
    assert calls_of(completion) == [("openSupportTicket", {"customer_id": "CUST-42", "urgent": False})]
