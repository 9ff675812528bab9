"""What every business store shares: the ``Store`` protocol, its errors, the seed orders and the
rules a refund or a ticket must pass, whichever database holds them.

The protocol is the seam between the embedded default (:mod:`business.store.sqlite`) and the
server database (:mod:`business.store.postgres`); callers (activities, the Nexus handler) only
ever see a ``Store``. Both implementations pass one conformance suite
(``services/business-py/tests/test_store_conformance.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from nexus_contracts.business import (
    MIN_AMOUNT_CENTS,
    REFUND_COMPLETED,
    TICKET_PRIORITIES,
    CreateTicketRequest,
    Order,
    OrderItem,
    RefundResult,
    Ticket,
)

# Numbers start above zero-padded-looking ids so a ticket id never reads like a count.
FIRST_TICKET_NUMBER = 1001


@dataclass(frozen=True)
class SeedOrder:
    order_id: str
    customer: str
    customer_id: str
    status: str
    currency: str
    items: tuple[OrderItem, ...]

    @property
    def total_cents(self) -> int:
        return sum(item.quantity * item.price_cents for item in self.items)


# ORD-1001 is exactly nexus/business/examples/get_order.output.json: the contract example and a
# live lookup on a fresh stack must agree.
SEED_ORDERS: tuple[SeedOrder, ...] = (
    SeedOrder(
        "ORD-1001",
        "Ada Lovelace",
        "cust-ada",
        "delivered",
        "EUR",
        (OrderItem("KB-01", "Mechanical keyboard", 1, 12900),),
    ),
    SeedOrder(
        "ORD-1002",
        "Grace Hopper",
        "cust-grace",
        "shipped",
        "USD",
        (OrderItem("DK-07", "USB-C dock", 1, 8900), OrderItem("CB-02", "HDMI cable", 2, 1200)),
    ),
    SeedOrder("ORD-1003", "Alan Turing", "cust-alan", "placed", "EUR", (OrderItem("MA-03", "Monitor arm", 1, 5400),)),
    SeedOrder(
        "ORD-1004",
        "Katherine Johnson",
        "cust-katherine",
        "delivered",
        "USD",
        (
            OrderItem("HP-11", "Noise-cancelling headphones", 1, 24900),
            OrderItem("CS-04", "Carrying case", 1, 1900),
        ),
    ),
    SeedOrder(
        "ORD-1005",
        "Edsger Dijkstra",
        "cust-edsger",
        "delivered",
        "EUR",
        (OrderItem("MS-05", "Ergonomic mouse", 1, 4900), OrderItem("MP-01", "Mouse pad", 2, 900)),
    ),
    SeedOrder(
        "ORD-1006", "Barbara Liskov", "cust-barbara", "shipped", "EUR", (OrderItem("LS-02", "Laptop stand", 1, 3900),)
    ),
)


class StoreError(RuntimeError):
    """The store cannot serve at all (database unreachable, schema missing or too new): one
    sentence that says what to do; never a password."""


class OrderNotFound(LookupError):
    """No order has the requested id."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} does not exist")
        self.order_id = order_id


class InvalidRefund(ValueError):
    """The refund cannot be applied as asked (amount not positive, or more than is left)."""


class InvalidTicket(ValueError):
    """The ticket cannot be created as asked (empty subject, unknown priority, empty key)."""


