"""Fill a tool's JSON Schema ``parameters`` from the user's latest message.

Required parameters must be filled or the tool is not called; optional ones are included only
when a specific extractor finds something (an id, an amount, an enum value named in the text),
so a simulated call never invents data a real model would have had to guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._extract import first_id, first_integer, first_money

_TEXT_PARAMS = frozenset({"query", "q", "question", "text", "message", "prompt", "input", "search", "reason"})


class Unfillable(Exception):
    """A required parameter cannot be derived from the message."""

    def __init__(self, param: str) -> None:
        super().__init__(param)
        self.param = param


def build_arguments(parameters: Mapping[str, Any], message: str) -> dict[str, Any]:
    """Arguments in the schema's property order; raises ``Unfillable`` for a required gap."""
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    text = message.strip()
    arguments: dict[str, Any] = {}
    if not isinstance(properties, Mapping):
        return arguments
    for name, schema in properties.items():
        schema = schema if isinstance(schema, Mapping) else {}
        is_required = name in required
        value = _fill(str(name), schema, text, required=is_required)
        if value is not _MISSING:
            arguments[name] = value
        elif is_required:
            raise Unfillable(str(name))
    return arguments


class _Missing:
    pass


_MISSING: Any = _Missing()


def _primary_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "enum" in schema:
        return "string"
    if kind is None:
        # anyOf/oneOf: take the first non-null branch, which is how pydantic emits Optional[X].
        for branch in schema.get("anyOf") or schema.get("oneOf") or ():
            if isinstance(branch, Mapping) and branch.get("type") not in (None, "null"):
                return _primary_type(branch)
    return kind if isinstance(kind, str) else "string"


def _fill(name: str, schema: Mapping[str, Any], text: str, *, required: bool) -> Any:
    lowered = name.lower()
    kind = _primary_type(schema)

    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        mentioned = next((v for v in enum if isinstance(v, str) and v.lower() in text.lower()), None)
        if mentioned is not None:
            return mentioned
        return enum[0] if required else _MISSING

    if kind == "string":
        if lowered == "id" or lowered.endswith("_id"):
            return first_id(text) or _MISSING
        if lowered == "currency":
            money = first_money(text)
            return money.currency if money else _MISSING
        if required or lowered in _TEXT_PARAMS:
            return text if text else _MISSING
        return _MISSING

    if kind in ("integer", "number"):
        if lowered.endswith("_cents"):
            money = first_money(text)
            return money.cents if money else _MISSING
        if lowered == "id" or lowered.endswith("_id"):
            ident = first_id(text)
            if ident:
                return int(ident.rsplit("-", 1)[1])
            number = first_integer(text)
            return number if number is not None else _MISSING
        if "default" in schema:
            return schema["default"]
        if not required:
            return _MISSING
        return schema.get("minimum", 1)

    if kind == "boolean":
        return False if required or "default" not in schema else schema["default"]
    if kind == "array":
        return [] if required else _MISSING
    if kind == "object":
        return {} if required else _MISSING
    return _MISSING
