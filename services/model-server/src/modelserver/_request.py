"""Parse and validate a chat-completions request body into typed values.

Validation mirrors the checks the real API makes that an agent is most likely to trip over
(unanswered tool calls, orphan tool messages, a tool_choice naming an unknown tool), so that a
bug found against the simulator is a bug that would have failed against a real provider too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from ._catalogue import DEFAULT_MODEL
from ._errors import invalid_request

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
ChoiceMode = Literal["auto", "none", "required", "named"]

_ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ToolCallRef:
    """A tool call an assistant message made earlier in the conversation."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    role: Role
    text: str
    tool_calls: tuple[ToolCallRef, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]
    # The ``function`` object as sent, kept for token counting.
    definition: Mapping[str, Any]


@dataclass(frozen=True)
class ToolChoice:
    mode: ChoiceMode
    name: str | None = None


@dataclass(frozen=True)
class ChatRequest:
    body: Mapping[str, Any]
    model: str
    messages: tuple[Message, ...]
    # Function tools the model may call, already narrowed by an ``allowed_tools`` choice.
    tools: tuple[Tool, ...]
    tool_choice: ToolChoice
    parallel_tool_calls: bool
    stream: bool
    include_usage: bool

    def latest_user_index(self) -> int | None:
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].role == "user":
                return index
        return None

    def latest_user_text(self) -> str:
        index = self.latest_user_index()
        return "" if index is None else self.messages[index].text

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)


