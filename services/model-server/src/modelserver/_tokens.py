"""Deterministic token counting for ``usage``.

A token is a run of word characters or one punctuation character (regex ``\\w+|[^\\w\\s]``).
This is not any real tokenizer; it only has to be stable, cheap and easy for a test author to
reproduce by hand. Per-message and per-reply overheads follow OpenAI's published rule of thumb.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ._canonical import canonical_json
from ._request import ChatRequest

_TOKEN = re.compile(r"\w+|[^\w\s]")
PER_MESSAGE = 3
PER_REPLY = 3


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def prompt_tokens(request: ChatRequest) -> int:
    """3 per message + its text + its tool calls' names and arguments, + each tool's JSON, + 3."""
    total = PER_REPLY
    for message in request.messages:
        total += PER_MESSAGE + count_tokens(message.text)
        for call in message.tool_calls:
            total += count_tokens(call.name) + count_tokens(call.arguments)
    for tool in request.tools:
        total += count_tokens(canonical_json(tool.definition))
    return total


def completion_tokens(content: str | None, tool_calls: Iterable[tuple[str, str]] = ()) -> int:
    """The reply text, or the names and argument strings of the tool calls."""
    total = count_tokens(content or "")
    for name, arguments in tool_calls:
        total += count_tokens(name) + count_tokens(arguments)
    return total
