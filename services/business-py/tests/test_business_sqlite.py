"""What only the embedded SQLite store does: its file, its in-place upgrades. Everything a store
does is in the conformance suite (test_store_conformance.py), run against both stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from business.store import SqliteStore, StoreError, refund_id_for
from business.store.settings import DEFAULT_DB_PATH, db_path_from_env
from business.store.sqlite import SCHEMA_VERSION


def test_path_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BUSINESS_DB_PATH", raising=False)
    assert db_path_from_env() == DEFAULT_DB_PATH
    monkeypatch.setenv("BUSINESS_DB_PATH", str(tmp_path / "x.sqlite3"))
    assert db_path_from_env() == tmp_path / "x.sqlite3"


def test_creates_parent_dirs_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "business.sqlite3"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"orders", "order_items", "refunds", "tickets"} <= tables


def test_refund_id_is_derived_from_the_key() -> None:
    assert refund_id_for("support-42/step-3") == refund_id_for("support-42/step-3")
    assert refund_id_for("support-42/step-3") != refund_id_for("support-42/step-4")
    assert refund_id_for("k").startswith("RF-") and len(refund_id_for("k")) == 3 + 16


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
    store = SqliteStore(path)
    try:
        ticket = store.create_ticket("after the upgrade", "k", body="details", order_id="ORD-1")
        assert store.get_ticket(ticket.ticket_id) == ticket and ticket.body == "details"
        order = store.get_order("ORD-1")
        assert order is not None and order.customer == "Old Customer" and order.customer_id == ""
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3


def test_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "business.sqlite3"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this build's"):
        SqliteStore(path)
