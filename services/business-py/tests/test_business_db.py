"""The SQLite store: seed data, lookups, and refunds applied exactly once per key."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from business.db import (
    DEFAULT_DB_PATH,
    SEED_ORDERS,
    InvalidRefund,
    InvalidTicket,
    OrderNotFound,
    Store,
    db_path_from_env,
    refund_id_for,
)
from nexus_contracts.business import RefundResult

EXAMPLES = Path(__file__).resolve().parents[3] / "nexus" / "business" / "examples"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "business.sqlite3")
    yield s
    s.close()


def refund_rows(path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT refund_id, idempotency_key, amount_cents FROM refunds").fetchall()


def test_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BUSINESS_DB_PATH", raising=False)
    assert db_path_from_env() == DEFAULT_DB_PATH
    monkeypatch.setenv("BUSINESS_DB_PATH", str(tmp_path / "x.sqlite3"))
    assert db_path_from_env() == tmp_path / "x.sqlite3"


def test_creates_parent_dirs_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "business.sqlite3"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"orders", "order_items", "refunds", "tickets"} <= tables


def test_seed_matches_contract_example(store: Store) -> None:
    expected = json.loads((EXAMPLES / "get_order.output.json").read_text())
    order = store.get_order("ORD-1001")
    assert order is not None
    assert dataclasses.asdict(order) == expected


def test_seed_orders_are_consistent(store: Store) -> None:
    ids = [o.order_id for o in SEED_ORDERS]
    assert ids == [f"ORD-{n}" for n in range(1001, 1007)]
    currencies = set()
    for order_id in ids:
        order = store.get_order(order_id)
        assert order is not None and order.items
        assert order.total_cents == sum(i.quantity * i.price_cents for i in order.items)
        assert order.refunded_cents == 0
        currencies.add(order.currency)
    assert currencies == {"EUR", "USD"}
    assert {o.status for o in SEED_ORDERS} == {"placed", "shipped", "delivered"}


def test_reopen_neither_reseeds_nor_loses_state(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    first = Store(path)
    first.apply_refund("ORD-1001", 2500, "cracked keycap", "k1")
    first.close()
    again = Store(path)
    order = again.get_order("ORD-1001")
    assert order is not None and order.refunded_cents == 2500
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == len(SEED_ORDERS)
        assert conn.execute("SELECT COUNT(*) FROM order_items").fetchone()[0] == sum(len(o.items) for o in SEED_ORDERS)
    again.close()


def test_unknown_order_lookup(store: Store) -> None:
    assert store.get_order("ORD-9") is None


def test_refund_id_is_derived_from_the_key() -> None:
    assert refund_id_for("support-42/step-3") == refund_id_for("support-42/step-3")
    assert refund_id_for("support-42/step-3") != refund_id_for("support-42/step-4")
    assert refund_id_for("k").startswith("RF-") and len(refund_id_for("k")) == 3 + 16


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


def test_same_key_refunds_once_even_with_different_arguments(store: Store, tmp_path: Path) -> None:
    first = store.apply_refund("ORD-1001", 2500, "cracked keycap", "k")
    again = store.apply_refund("ORD-1001", 2500, "cracked keycap", "k")
    # The key names the refund: a different amount or order under it gets the original back.
    different = store.apply_refund("ORD-1002", 100, "other", "k")
    assert first == again == different
    assert refund_rows(tmp_path / "business.sqlite3") == [(first.refund_id, "k", 2500)]
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
    store: Store, tmp_path: Path, order_id: str, amount: int, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        store.check_refund(order_id, amount, "k")
    with pytest.raises(error, match=message):
        store.apply_refund(order_id, amount, "why", "k")
    assert refund_rows(tmp_path / "business.sqlite3") == []
    order = store.get_order("ORD-1001")
    assert order is not None and (order.status, order.refunded_cents) == ("delivered", 0)


def test_over_refund_counts_earlier_refunds(store: Store) -> None:
    store.apply_refund("ORD-1003", 5000, "partial", "a")
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
        t.join(timeout=30)
    return results


def test_concurrent_same_key_from_separate_connections_refunds_once(tmp_path: Path) -> None:
    # Separate Store instances: separate connections, as separate worker processes would have.
    path = tmp_path / "business.sqlite3"
    Store(path).close()
    stores = [Store(path) for _ in range(8)]
    try:
        results = _run_threads(8, lambda i: stores[i].apply_refund("ORD-1004", 1900, "case", "same"))
    finally:
        for s in stores:
            s.close()
    refunds = [r for r in results if isinstance(r, RefundResult)]
    assert len(refunds) == len(results), results
    assert len({r.refund_id for r in refunds}) == 1
    assert refund_rows(path) == [(refund_id_for("same"), "same", 1900)]
    check = Store(path)
    order = check.get_order("ORD-1004")
    check.close()
    assert order is not None and order.refunded_cents == 1900


def test_concurrent_distinct_keys_never_over_refund(tmp_path: Path) -> None:
    path = tmp_path / "business.sqlite3"
    Store(path).close()
    stores = [Store(path) for _ in range(6)]
    try:
        # 12900 EUR cents available, six requests of 5000: exactly two can succeed.
        results = _run_threads(6, lambda i: stores[i].apply_refund("ORD-1001", 5000, "race", f"k{i}"))
    finally:
        for s in stores:
            s.close()
    assert sum(isinstance(r, RefundResult) for r in results) == 2, results
    assert sum(isinstance(r, InvalidRefund) for r in results) == 4, results
    check = Store(path)
    order = check.get_order("ORD-1001")
    check.close()
    assert order is not None and (order.status, order.refunded_cents) == ("partially_refunded", 10000)


def test_shared_store_across_threads(store: Store) -> None:
    results = _run_threads(8, lambda i: store.apply_refund("ORD-1002", 100, "shared", "one-key"))
    assert all(r == results[0] for r in results) and isinstance(results[0], RefundResult)
    order = store.get_order("ORD-1002")
    assert order is not None and order.refunded_cents == 100


def ticket_rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT ticket_id, idempotency_key FROM tickets ORDER BY ticket_id").fetchall()


def test_tickets_are_numbered_and_created_once_per_key(store: Store, tmp_path: Path) -> None:
    first = store.create_ticket("Refund approval timed out", "k1", body="b", order_id="ORD-1004", priority="high")
    # The key names the ticket: a repeat with other fields gets the original back.
    again = store.create_ticket("something else", "k1", priority="low")
    second = store.create_ticket("Customer wants a person", "k2")
    assert first == again
    assert (first.ticket_id, second.ticket_id) == ("TCK-1001", "TCK-1002")
    assert (first.order_id, first.priority, first.status, second.order_id) == ("ORD-1004", "high", "open", None)
    assert store.get_ticket("TCK-1002") == second
    assert store.get_ticket("TCK-9") is None
    assert ticket_rows(tmp_path / "business.sqlite3") == [("TCK-1001", "k1"), ("TCK-1002", "k2")]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"subject": "s", "idempotency_key": "k", "order_id": "ORD-9"}, OrderNotFound, "order ORD-9 does not exist"),
        ({"subject": " ", "idempotency_key": "k"}, InvalidTicket, "non-empty subject"),
        ({"subject": "s", "idempotency_key": "k", "priority": "asap"}, InvalidTicket, "priority must be one of"),
        ({"subject": "s", "idempotency_key": ""}, InvalidTicket, "non-empty idempotency key"),
    ],
)
def test_invalid_tickets_are_refused(store: Store, tmp_path: Path, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        store.create_ticket(**kwargs)
    assert ticket_rows(tmp_path / "business.sqlite3") == []


def test_concurrent_tickets_with_one_key_write_one_row(tmp_path: Path) -> None:
    path = tmp_path / "business.sqlite3"
    Store(path).close()
    stores = [Store(path) for _ in range(6)]
    try:
        results = _run_threads(6, lambda i: stores[i].create_ticket(f"attempt {i}", "same-key"))
    finally:
        for s in stores:
            s.close()
    assert len({r.ticket_id for r in results}) == 1, results
    assert ticket_rows(path) == [("TCK-1001", "same-key")]


def test_version_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    # A file written by schema version 1 (tickets without body and priority) keeps its
    # orders and refunds and gains the ticket columns.
    path = tmp_path / "business.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE orders (order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, status TEXT NOT NULL,
                total_cents INTEGER NOT NULL, refunded_cents INTEGER NOT NULL DEFAULT 0,
                currency TEXT NOT NULL, created_at TEXT NOT NULL);
            INSERT INTO orders VALUES ('ORD-1', 'Old Customer', 'delivered', 1000, 0, 'EUR', 'then');
            CREATE TABLE tickets (ticket_id TEXT PRIMARY KEY, order_id TEXT, subject TEXT NOT NULL,
                status TEXT NOT NULL, created_at TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE);
            PRAGMA user_version = 1;
            """
        )
    store = Store(path)
    try:
        ticket = store.create_ticket("after the upgrade", "k", body="details", order_id="ORD-1")
        assert store.get_ticket(ticket.ticket_id) == ticket and ticket.body == "details"
        order = store.get_order("ORD-1")
        assert order is not None and order.customer == "Old Customer" and order.customer_id == ""
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
