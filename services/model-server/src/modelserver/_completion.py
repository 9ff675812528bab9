"""Render a policy decision as an OpenAI ``chat.completion`` object or as SSE chunks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from ._canonical import sha256_hex
from ._policy import Decision
from ._request import ChatRequest
from ._tokens import completion_tokens, prompt_tokens

SYSTEM_FINGERPRINT = "fp_offline_simulator"
WORDS_PER_CHUNK = 8

_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


def tool_call_id(digest: str, index: int, name: str) -> str:
    # Derived from the request digest so a replayed request yields the same ids.
    return "call_" + sha256_hex(f"{digest}:{index}:{name}")[:12]


def build_usage(request: ChatRequest, decision: Decision) -> dict[str, Any]:
    prompt = prompt_tokens(request)
    completion = completion_tokens(decision.content, ((c.name, _arguments_json(c.arguments)) for c in decision.calls))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def build_completion(request: ChatRequest, decision: Decision, *, digest: str, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": decision.content, "refusal": None}
    if decision.calls:
        message["tool_calls"] = [
            {
                "id": tool_call_id(digest, index, call.name),
                "type": "function",
                "function": {"name": call.name, "arguments": _arguments_json(call.arguments)},
            }
            for index, call in enumerate(decision.calls)
        ]
    return {
        "id": "chatcmpl-" + digest[:24],
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": decision.finish_reason}],
        "usage": build_usage(request, decision),
    }


def sse_events(completion: dict[str, Any], *, include_usage: bool) -> Iterator[str]:
    """The completion re-cut as ``chat.completion.chunk`` events, ending with ``[DONE]``."""
    choice = completion["choices"][0]
    message = choice["message"]
    base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        payload = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        return _event(payload)

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if message.get("tool_calls"):
        for index, call in enumerate(message["tool_calls"]):
            yield chunk({"tool_calls": [{"index": index, **call}]})
    else:
        words = _WORD_BOUNDARY.split(message["content"] or "")
        for start in range(0, len(words), WORDS_PER_CHUNK):
            yield chunk({"content": "".join(words[start : start + WORDS_PER_CHUNK])})
    yield chunk({}, choice["finish_reason"])
    if include_usage:
        yield _event({**base, "choices": [], "usage": completion["usage"]})
    yield "data: [DONE]\n\n"


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


def _arguments_json(arguments: Any) -> str:
    # A string is sent as it is: how the hostile mode sends arguments that do not parse.
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
