"""The simulated model: decide between calling tools and answering.

Rules (also in the README, which test authors script against):

1. With ``tool_choice`` "none", or no tools, the simulator answers.
2. A named ``tool_choice`` calls that tool; "required" calls the relevant tools, else the first
   tool. Both apply on every turn, as with a real provider, so agents must relax them.
3. With "auto", once a tool result follows the latest user message the simulator answers.
   Otherwise it calls every relevant tool whose required arguments it can fill (see
   ``_relevance`` and ``_arguments``), or answers when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._answer import compose_answer
from ._arguments import Unfillable, build_arguments
from ._errors import APIFailure, invalid_request
from ._relevance import is_knowledge_tool, is_question, keyword_matches
from ._request import ChatRequest, Tool


@dataclass(frozen=True)
class PlannedCall:
    name: str
    arguments: Mapping[str, Any] | str
    """A string is sent as it is (the hostile mode's arguments that do not parse)."""


@dataclass(frozen=True)
class Decision:
    content: str | None = None
    calls: tuple[PlannedCall, ...] = ()

    @property
    def finish_reason(self) -> Literal["stop", "tool_calls"]:
        return "tool_calls" if self.calls else "stop"


def decide(request: ChatRequest) -> Decision:
    choice = request.tool_choice
    if choice.mode == "none" or not request.tools:
        return Decision(content=compose_answer(request))

    text = request.latest_user_text()
    if choice.mode == "named":
        tool = request.tool(choice.name or "")
        assert tool is not None  # _request rejects a named choice that is not offered
        return Decision(calls=(_forced_call(tool, text, why=f"tool_choice names {tool.name!r}"),))

    if choice.mode == "auto" and has_tool_results(request):
        return Decision(content=compose_answer(request))

    calls = relevant_calls(request.tools, text)
    if calls and not request.parallel_tool_calls:
        calls = calls[:1]
    if calls:
        return Decision(calls=tuple(calls))
    if choice.mode == "required":
        first = request.tools[0]
        return Decision(calls=(_forced_call(first, text, why="tool_choice is 'required' and no tool is relevant"),))
    return Decision(content=compose_answer(request))


def relevant_calls(tools: tuple[Tool, ...], text: str) -> list[PlannedCall]:
    calls = _fillable(keyword_matches(tools, text), text)
    if not calls and is_question(text):
        calls = _fillable([t for t in tools if is_knowledge_tool(t)], text)
    return calls


def _fillable(tools: list[Tool], text: str) -> list[PlannedCall]:
    calls: list[PlannedCall] = []
    for tool in tools:
        try:
            calls.append(PlannedCall(tool.name, build_arguments(tool.parameters, text)))
        except Unfillable:
            continue
    return calls


def has_tool_results(request: ChatRequest) -> bool:
    start = request.latest_user_index()
    after = request.messages if start is None else request.messages[start + 1 :]
    return any(m.role == "tool" for m in after)


def _forced_call(tool: Tool, text: str, *, why: str) -> PlannedCall:
    try:
        return PlannedCall(tool.name, build_arguments(tool.parameters, text))
    except Unfillable as gap:
        raise _cannot_fill(tool, gap.param, why) from None


def _cannot_fill(tool: Tool, param: str, why: str) -> APIFailure:
    return invalid_request(
        f"The simulator must call {tool.name!r} ({why}) but cannot fill its required parameter "
        f"{param!r} from the latest user message; mention the value in the message "
        "(ids like ORD-1001, amounts like €25) or make the parameter optional.",
        param="tool_choice",
        code="simulator_cannot_fill_arguments",
    )
