"""The embedded store (the default): orders, refunds and tickets in one SQLite file.

The write side of exactly-once refunds: ``refunds.idempotency_key`` is UNIQUE and
:meth:`SqliteStore.refund_once` checks for it and writes in one ``BEGIN IMMEDIATE`` transaction,
so a key is refunded at most once no matter how many workflow runs, activity retries, worker
processes or threads ask for it. One file serves one worker deployment (one replica): scale out
with :mod:`business.store.postgres`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from business.store.common import (
    FIRST_TICKET_NUMBER,
    REFUND_COLUMNS,
    SEED_ORDERS,
    TICKET_COLUMNS,
    InvalidRefund,
    InvalidTicket,
    OrderNotFound,
    Store,
    StoreError,
    check_key,
    check_new_ticket,
    check_refund_amount,
    now_text,
    refund_from_row,
    refund_id_for,
)
from nexus_contracts.business import (
    ORDER_PARTIALLY_REFUNDED,
    ORDER_REFUNDED,
    REFUND_COMPLETED,
    TICKET_OPEN,
    CreateTicketRequest,
    Order,
    OrderItem,
    RefundResult,
    Ticket,
)

DB_PATH_ENV = "BUSINESS_DB_PATH"
DEFAULT_DB_PATH = Path(".data") / "business.sqlite3"

# Long enough to ride out another process's refund transaction (milliseconds), short enough
# that a wedged writer surfaces as a retryable activity failure instead of a hung worker.
BUSY_TIMEOUT_MS = 5000

SCHEMA_VERSION = 3


_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id       TEXT PRIMARY KEY,
    customer       TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN
                       ('placed', 'shipped', 'delivered', 'partially_refunded', 'refunded')),
    total_cents    INTEGER NOT NULL CHECK (total_cents >= 0),
    refunded_cents INTEGER NOT NULL DEFAULT 0
                       CHECK (refunded_cents >= 0 AND refunded_cents <= total_cents),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    created_at     TEXT NOT NULL,
    customer_id    TEXT NOT NULL DEFAULT '',
    fulfilment     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id    TEXT NOT NULL REFERENCES orders(order_id),
    line_no     INTEGER NOT NULL,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity >= 1),
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE IF NOT EXISTS refunds (
    refund_id       TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders(order_id),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    currency        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds(order_id);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id       TEXT PRIMARY KEY,
    order_id        TEXT REFERENCES orders(order_id),
    subject         TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    body            TEXT NOT NULL DEFAULT '',
    priority        TEXT NOT NULL DEFAULT 'normal',
    customer_id     TEXT
);
CREATE TABLE IF NOT EXISTS access_refusals (
    at           TEXT NOT NULL,
    operation    TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    target       TEXT NOT NULL,
    owner        TEXT NOT NULL
);
"""

# Columns added after version 1 (whose tickets table had no operations yet): ALTER TABLE
# brings an existing file up to date, so a dev stack's orders and refunds survive the upgrade.
_ADDED_TICKET_COLUMNS = {
    "body": "TEXT NOT NULL DEFAULT ''",
    "priority": "TEXT NOT NULL DEFAULT 'normal'",
    "customer_id": "TEXT",
}
# Version 3: who owns an order (backfilled for the seeded orders of an older file).
_ADDED_ORDER_COLUMNS = {"customer_id": "TEXT NOT NULL DEFAULT ''", "fulfilment": "TEXT NOT NULL DEFAULT ''"}


def _ticket_from_row(row: sqlite3.Row) -> Ticket:
    return Ticket(**{key: row[key] for key in row.keys()})


