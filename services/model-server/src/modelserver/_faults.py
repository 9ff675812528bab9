"""Fault injection: a queue of rules that turn matching requests into provider failures, or,
with ``hostile``, into a model that works against the agent (``_hostile``).

Rules are checked in order; the first that applies to a request fires and has its ``times``
decremented (a rule without ``times`` fires forever). At most one rule fires per request.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast, get_args

from ._errors import APIFailure, context_length_exceeded, invalid_api_key

FaultKind = Literal["rate_limit", "server_error", "bad_request", "context_length", "auth", "slow", "hostile"]
KINDS: tuple[str, ...] = get_args(FaultKind)

_FIELDS = frozenset(
    {"kind", "times", "match", "endpoint", "status", "retry_after", "delay_s", "message", "behaviour", "order_id"}
)
HostileBehaviour = Literal[
    "other_customer",
    "above_remaining",
    "unasked_refund",
    "refund_burst",
    "unknown_tool",
    "bad_arguments",
    "obey_injection",
    "tool_loop",
]
BEHAVIOURS: tuple[str, ...] = get_args(HostileBehaviour)

Endpoint = Literal["chat.completions", "embeddings"]
ENDPOINTS: tuple[str, ...] = get_args(Endpoint)


class FaultConfigError(ValueError):
    """A fault rule that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class FaultRule:
    kind: FaultKind
    times: int | None = None
    match: str | None = None
    endpoint: Endpoint | None = None
    """Restricts the rule to one API (``chat.completions`` or ``embeddings``); None: both."""
    status: int = 500
    retry_after: float = 1.0
    delay_s: float = 1.0
    message: str | None = None
    behaviour: HostileBehaviour | None = None
    """``hostile`` only: what the model does against the agent (see ``_hostile``)."""
    order_id: str | None = None
    """``hostile`` only: the order it goes after (default: the one the customer named, or ORD-1001)."""

    @classmethod
    def from_json(cls, raw: Any, *, where: str = "fault") -> FaultRule:
        if not isinstance(raw, Mapping):
            raise FaultConfigError(f'{where} must be a JSON object like {{"kind": "rate_limit"}}.')
        # Unknown keys are rejected: a typo such as "time" would otherwise make a rule fire forever.
        unknown = sorted(set(raw) - _FIELDS)
        if unknown:
            raise FaultConfigError(
                f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}."
            )
        kind = raw.get("kind")
        if kind not in KINDS:
            raise FaultConfigError(f"{where}.kind must be one of {', '.join(KINDS)}; got {kind!r}.")
        times = raw.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise FaultConfigError(f"{where}.times must be a positive integer or absent (forever).")
        match = raw.get("match")
        if match is not None and (not isinstance(match, str) or not match):
            raise FaultConfigError(f"{where}.match must be a non-empty string.")
        endpoint = raw.get("endpoint")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise FaultConfigError(f"{where}.endpoint must be one of {', '.join(ENDPOINTS)} or absent (both).")
        status = raw.get("status", 500)
        if kind == "server_error" and (not isinstance(status, int) or not 500 <= status <= 599):
            raise FaultConfigError(f"{where}.status must be an HTTP 5xx status for server_error; got {status!r}.")
        retry_after = _non_negative(raw.get("retry_after", 1.0), f"{where}.retry_after")
        delay_s = _non_negative(raw.get("delay_s", 1.0), f"{where}.delay_s")
        message = raw.get("message")
        if message is not None and not isinstance(message, str):
            raise FaultConfigError(f"{where}.message must be a string.")
        behaviour = raw.get("behaviour")
        if (kind == "hostile") != (behaviour is not None) or (behaviour is not None and behaviour not in BEHAVIOURS):
            raise FaultConfigError(
                f"{where}.behaviour goes with kind hostile and must be one of {', '.join(BEHAVIOURS)}; "
                f"got {behaviour!r}."
            )
        order_id = raw.get("order_id")
        if order_id is not None and (kind != "hostile" or not isinstance(order_id, str) or not order_id):
            raise FaultConfigError(f"{where}.order_id is a non-empty string, for kind hostile only.")
        return cls(
            kind=cast(FaultKind, kind),
            times=times,
            match=match,
            endpoint=cast(Endpoint | None, endpoint),
            status=status if isinstance(status, int) else 500,
            retry_after=retry_after,
            delay_s=delay_s,
            behaviour=cast(HostileBehaviour | None, behaviour),
            order_id=order_id,
            message=message,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "times": self.times, "match": self.match}
        if self.endpoint is not None:
            out["endpoint"] = self.endpoint
        if self.kind == "server_error":
            out["status"] = self.status
        if self.kind == "rate_limit":
            out["retry_after"] = self.retry_after
        if self.kind == "slow":
            out["delay_s"] = self.delay_s
        if self.message is not None:
            out["message"] = self.message
        if self.behaviour is not None:
            out["behaviour"] = self.behaviour
        if self.order_id is not None:
            out["order_id"] = self.order_id
        return out

    def applies_to(self, user_text: str, request_key: str | None, endpoint: str = "chat.completions") -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        if self.match is None:
            return True
        return self.match in user_text or (request_key is not None and self.match in request_key)


