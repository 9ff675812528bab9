"""The tools the agent's model may call, as Chat Completions function definitions (pure data).

Each tool maps to one Nexus operation; the JSON Schemas here are what the model sees, the
contract files in ``nexus/`` are what crosses the wire.

Names are chosen so that the words in them say when to use them: a real model reads the
descriptions, and the offline simulator matches the name's words against the customer's
message (``refund_order`` -> "refund", "order"; ``escalate_to_human`` -> "escalate", "human";
``lookup_ticket`` -> "ticket"), so the demo and the tests drive sensible conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tool:
    """One tool: its name (the one place it is spelled), what the model reads, its arguments."""

    name: str
    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]

    @property
    def definition(self) -> dict[str, Any]:
        """As Chat Completions takes it (``tools=[...]``)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": self.properties,
                    "required": list(self.required),
                    "additionalProperties": False,
                },
            },
        }


SEARCH_KNOWLEDGE = Tool(
    "search_knowledge",
    "Search the shop's policy and product documents; returns passages with their document ids.",
    {"query": {"type": "string", "description": "What to look for."}},
    ("query",),
)
LOOKUP_ORDER = Tool(
    "lookup_order",
    "Look up an order by its id (like ORD-1001): customer, status, totals, items.",
    {"order_id": {"type": "string"}},
    ("order_id",),
)
REFUND_ORDER = Tool(
    "refund_order",
    "Refund part or all of an order, in the order's currency. Refunds above the approval "
    "threshold wait for a person: the result then has status pending_approval and an approval id, "
    "and nothing is paid until a person approves.",
    {
        "order_id": {"type": "string"},
        "amount_cents": {"type": "integer", "minimum": 1, "description": "Amount in cents of the order's currency."},
        "reason": {"type": "string"},
        "currency": {
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "ISO code of the amount the customer named, if any; must be the order's currency.",
        },
    },
    ("order_id", "amount_cents", "reason"),
)
ESCALATE_TO_HUMAN = Tool(
    "escalate_to_human",
    "Hand the conversation to a human support agent by opening a support ticket; use it when the "
    "customer asks for a person or when you cannot help. Returns the ticket id.",
    {
        "reason": {"type": "string", "description": "What the customer needs, in one or two sentences."},
        "order_id": {"type": "string", "description": "The order it is about, if any."},
    },
    ("reason",),
)
LOOKUP_TICKET = Tool(
    "lookup_ticket",
    "Look up a support ticket by its id (like TCK-1001): subject, status, priority.",
    {"ticket_id": {"type": "string"}},
    ("ticket_id",),
)

CHECKED_TOOLS = (SEARCH_KNOWLEDGE, LOOKUP_ORDER, REFUND_ORDER)
"""The hops SystemCheckWorkflow makes, shown to the model as its tool calls."""
ALL_TOOLS = [t.definition for t in CHECKED_TOOLS]

SUPPORT = (SEARCH_KNOWLEDGE, LOOKUP_ORDER, REFUND_ORDER, ESCALATE_TO_HUMAN, LOOKUP_TICKET)
"""What SupportAgentWorkflow offers the model, in the order a simulator calls them; the
toolbox (``agent.support.toolbox``) has one handler for each, by these names."""
SUPPORT_TOOLS = [t.definition for t in SUPPORT]
