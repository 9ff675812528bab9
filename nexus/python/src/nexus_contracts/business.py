"""Contract of the ``business`` Nexus service (orders, refunds, tickets)."""

from __future__ import annotations

from dataclasses import dataclass, field

import nexusrpc

SERVICE_NAME = "business"
# The endpoint callers reach this service through unless configured otherwise; an entry of
# nexus/endpoints.json for this service (tested).
DEFAULT_ENDPOINT = "business"

# Limits of nexus/business/schemas/*.json, which the business handler enforces (BAD_REQUEST
# beyond them) because the SDK does not validate payloads against the schemas. Each is named
# once here; nexus/python/tests ties every one to the schema location it comes from.
MAX_CUSTOMER_ID_LENGTH = 64
MAX_ORDER_ID_LENGTH = 64
MAX_TICKET_ID_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 200
MIN_AMOUNT_CENTS = 1
MAX_REASON_LENGTH = 2000
MAX_SUBJECT_LENGTH = 200
MAX_BODY_LENGTH = 8000


# ``customer_id`` on a request is the customer the caller acts for, set by the caller's code from
# an authenticated identity (never by a model): the service refuses that customer any order or
# ticket of someone else. None is a system caller (the system check, an operator's script),
# allowed everything and recorded as such.


@dataclass
class GetOrderRequest:
    order_id: str
    customer_id: str | None = None


@dataclass
class OrderItem:
    sku: str
    name: str
    quantity: int
    price_cents: int


@dataclass
class Order:
    order_id: str
    customer: str
    status: str
    total_cents: int
    refunded_cents: int
    currency: str
    items: list[OrderItem] = field(default_factory=list)
    customer_id: str = ""
    """Who owns the order (empty in results recorded before owners were kept)."""
    fulfilment: str = ""
    """``placed``, ``shipped`` or ``delivered``: where the goods are, which ``status`` stops saying
    once a refund makes it ``partially_refunded`` (empty in results recorded before)."""


@dataclass
class RefundRequest:
    order_id: str
    amount_cents: int
    reason: str
    idempotency_key: str
    customer_id: str | None = None


@dataclass
class RefundResult:
    refund_id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    idempotency_key: str


TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_OPEN = "open"
TICKET_STATUSES = (TICKET_OPEN, "closed")
# Where an order's goods are (``Order.fulfilment``), and its status, which a refund overrides.
FULFILMENT_STATES = ("placed", "shipped", "delivered")
ORDER_REFUNDED = "refunded"
ORDER_PARTIALLY_REFUNDED = "partially_refunded"
ORDER_STATUSES = (*FULFILMENT_STATES, ORDER_REFUNDED, ORDER_PARTIALLY_REFUNDED)
REFUND_COMPLETED = "completed"
REFUND_STATUSES = (REFUND_COMPLETED,)


@dataclass
class CreateTicketRequest:
    subject: str
    idempotency_key: str
    body: str = ""
    order_id: str | None = None
    priority: str = "normal"
    customer_id: str | None = None


@dataclass
class GetTicketRequest:
    ticket_id: str
    customer_id: str | None = None


@dataclass
class Ticket:
    ticket_id: str
    order_id: str | None
    subject: str
    body: str
    priority: str
    status: str
    created_at: str
    idempotency_key: str
    customer_id: str | None = None
    """The customer it was opened for (None: by a system caller)."""


@nexusrpc.service(name=SERVICE_NAME)
class BusinessService:
    get_order: nexusrpc.Operation[GetOrderRequest, Order]
    refund: nexusrpc.Operation[RefundRequest, RefundResult]
    create_ticket: nexusrpc.Operation[CreateTicketRequest, Ticket]
    get_ticket: nexusrpc.Operation[GetTicketRequest, Ticket]