def parse_rules(raw: Any) -> list[FaultRule]:
    """Rules from a JSON list, or from an object ``{"faults": [...]}``."""
    if isinstance(raw, Mapping) and "faults" in raw:
        raw = raw["faults"]
    if not isinstance(raw, list):
        raise FaultConfigError('Faults must be a JSON list of rules, e.g. [{"kind": "rate_limit", "times": 1}].')
    return [FaultRule.from_json(item, where=f"faults[{i}]") for i, item in enumerate(raw)]


def parse_rules_text(text: str, *, source: str) -> list[FaultRule]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaultConfigError(f"{source} is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    try:
        return parse_rules(raw)
    except FaultConfigError as exc:
        raise FaultConfigError(f"{source}: {exc}") from None


class FaultQueue:
    """Thread-safe, because the ASGI app and admin calls may come from different threads in tests."""

    def __init__(self, rules: list[FaultRule] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = list(rules or [])

    def replace(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def clear(self) -> None:
        self.replace([])

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)

    def take(self, user_text: str, request_key: str | None, endpoint: str = "chat.completions") -> FaultRule | None:
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.applies_to(user_text, request_key, endpoint):
                    continue
                if rule.times is None:
                    return rule
                if rule.times <= 1:
                    del self._rules[index]
                else:
                    self._rules[index] = replace(rule, times=rule.times - 1)
                return rule
        return None


def failure_for(rule: FaultRule, *, model: str, context_window: int, prompt_tokens: int) -> APIFailure | None:
    """The error a rule produces, or None for rules that change the answer instead (``slow``
    delays it, ``hostile`` replaces it)."""
    note = " (simulated fault)"
    if rule.kind == "rate_limit":
        seconds = rule.retry_after
        return APIFailure(
            429,
            rule.message or f"Rate limit reached for requests{note}. Please try again in {_fmt(seconds)}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                # Retry-After is whole seconds by RFC 9110; retry-after-ms keeps sub-second precision
                # and is what the openai client prefers when both are present.
                "retry-after": str(math.ceil(seconds)),
                "retry-after-ms": str(round(seconds * 1000)),
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{_fmt(seconds)}s",
            },
        )
    if rule.kind == "server_error":
        return APIFailure(
            rule.status,
            rule.message or f"The server had an error while processing your request{note}.",
            type="server_error",
            code="server_error",
        )
    if rule.kind == "bad_request":
        return APIFailure(400, rule.message or f"Invalid request{note}.", code="invalid_request")
    if rule.kind == "context_length":
        failure = context_length_exceeded(model, context_window, max(prompt_tokens, context_window + 1))
        return replace(failure, message=rule.message or failure.message.rstrip(".") + note + ".")
    if rule.kind == "auth":
        failure = invalid_api_key()
        return replace(failure, message=rule.message or f"Incorrect API key provided{note}.")
    return None


def _non_negative(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FaultConfigError(f"{where} must be a non-negative number of seconds; got {value!r}.")
    return float(value)


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
