"""The text the simulator answers with when it does not call a tool.

Pure functions of the conversation: identical requests give byte-identical answers, which is
what lets tests compare a replayed workflow's output with the original run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._request import ChatRequest, Message

PREFIX = "[simulated answer from the offline model server; no language model was used]"
SNIPPET_CHARS = 200

_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def compose_answer(request: ChatRequest) -> str:
    user_index = request.latest_user_index()
    if user_index is None:
        return f"{PREFIX} There is no user message to answer."
    question = _snippet(request.messages[user_index].text)
    after = request.messages[user_index + 1 :]
    results = [m for m in after if m.role == "tool"]
    if not results:
        return f'{PREFIX} You said: "{question}". This is a simulated reply; no tool was needed.'
    names = _tool_names(after)
    lines = [f'{PREFIX} Answer to "{question}" based on {len(results)} tool result(s):']
    for result in results:
        name = names.get(result.tool_call_id or "", result.name or "tool")
        lines.append(f"- {_summarise(name, result.text)}")
    return "\n".join(lines)


def _tool_names(messages: Sequence[Message]) -> dict[str, str]:
    return {call.id: call.name for m in messages for call in m.tool_calls}


def _summarise(name: str, content: str) -> str:
    parsed = _parse_json(content)
    if isinstance(parsed, Mapping):
        if parsed.get("error"):
            return f'{name} failed: "{_snippet(_error_message(parsed["error"]))}"'
        hits = parsed.get("hits")
        if isinstance(hits, list):
            return f"{name}: {_cite(hits)}"
    elif '"error"' in content:
        return f'{name} failed: "{_snippet(content)}"'
    return f"{name} returned: {_snippet(content)}"


def _cite(hits: list[Any]) -> str:
    if not hits:
        return "no matching documents."
    citations: list[str] = []
    for position, hit in enumerate(hits, start=1):
        if not isinstance(hit, Mapping):
            citations.append(f"[hit-{position}] {_snippet(str(hit))}")
            continue
        doc_id = next((hit[k] for k in ("doc_id", "id", "document_id", "chunk_id") if k in hit), f"hit-{position}")
        text = next((hit[k] for k in ("text", "snippet", "content", "title") if isinstance(hit.get(k), str)), "")
        citations.append(f"[{doc_id}] {_first_sentence(text)}".rstrip())
    return " ".join(citations)


def _error_message(error: Any) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"])
    return json.dumps(error, sort_keys=True, ensure_ascii=False)


def _first_sentence(text: str) -> str:
    flat = _SPACE.sub(" ", text).strip()
    return _snippet(_SENTENCE_END.split(flat, maxsplit=1)[0])


def _snippet(text: str) -> str:
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


def _parse_json(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None
