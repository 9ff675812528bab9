"""The business worker's own metrics (listed in ``ops/metrics/catalogue.yaml``).

Recorded through Temporal's meters, so they are served with the SDK's on the worker's one
``/metrics`` endpoint. Label values are fixed: no order, refund or ticket ids.
"""

from __future__ import annotations

from temporalio import activity, nexus

REFUNDS = "business_refunds"
TICKETS_CREATED = "business_tickets_created"
ACCESS_REFUSALS = "business_access_refusals"

# business_refunds_total{outcome}
REFUNDED = "refunded"
DUPLICATE = "duplicate"
REJECTED = "rejected"
NOT_FOUND = "not_found"


def record_refund(outcome: str) -> None:
    """From inside the refund activity."""
    activity.metric_meter().create_counter(REFUNDS, "Refund requests by outcome.").add(1, {"outcome": outcome})


def record_access_refused(operation: str) -> None:
    """From inside a Nexus handler that refused a customer another customer's order or ticket."""
    nexus.metric_meter().create_counter(
        ACCESS_REFUSALS, "Requests refused because the acting customer does not own the order or ticket."
    ).add(1, {"operation": operation})


def record_ticket_created() -> None:
    """From inside the create_ticket Nexus handler, for a new ticket only."""
    nexus.metric_meter().create_counter(TICKETS_CREATED, "New tickets opened.").add(1)
