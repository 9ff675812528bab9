"""Contract of the ``business`` Nexus service (orders, refunds, tickets)."""

from __future__ import annotations

from dataclasses import dataclass, field

import nexusrpc

SERVICE_NAME = "business"


@dataclass
class GetOrderRequest:
    order_id: str


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


@dataclass
class RefundRequest:
    order_id: str
    amount_cents: int
    reason: str
    idempotency_key: str


@dataclass
class RefundResult:
    refund_id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    idempotency_key: str


TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_STATUSES = ("open", "closed")


@dataclass
class CreateTicketRequest:
    subject: str
    idempotency_key: str
    body: str = ""
    order_id: str | None = None
    priority: str = "normal"


@dataclass
class GetTicketRequest:
    ticket_id: str


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


@nexusrpc.service(name=SERVICE_NAME)
class BusinessService:
    get_order: nexusrpc.Operation[GetOrderRequest, Order]
    refund: nexusrpc.Operation[RefundRequest, RefundResult]
    create_ticket: nexusrpc.Operation[CreateTicketRequest, Ticket]
    get_ticket: nexusrpc.Operation[GetTicketRequest, Ticket]