class SqliteStore(Store):
    """One connection (a worker opens one store), shared by the worker's threads under a lock.

    SQLite serialises writers anyway; the lock keeps one connection's transactions from
    interleaving, and ``BEGIN IMMEDIATE`` + ``busy_timeout`` arbitrate between processes.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), never implicit.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._refuse_newer_schema()
            self._migrate_and_seed()
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def unready_reason(self) -> str | None:
        try:
            with self._lock:
                self._conn.execute("SELECT 1 FROM orders LIMIT 1").fetchall()
        except sqlite3.Error as err:
            return f"the business database at {self.path} cannot be read: {err}"
        return None

    def _refuse_newer_schema(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the business database at {self.path} has schema version {version}, newer than this build's "
                f"{SCHEMA_VERSION}: run a business worker at least as new as the one that wrote it"
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate_and_seed(self) -> None:
        # One write transaction, so two processes opening a fresh file seed it once.
        with self._write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table, added in (("tickets", _ADDED_TICKET_COLUMNS), ("orders", _ADDED_ORDER_COLUMNS)):
                present = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
                for column, definition in added.items():
                    if column not in present:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            for seed in SEED_ORDERS:
                conn.execute(
                    "UPDATE orders SET customer_id = ? WHERE order_id = ? AND customer_id = ''",
                    (seed.customer_id, seed.order_id),
                )
                conn.execute(
                    "UPDATE orders SET fulfilment = ? WHERE order_id = ? AND fulfilment = ''",
                    (seed.status, seed.order_id),
                )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0:
                self._seed(conn)

    @staticmethod
    def _seed(conn: sqlite3.Connection) -> None:
        created = now_text()
        for order in SEED_ORDERS:
            total = order.total_cents
            conn.execute(
                "INSERT INTO orders (order_id, customer, customer_id, status, fulfilment, total_cents,"
                " refunded_cents, currency, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (
                    order.order_id,
                    order.customer,
                    order.customer_id,
                    order.status,
                    order.status,
                    total,
                    order.currency,
                    created,
                ),
            )
            conn.executemany(
                "INSERT INTO order_items (order_id, line_no, sku, name, quantity, price_cents)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (order.order_id, line_no, item.sku, item.name, item.quantity, item.price_cents)
                    for line_no, item in enumerate(order.items, start=1)
                ],
            )

    def get_order(self, order_id: str) -> Order | None:
        with self._lock:
            return self._read_order(self._conn, order_id)

    @staticmethod
    def _read_order(conn: sqlite3.Connection, order_id: str) -> Order | None:
        row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is None:
            return None
        items = conn.execute(
            "SELECT sku, name, quantity, price_cents FROM order_items WHERE order_id = ? ORDER BY line_no",
            (order_id,),
        ).fetchall()
        return Order(
            order_id=row["order_id"],
            customer=row["customer"],
            customer_id=row["customer_id"],
            fulfilment=row["fulfilment"],
            status=row["status"],
            total_cents=row["total_cents"],
            refunded_cents=row["refunded_cents"],
            currency=row["currency"],
            items=[OrderItem(i["sku"], i["name"], i["quantity"], i["price_cents"]) for i in items],
        )

    @staticmethod
    def _read_refund(conn: sqlite3.Connection, idempotency_key: str) -> RefundResult | None:
        row = conn.execute(
            f"SELECT {REFUND_COLUMNS} FROM refunds WHERE idempotency_key = ?", (idempotency_key,)
        ).fetchone()
        return None if row is None else refund_from_row(row)

    def refunds_for_order(self, order_id: str) -> list[RefundResult]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = ? ORDER BY created_at, refund_id",
                (order_id,),
            ).fetchall()
        return [refund_from_row(row) for row in rows]

    def check_refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        """Raise what :meth:`apply_refund` would raise now, without writing anything.

        Lets the Nexus handler reject a hopeless request before starting a workflow. Only
        advisory: another refund may land in between, and :meth:`apply_refund` checks again.
        """
        with self._lock:
            if self._read_refund(self._conn, idempotency_key) is None:
                self._refundable_order(self._conn, order_id, amount_cents)

    @staticmethod
    def _refundable_order(conn: sqlite3.Connection, order_id: str, amount_cents: int) -> sqlite3.Row:
        order: sqlite3.Row | None = conn.execute(
            "SELECT total_cents, refunded_cents, currency FROM orders WHERE order_id = ?",
            (order_id,),
        ).fetchone()
        if order is None:
            raise OrderNotFound(order_id)
        check_refund_amount(order_id, amount_cents, order["total_cents"], order["refunded_cents"], order["currency"])
        return order

    def refund_once(
        self, order_id: str, amount_cents: int, reason: str, idempotency_key: str
    ) -> tuple[RefundResult, bool]:
        """Refund ``amount_cents`` of an order, once per ``idempotency_key``; True if this call
        made the refund (False: the key's earlier refund, returned unchanged).

        If the key was refunded before, the stored refund is returned unchanged and nothing
        is written, even when this call's order, amount or reason differ: the key names the
        refund, and the first request to reach the database defines it. (A caller that wants
        a second refund must use a new key.) Validation happens only for a new key, so a
        retry of a refund that emptied the order still succeeds.

        Raises :class:`OrderNotFound` or :class:`InvalidRefund` for a new key that cannot be
        refunded; both are final, retrying cannot change the answer.
        """
        check_key(idempotency_key, InvalidRefund, "a refund")
        with self._write() as conn:
            existing = self._read_refund(conn, idempotency_key)
            if existing is not None:
                return existing, False
            order = self._refundable_order(conn, order_id, amount_cents)
            currency = order["currency"]
            refund_id = refund_id_for(idempotency_key)
            conn.execute(
                "INSERT INTO refunds (refund_id, order_id, amount_cents, currency, reason,"
                " idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (refund_id, order_id, amount_cents, currency, reason, idempotency_key, now_text()),
            )
            refunded = order["refunded_cents"] + amount_cents
            status = ORDER_REFUNDED if refunded == order["total_cents"] else ORDER_PARTIALLY_REFUNDED
            conn.execute(
                "UPDATE orders SET refunded_cents = ?, status = ? WHERE order_id = ?",
                (refunded, status, order_id),
            )
            return RefundResult(
                refund_id=refund_id,
                order_id=order_id,
                amount_cents=amount_cents,
                currency=currency,
                status=REFUND_COMPLETED,
                idempotency_key=idempotency_key,
            ), True

    def ticket_once(self, request: CreateTicketRequest) -> tuple[Ticket, bool]:
        """Open a ticket, once per idempotency key; True if this call opened it.

        As with refunds, the key names the ticket: a known key returns the stored ticket
        unchanged, whatever this call's other fields say, so an agent step retried after a
        lost reply never opens a second ticket. Ticket numbers are assigned in order inside
        the write transaction (``TCK-1001``, ``TCK-1002``, ...), short enough to read out on
        the phone.

        Raises :class:`OrderNotFound` or :class:`InvalidTicket` for a new key that cannot
        become a ticket; both are final.
        """
        subject, idempotency_key, body = request.subject, request.idempotency_key, request.body
        order_id, priority, customer_id = request.order_id, request.priority, request.customer_id
        check_key(idempotency_key, InvalidTicket, "a ticket")
        with self._write() as conn:
            existing = self._read_ticket(conn, "idempotency_key", idempotency_key)
            if existing is not None:
                return existing, False
            check_new_ticket(subject, priority)
            if order_id is not None and self._read_order(conn, order_id) is None:
                raise OrderNotFound(order_id)
            last = conn.execute(
                "SELECT MAX(CAST(substr(ticket_id, 5) AS INTEGER)) FROM tickets WHERE ticket_id LIKE 'TCK-%'"
            ).fetchone()[0]
            ticket = Ticket(
                ticket_id=f"TCK-{max(last or 0, FIRST_TICKET_NUMBER - 1) + 1}",
                order_id=order_id,
                subject=subject,
                body=body,
                priority=priority,
                status=TICKET_OPEN,
                created_at=now_text(),
                idempotency_key=idempotency_key,
                customer_id=customer_id,
            )
            conn.execute(
                f"INSERT INTO tickets ({TICKET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket.ticket_id,
                    ticket.order_id,
                    ticket.subject,
                    ticket.body,
                    ticket.priority,
                    ticket.status,
                    ticket.created_at,
                    ticket.idempotency_key,
                    ticket.customer_id,
                ),
            )
            return ticket, True

    def record_refusal(self, operation: str, customer_id: str, target: str, owner: str) -> None:
        """Audit one request refused because its customer does not own what it names."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO access_refusals (at, operation, customer_id, target, owner) VALUES (?, ?, ?, ?, ?)",
                (now_text(), operation, customer_id, target, owner),
            )

    def refusals(self) -> list[dict[str, str]]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM access_refusals ORDER BY rowid").fetchall()
        return [dict(row) for row in rows]

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        with self._lock:
            return self._read_ticket(self._conn, "ticket_id", ticket_id)

    @staticmethod
    def _read_ticket(conn: sqlite3.Connection, column: str, value: str) -> Ticket | None:
        # ``column`` is one of two literals from this module, never caller input.
        row = conn.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {column} = ?", (value,)).fetchone()
        return None if row is None else _ticket_from_row(row)
