"""The business records behind one seam: :class:`Store`, opened from the environment by
:func:`open_store`. ``BUSINESS_STORE=sqlite`` (the default) is one embedded file for one replica;
``postgres`` is a server database for any number of replicas. Callers never know which."""

from __future__ import annotations

import sqlite3

from business.store.common import (
    FIRST_TICKET_NUMBER,
    SEED_ORDERS,
    InvalidRefund,
    InvalidTicket,
    OrderNotFound,
    SeedOrder,
    Store,
    StoreError,
    format_money,
    refund_id_for,
)
from business.store.settings import SettingsError, StoreSettings
from business.store.sqlite import SqliteStore

__all__ = [
    "FIRST_TICKET_NUMBER",
    "SEED_ORDERS",
    "InvalidRefund",
    "InvalidTicket",
    "OrderNotFound",
    "SeedOrder",
    "SettingsError",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreSettings",
    "format_money",
    "open_store",
    "refund_id_for",
]


def open_store(settings: StoreSettings) -> Store:
    """The store ``settings`` name, ready to serve; :class:`StoreError` (one sentence) if not."""
    if settings.kind == "postgres":
        # Imported here: the embedded default never loads libpq.
        from business.store.postgres import PostgresStore

        return PostgresStore(settings.postgres)
    try:
        return SqliteStore(settings.sqlite_path)
    except (OSError, sqlite3.Error) as err:
        raise StoreError(
            f"cannot open the business database at {settings.sqlite_path}: {err}. "
            "Set BUSINESS_DB_PATH to a writable file path."
        ) from err
