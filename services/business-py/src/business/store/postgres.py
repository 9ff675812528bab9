"""The server store: orders, refunds and tickets in PostgreSQL, shared by any number of worker
replicas (psycopg 3 with a psycopg-pool connection pool).

Exactly-once comes from the database, not from there being one process:

- a refund locks its order's row (``SELECT ... FOR UPDATE``) before it reads what is left, so
  two refunds of one order are applied one after the other, whichever replicas run them, and
  ``CHECK (refunded_cents <= total_cents)`` refuses any write that would go above the total;
- ``refunds.idempotency_key`` and ``tickets.idempotency_key`` are UNIQUE: a key that races
  itself (on two orders, say) inserts once (``ON CONFLICT DO NOTHING``), and the loser returns
  the winner's row;
- ticket numbers come from one counter row locked by the transaction that opens the ticket, so
  they stay in order and without gaps.

The schema is versioned (``migrations/NNNN_name.sql``, table ``schema_migrations``) and applied
by ``business migrate`` only; a worker refuses a database that is unmigrated, behind, or newer
than its build.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

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
    format_time,
    refund_from_row,
    refund_id_for,
)
from business.store.settings import PostgresSettings
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

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Two `business migrate` runs at once (two Helm releases, a Job retried while the first still
# runs) take turns on this transaction-scoped lock instead of both creating the tables.
_MIGRATION_LOCK = 0x6275_7369_6E65_7373  # "business"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The schema's versions, in order, as shipped in this build."""
    found = []
    for entry in resources.files("business.store").joinpath("migrations").iterdir():
        if match := _MIGRATION_NAME.match(entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    assert [m.version for m in found] == list(range(1, len(found) + 1)), "migration versions must be 1, 2, 3, ..."
    return found


SCHEMA_VERSION = len(migrations())


def where(settings: PostgresSettings) -> str:
    """``user@host:port/database`` as libpq would resolve it (URL, then PG* variables): for
    messages. Never the password."""
    try:
        parts = conninfo_to_dict(settings.url)
    except psycopg.ProgrammingError:
        return "(an unparsable BUSINESS_DATABASE_URL)"

    def part(key: str, env: str, default: str) -> str:
        return str(parts.get(key) or os.environ.get(env) or default)

    user = part("user", "PGUSER", "(current user)")
    host = part("host", "PGHOST", "localhost")
    return f"{user}@{host}:{part('port', 'PGPORT', '5432')}/{part('dbname', 'PGDATABASE', user)}"


def _connect_args(settings: PostgresSettings) -> dict[str, Any]:
    args: dict[str, Any] = {"connect_timeout": settings.connect_timeout_s, "application_name": "business-worker"}
    if settings.password is not None:
        args["password"] = settings.password
    return args


def _connect(settings: PostgresSettings) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.url, autocommit=True, **_connect_args(settings))
    except psycopg.ProgrammingError as err:
        raise StoreError(f"BUSINESS_DATABASE_URL is not a libpq URL or connection string: {err}") from None
    except psycopg.OperationalError as err:
        reason = " ".join(str(err).split())
        raise StoreError(
            f"cannot reach the business database at {where(settings)}: {reason}; "
            "check BUSINESS_DATABASE_URL (or the PG* variables) and the password"
        ) from None


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The database's schema version; 0 before the first migration."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def _too_new(settings: PostgresSettings, version: int) -> StoreError:
    return StoreError(
        f"the business database at {where(settings)} has schema version {version}, newer than this build's "
        f"{SCHEMA_VERSION}: run a business worker (and `business migrate`) at least as new as the one that upgraded it"
    )


@dataclass(frozen=True)
class MigrationReport:
    where: str
    before: int
    after: int


def migrate(settings: PostgresSettings) -> MigrationReport:
    """Bring the database to this build's schema (and seed an empty one); idempotent, and safe to
    run from several places at once. Refuses a database newer than the build."""
    with _connect(settings) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            before = schema_version(conn)
            if before > SCHEMA_VERSION:
                raise _too_new(settings, before)
            for migration in migrations()[before:]:
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
                )
                log.info("business database: applied migration %04d_%s", migration.version, migration.name)
            _seed(conn)
    return MigrationReport(where(settings), before, SCHEMA_VERSION)