class Store(Protocol):
    """Orders, refunds and tickets; refunds and tickets are written once per idempotency key.

    Both implementations subclass it (a protocol may be inherited from) for the conveniences
    at its end; anything else satisfying it structurally works too.

    Every method is synchronous and safe to call from many threads at once; exactly-once holds
    across threads, processes and replicas because the database enforces it.
    """

    def close(self) -> None: ...

    def unready_reason(self) -> str | None:
        """Why the store cannot serve now (None: it can); the worker's readiness probe asks."""
        ...

    def get_order(self, order_id: str) -> Order | None: ...

    def refunds_for_order(self, order_id: str) -> list[RefundResult]: ...

    def check_refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        """Raise what :meth:`refund_once` would raise now, writing nothing (advisory)."""
        ...

    def refund_once(
        self, order_id: str, amount_cents: int, reason: str, idempotency_key: str
    ) -> tuple[RefundResult, bool]:
        """Refund once per key; True if this call made the refund (False: the key's earlier
        refund, returned unchanged whatever this call's other arguments say).

        Raises :class:`OrderNotFound` or :class:`InvalidRefund` for a new key that cannot be
        refunded; both are final.
        """
        ...

    def ticket_once(self, request: CreateTicketRequest) -> tuple[Ticket, bool]:
        """Open a ticket once per key (numbered ``TCK-1001``, ``TCK-1002``, ... in order); True if
        this call opened it. Raises :class:`OrderNotFound` or :class:`InvalidTicket`."""
        ...

    def get_ticket(self, ticket_id: str) -> Ticket | None: ...

    def record_refusal(self, operation: str, customer_id: str, target: str, owner: str) -> None:
        """Audit one request refused because its customer does not own what it names."""
        ...

    def refusals(self) -> list[dict[str, str]]:
        """Every audited refusal, oldest first (keys: at, operation, customer_id, target, owner)."""
        ...

    # Derived from the two keyed writes; implementations subclass Store to inherit them.

    def apply_refund(self, order_id: str, amount_cents: int, reason: str, idempotency_key: str) -> RefundResult:
        """Refund ``amount_cents`` of an order, once per ``idempotency_key`` (see ``refund_once``)."""
        return self.refund_once(order_id, amount_cents, reason, idempotency_key)[0]

    def create_ticket(
        self,
        subject: str,
        idempotency_key: str,
        body: str = "",
        order_id: str | None = None,
        priority: str = "normal",
        customer_id: str | None = None,
    ) -> Ticket:
        """Open a ticket, once per ``idempotency_key`` (see ``ticket_once``)."""
        request = CreateTicketRequest(subject, idempotency_key, body, order_id, priority, customer_id)
        return self.ticket_once(request)[0]


REFUND_COLUMNS = "refund_id, order_id, amount_cents, currency, idempotency_key"
TICKET_COLUMNS = "ticket_id, order_id, subject, body, priority, status, created_at, idempotency_key, customer_id"


def refund_from_row(row: Mapping[str, Any]) -> RefundResult:
    """A stored refund (REFUND_COLUMNS) as the contract's result. Only completed refunds are
    stored: the row is written in the transaction that moves the money."""
    return RefundResult(
        refund_id=row["refund_id"],
        order_id=row["order_id"],
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        status=REFUND_COMPLETED,
        idempotency_key=row["idempotency_key"],
    )


def refund_id_for(idempotency_key: str) -> str:
    """The refund id a key always maps to, so a retry reports the id of the first attempt.

    64 bits of the hash: 32 (the example's length) collide with ~1% odds at ten thousand keys,
    and refund_id is a primary key.
    """
    return "RF-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


def format_money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


def now_text() -> str:
    """Timestamps as the contract shows them: UTC, ISO 8601, milliseconds."""
    return format_time(datetime.now(UTC))


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def check_refund_amount(order_id: str, amount_cents: int, total_cents: int, refunded_cents: int, currency: str) -> None:
    """Raise :class:`InvalidRefund` unless ``amount_cents`` fits in what is left of the order."""
    remaining = total_cents - refunded_cents
    if amount_cents < MIN_AMOUNT_CENTS:
        raise InvalidRefund(f"refund amount must be a positive number of cents, got {amount_cents}")
    if amount_cents > remaining:
        raise InvalidRefund(
            f"cannot refund {format_money(amount_cents, currency)} on order {order_id}: "
            f"only {format_money(remaining, currency)} of "
            f"{format_money(total_cents, currency)} is left to refund"
        )


def check_new_ticket(subject: str, priority: str) -> None:
    """Raise :class:`InvalidTicket` for a new ticket that cannot be opened as asked."""
    if not subject.strip():
        raise InvalidTicket("a ticket needs a non-empty subject")
    if priority not in TICKET_PRIORITIES:
        raise InvalidTicket(f"priority must be one of {', '.join(TICKET_PRIORITIES)}, got {priority!r}")


def check_key(idempotency_key: str, what: type[ValueError], noun: str) -> None:
    if not idempotency_key:
        raise what(f"{noun} needs a non-empty idempotency key")
