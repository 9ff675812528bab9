"""The tools the agent's model may call, as Chat Completions function definitions (pure data).

Each tool maps to one Nexus operation; the JSON Schemas here are what the model sees, the
contract files in ``nexus/`` are what crosses the wire.
"""

from __future__ import annotations

from typing import Any


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


SEARCH_KNOWLEDGE = _function(
    "search_knowledge",
    "Search the shop's policy and product documents; returns passages with their document ids.",
    {"query": {"type": "string", "description": "What to look for."}},
    ["query"],
)
LOOKUP_ORDER = _function(
    "lookup_order",
    "Look up an order by its id (like ORD-1001): customer, status, totals, items.",
    {"order_id": {"type": "string"}},
    ["order_id"],
)
REFUND_ORDER = _function(
    "refund_order",
    "Refund part or all of an order.",
    {
        "order_id": {"type": "string"},
        "amount_cents": {"type": "integer", "minimum": 1},
        "reason": {"type": "string"},
    },
    ["order_id", "amount_cents", "reason"],
)

ALL_TOOLS = [SEARCH_KNOWLEDGE, LOOKUP_ORDER, REFUND_ORDER]