def _seed(conn: psycopg.Connection[Any]) -> None:
    """The demo's orders, once: never again once any order exists, so refunds survive."""
    if conn.execute("SELECT 1 FROM orders LIMIT 1").fetchone() is not None:
        return
    for order in SEED_ORDERS:
        conn.execute(
            "INSERT INTO orders (order_id, customer, customer_id, status, fulfilment, total_cents, currency)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                order.order_id,
                order.customer,
                order.customer_id,
                order.status,
                order.status,
                order.total_cents,
                order.currency,
            ),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO order_items (order_id, line_no, sku, name, quantity, price_cents)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (order.order_id, line_no, item.sku, item.name, item.quantity, item.price_cents)
                    for line_no, item in enumerate(order.items, start=1)
                ],
            )


def _ticket(row: dict[str, Any]) -> Ticket:
    return Ticket(**{**row, "created_at": format_time(row["created_at"])})


Conn = psycopg.Connection[dict[str, Any]]


class PostgresStore(Store):
    """A pool of connections to one migrated database; safe to share across threads."""

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.where = where(settings)
        with _connect(settings) as conn:
            version = schema_version(conn)
        if version > SCHEMA_VERSION:
            raise _too_new(settings, version)
        if version < SCHEMA_VERSION:
            state = "has no business schema yet" if version == 0 else f"is at schema version {version}"
            raise StoreError(
                f"the business database at {self.where} {state} and this build needs version {SCHEMA_VERSION}: "
                "run `business migrate` first"
            )
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            settings.url,
            kwargs={**_connect_args(settings), "autocommit": True, "row_factory": dict_row},
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            # A connection the server dropped (a restart, a failover) is replaced, not handed out.
            check=ConnectionPool.check_connection,
            timeout=settings.connect_timeout_s,
            name="business",
            open=False,
        )
        self.pool.open()

    def close(self) -> None:
        self.pool.close()

    def unready_reason(self) -> str | None:
        try:
            with self.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout) as err:
            return f"the business database at {self.where} does not answer: {' '.join(str(err).split())}"
        return None

    def get_order(self, order_id: str) -> Order | None:
        with self.pool.connection() as conn:
            return self._read_order(conn, order_id)

    @staticmethod
    def _read_order(conn: Conn, order_id: str) -> Order | None:
        row = conn.execute(
            "SELECT order_id, customer, customer_id, fulfilment, status, total_cents, refunded_cents, currency"
            " FROM orders WHERE order_id = %s",
            (order_id,),
        ).fetchone()
        if row is None:
            return None
        items = conn.execute(
            "SELECT sku, name, quantity, price_cents FROM order_items WHERE order_id = %s ORDER BY line_no",
            (order_id,),
        ).fetchall()
        return Order(**row, items=[OrderItem(**item) for item in items])

    @staticmethod
    def _read_refund(conn: Conn, idempotency_key: str) -> RefundResult | None:
        row = conn.execute(
            f"SELECT {REFUND_COLUMNS} FROM refunds WHERE idempotency_key = %s", (idempotency_key,)
        ).fetchone()
        return None if row is None else refund_from_row(row)

    def refunds_for_order(self, order_id: str) -> list[RefundResult]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = %s ORDER BY created_at, refund_id",
                (order_id,),
            ).fetchall()
        return [refund_from_row(row) for row in rows]

    def check_refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        with self.pool.connection() as conn:
            if self._read_refund(conn, idempotency_key) is not None:
                return
            order = conn.execute(
                "SELECT total_cents, refunded_cents, currency FROM orders WHERE order_id = %s", (order_id,)
            ).fetchone()
        if order is None:
            raise OrderNotFound(order_id)
        check_refund_amount(order_id, amount_cents, order["total_cents"], order["refunded_cents"], order["currency"])

    def refund_once(
        self, order_id: str, amount_cents: int, reason: str, idempotency_key: str
    ) -> tuple[RefundResult, bool]:
        check_key(idempotency_key, InvalidRefund, "a refund")
        with self.pool.connection() as conn:
            with conn.transaction():
                if (existing := self._read_refund(conn, idempotency_key)) is not None:
                    return existing, False
                # The order's row lock: refunds of one order take turns from here to commit.
                order = conn.execute(
                    "SELECT total_cents, refunded_cents, currency FROM orders WHERE order_id = %s FOR UPDATE",
                    (order_id,),
                ).fetchone()
                if order is None:
                    raise OrderNotFound(order_id)
                # Read committed: this statement sees whatever the lock's previous holder wrote,
                # including the same key's refund.
                if (existing := self._read_refund(conn, idempotency_key)) is not None:
                    return existing, False
                check_refund_amount(
                    order_id, amount_cents, order["total_cents"], order["refunded_cents"], order["currency"]
                )
                refund_id = refund_id_for(idempotency_key)
                inserted = conn.execute(
                    "INSERT INTO refunds (refund_id, order_id, amount_cents, currency, reason, idempotency_key)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING refund_id",
                    (refund_id, order_id, amount_cents, order["currency"], reason, idempotency_key),
                ).fetchone()
                if inserted is not None:
                    conn.execute(
                        "UPDATE orders SET refunded_cents = refunded_cents + %(amount)s,"
                        " status = CASE WHEN refunded_cents + %(amount)s = total_cents"
                        " THEN %(refunded)s ELSE %(partial)s END WHERE order_id = %(order)s",
                        {
                            "amount": amount_cents,
                            "refunded": ORDER_REFUNDED,
                            "partial": ORDER_PARTIALLY_REFUNDED,
                            "order": order_id,
                        },
                    )
                    result = RefundResult(
                        refund_id=refund_id,
                        order_id=order_id,
                        amount_cents=amount_cents,
                        currency=order["currency"],
                        status=REFUND_COMPLETED,
                        idempotency_key=idempotency_key,
                    )
                    return result, True
            # The same key won on another order (another row lock) and committed first: the
            # conflict waited for it, so its refund is there to return. Nothing was written here.
            winner = self._read_refund(conn, idempotency_key)
        if winner is None:
            raise StoreError(f"refund {refund_id} conflicted with a row that is not there; retry")
        return winner, False

    def ticket_once(self, request: CreateTicketRequest) -> tuple[Ticket, bool]:
        check_key(request.idempotency_key, InvalidTicket, "a ticket")
        with self.pool.connection() as conn, conn.transaction():
            if (existing := self._read_ticket(conn, "idempotency_key", request.idempotency_key)) is not None:
                return existing, False
            check_new_ticket(request.subject, request.priority)
            if request.order_id is not None and self._read_order(conn, request.order_id) is None:
                raise OrderNotFound(request.order_id)
            # The counter's row lock: tickets are opened one at a time, numbered without gaps.
            counter = conn.execute("SELECT last_number FROM ticket_numbers FOR UPDATE").fetchone()
            assert counter is not None, "migration 1 inserts the ticket counter row"
            if (existing := self._read_ticket(conn, "idempotency_key", request.idempotency_key)) is not None:
                return existing, False
            number = max(counter["last_number"], FIRST_TICKET_NUMBER - 1) + 1
            conn.execute("UPDATE ticket_numbers SET last_number = %s", (number,))
            row = conn.execute(
                "INSERT INTO tickets (ticket_id, order_id, subject, body, priority, status, idempotency_key,"
                f" customer_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {TICKET_COLUMNS}",
                (
                    f"TCK-{number}",
                    request.order_id,
                    request.subject,
                    request.body,
                    request.priority,
                    TICKET_OPEN,
                    request.idempotency_key,
                    request.customer_id,
                ),
            ).fetchone()
            assert row is not None
            return _ticket(row), True

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        with self.pool.connection() as conn:
            return self._read_ticket(conn, "ticket_id", ticket_id)

    @staticmethod
    def _read_ticket(conn: Conn, column: str, value: str) -> Ticket | None:
        # ``column`` is one of two literals from this module, never caller input.
        row = conn.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {column} = %s", (value,)).fetchone()
        return None if row is None else _ticket(row)

    def record_refusal(self, operation: str, customer_id: str, target: str, owner: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO access_refusals (operation, customer_id, target, owner) VALUES (%s, %s, %s, %s)",
                (operation, customer_id, target, owner),
            )

    def refusals(self) -> list[dict[str, str]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT at, operation, customer_id, target, owner FROM access_refusals ORDER BY refusal_no"
            ).fetchall()
        return [{**row, "at": format_time(row["at"])} for row in rows]
