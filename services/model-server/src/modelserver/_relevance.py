"""Which offered tools are relevant to the user's latest message.

The rules are deliberately simple and documented in the README so that a test author can
predict, from a tool's name and a user sentence, whether the simulator will call the tool.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._request import Tool

# Verbs and fillers that say how a tool works rather than what it is about.
GENERIC_WORDS: frozenset[str] = frozenset(
    {
        "a", "an", "the", "of", "for", "by", "to", "in", "on", "and", "or", "with", "from", "my",
        "get", "lookup", "look", "up", "search", "find", "fetch", "retrieve", "read", "load", "list",
        "query", "create", "make", "new", "add", "set", "update", "do", "run", "call", "check",
        "tool", "tools", "info", "information", "data", "detail", "details",
    }
)  # fmt: skip
QUESTION_OPENERS: tuple[str, ...] = ("how", "what", "when", "why", "can", "do", "does", "is", "are")
KNOWLEDGE_MARKERS: tuple[str, ...] = ("search", "knowledge")

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def stem(word: str) -> str:
    """Fold simple English inflections: ``refunds``/``refunded``/``refunding`` -> ``refund``."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith("es") and w[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        return w[:-3]
    if len(w) > 4 and w.endswith("ed"):
        return w[:-2]
    return w


def name_keywords(tool_name: str) -> tuple[str, ...]:
    """Stemmed, non-generic words of a tool name split on ``_``, ``-``, ``.`` and camelCase."""
    spaced = _CAMEL.sub(" ", tool_name)
    words = _WORD.findall(spaced.lower())
    keywords: list[str] = []
    for word in words:
        if word in GENERIC_WORDS:
            continue
        stemmed = stem(word)
        if stemmed not in keywords:
            keywords.append(stemmed)
    return tuple(keywords)


def message_stems(text: str) -> frozenset[str]:
    return frozenset(stem(word) for word in _WORD.findall(text.lower()))


def is_knowledge_tool(tool: Tool) -> bool:
    lowered = tool.name.lower()
    return any(marker in lowered for marker in KNOWLEDGE_MARKERS)


def is_question(text: str) -> bool:
    if "?" in text:
        return True
    words = _WORD.findall(text.lower())
    return bool(words) and words[0] in QUESTION_OPENERS


def keyword_matches(tools: Sequence[Tool], text: str) -> list[Tool]:
    """Tools with at least one name keyword among the message's words, in the order offered."""
    stems = message_stems(text)
    return [tool for tool in tools if any(k in stems for k in name_keywords(tool.name))]