def parse_chat_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")

    model = body.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model:
        raise invalid_request("'model' must be a non-empty string.", param="model")

    n = body.get("n")
    if n not in (None, 1):
        raise invalid_request("The simulator returns exactly one choice; 'n' must be 1.", param="n")

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid_request("'stream' must be a boolean.", param="stream")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise invalid_request("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(stream_options.get("include_usage", False))

    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise invalid_request("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls")

    messages = _parse_messages(body.get("messages"))
    _check_tool_call_pairing(messages)
    tools = _parse_tools(body.get("tools"))
    choice, tools = _parse_tool_choice(body.get("tool_choice"), tools)

    return ChatRequest(
        body=body,
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        stream=stream,
        include_usage=include_usage,
    )


def content_text(content: Any, *, param: str) -> str:
    """The text of a message's ``content``: a string, null, or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                raise invalid_request(f"'{param}' parts must be objects.", param=param)
            # Images, audio and files carry no text the simulator could use; they are accepted
            # so that requests valid for a real provider stay valid here.
            if part.get("type") in ("text", "refusal"):
                text = part.get("text", part.get("refusal"))
                if not isinstance(text, str):
                    raise invalid_request(f"'{param}' text parts need a string 'text'.", param=param)
                texts.append(text)
        return "\n".join(texts)
    raise invalid_request(f"'{param}' must be a string, null or a list of content parts.", param=param)


def _parse_messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise invalid_request("'messages' must be a non-empty array.", param="messages")
    return tuple(_parse_message(item, f"messages[{i}]") for i, item in enumerate(raw))


def _parse_message(raw: Any, where: str) -> Message:
    if not isinstance(raw, dict):
        raise invalid_request(f"'{where}' must be an object.", param=where)
    role = raw.get("role")
    if role not in _ROLES:
        raise invalid_request(
            f"'{where}.role' must be one of {', '.join(sorted(_ROLES))}; got {role!r}.",
            param=f"{where}.role",
        )
    text = content_text(raw.get("content"), param=f"{where}.content")
    name = raw.get("name") if isinstance(raw.get("name"), str) else None

    tool_calls: tuple[ToolCallRef, ...] = ()
    if role == "assistant" and raw.get("tool_calls"):
        tool_calls = _parse_tool_call_refs(raw["tool_calls"], f"{where}.tool_calls")

    tool_call_id: str | None = None
    if role == "tool":
        tool_call_id = raw.get("tool_call_id")
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise invalid_request(
                f"'{where}.tool_call_id' is required for messages with role 'tool'.",
                param=f"{where}.tool_call_id",
            )
    return Message(role=role, text=text, tool_calls=tool_calls, tool_call_id=tool_call_id, name=name)


def _parse_tool_call_refs(raw: Any, where: str) -> tuple[ToolCallRef, ...]:
    if not isinstance(raw, list):
        raise invalid_request(f"'{where}' must be an array.", param=where)
    refs: list[ToolCallRef] = []
    for i, call in enumerate(raw):
        spot = f"{where}[{i}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(function, dict):
            raise invalid_request(f"'{spot}' needs a string 'id' and a 'function' object.", param=spot)
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not isinstance(arguments, str):
            raise invalid_request(
                f"'{spot}.function' needs string 'name' and 'arguments' (arguments is a JSON string).",
                param=f"{spot}.function",
            )
        refs.append(ToolCallRef(id=call["id"], name=name, arguments=arguments))
    return tuple(refs)


def _check_tool_call_pairing(messages: tuple[Message, ...]) -> None:
    """Every assistant tool call must be answered by a tool message before the conversation moves on."""
    pending: list[str] = []
    in_tool_run = False
    for i, message in enumerate(messages):
        if message.role == "tool":
            if not in_tool_run or message.tool_call_id not in pending:
                raise invalid_request(
                    f"Invalid parameter: messages[{i}] with role 'tool' must be a response to a preceding "
                    f"message with 'tool_calls' (no open tool call has id {message.tool_call_id!r}).",
                    param=f"messages[{i}].tool_call_id",
                )
            pending.remove(message.tool_call_id)
            continue
        if pending:
            raise _unanswered(pending, i)
        in_tool_run = bool(message.tool_calls)
        pending = [call.id for call in message.tool_calls]
    if pending:
        raise _unanswered(pending, len(messages))


def _unanswered(pending: list[str], index: int) -> Exception:
    return invalid_request(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
        param=f"messages[{index}]",
    )


def _parse_tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid_request("'tools' must be an array.", param="tools")
    tools: list[Tool] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(item, dict):
            raise invalid_request(f"'{where}' must be an object.", param=where)
        if item.get("type", "function") != "function":
            # Custom (free-form) tools are valid for the real API but the simulator never calls them.
            continue
        function = item.get("function")
        if not isinstance(function, dict):
            raise invalid_request(f"'{where}.function' must be an object.", param=f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise invalid_request(
                f"'{where}.function.name' must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'.",
                param=f"{where}.function.name",
            )
        if name in seen:
            raise invalid_request(f"Duplicate tool name {name!r} in 'tools'.", param=f"{where}.function.name")
        seen.add(name)
        parameters = function.get("parameters", {})
        if not isinstance(parameters, dict):
            raise invalid_request(
                f"'{where}.function.parameters' must be a JSON Schema object.",
                param=f"{where}.function.parameters",
            )
        description = function.get("description")
        tools.append(
            Tool(
                name=name,
                description=description if isinstance(description, str) else "",
                parameters=parameters,
                definition=function,
            )
        )
    return tuple(tools)


def _parse_tool_choice(raw: Any, tools: tuple[Tool, ...]) -> tuple[ToolChoice, tuple[Tool, ...]]:
    if raw is None:
        return ToolChoice("auto" if tools else "none"), tools
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise invalid_request(
                f"Invalid value for 'tool_choice': {raw!r}; expected 'none', 'auto', 'required' or an object.",
                param="tool_choice",
            )
        if raw == "required" and not tools:
            raise _choice_without_tools()
        return ToolChoice(cast(ChoiceMode, raw)), tools
    if not isinstance(raw, dict):
        raise invalid_request("'tool_choice' must be a string or an object.", param="tool_choice")

    kind = raw.get("type")
    if kind == "function":
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise invalid_request("'tool_choice.function.name' must be a string.", param="tool_choice")
        if not tools:
            raise _choice_without_tools()
        if not any(t.name == name for t in tools):
            raise invalid_request(
                f"Invalid value for 'tool_choice': no function named {name!r} was specified in 'tools'.",
                param="tool_choice",
            )
        return ToolChoice("named", name=name), tools
    if kind == "allowed_tools":
        allowed = raw.get("allowed_tools")
        if not isinstance(allowed, dict) or allowed.get("mode") not in ("auto", "required"):
            raise invalid_request(
                "'tool_choice.allowed_tools' needs 'mode' ('auto' or 'required') and 'tools'.",
                param="tool_choice",
            )
        names = _allowed_names(allowed.get("tools"))
        unknown = sorted(names - {t.name for t in tools})
        if unknown:
            raise invalid_request(
                f"'tool_choice.allowed_tools' names tools not present in 'tools': {', '.join(unknown)}.",
                param="tool_choice",
            )
        narrowed = tuple(t for t in tools if t.name in names)
        if not narrowed:
            raise _choice_without_tools()
        mode: ChoiceMode = "required" if allowed["mode"] == "required" else "auto"
        return ToolChoice(mode), narrowed
    raise invalid_request(
        f"Unsupported 'tool_choice' type {kind!r}; expected 'function' or 'allowed_tools'.", param="tool_choice"
    )


def _allowed_names(raw: Any) -> set[str]:
    if not isinstance(raw, list):
        raise invalid_request("'tool_choice.allowed_tools.tools' must be an array.", param="tool_choice")
    names: set[str] = set()
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise invalid_request(
                "Each entry of 'tool_choice.allowed_tools.tools' needs 'function.name'.", param="tool_choice"
            )
        names.add(name)
    return names


def _choice_without_tools() -> Exception:
    return invalid_request(
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        param="tool_choice",
    )
