"""The business worker's own metrics (listed in ``ops/metrics/catalogue.yaml``).

Recorded through Temporal's meters, so they are served with the SDK's on the worker's one
``/metrics`` endpoint. Label values are fixed: no order, refund or ticket ids.
"""

from __future__ import annotations

import asyncio
import logging

from psycopg_pool import ConnectionPool
from temporalio import activity, nexus

from workerkit.metrics import process_meter

REFUNDS = "business_refunds"
TICKETS_CREATED = "business_tickets_created"
ACCESS_REFUSALS = "business_access_refusals"
POOL_CONNECTIONS = "business_db_pool_connections"
POOL_IDLE = "business_db_pool_connections_idle"
POOL_WAITING = "business_db_pool_requests_waiting"
POOL_GAUGE_INTERVAL_S = 10.0

log = logging.getLogger(__name__)

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


async def pool_gauges(store: object) -> None:
    """Keep the connection pool's gauges current (PostgreSQL store only; SQLite has no pool)."""
    pool = getattr(store, "pool", None)
    if not isinstance(pool, ConnectionPool):
        return
    meter = process_meter()
    opened = meter.create_gauge(POOL_CONNECTIONS, "Connections the database pool holds open.")
    idle = meter.create_gauge(POOL_IDLE, "Open connections waiting in the pool for work.")
    waiting = meter.create_gauge(POOL_WAITING, "Requests waiting for a connection from the pool.")
    while True:
        stats = pool.get_stats()
        opened.set(stats.get("pool_size", 0))
        idle.set(stats.get("pool_available", 0))
        waiting.set(stats.get("requests_waiting", 0))
        await asyncio.sleep(POOL_GAUGE_INTERVAL_S)
