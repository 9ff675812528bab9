"""Business worker process: the ``business`` Nexus service, its workflows and activities.

Run with ``business worker`` (or ``python -m business``); ``business migrate`` prepares a
PostgreSQL database first (see :mod:`business.cli`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker, WorkerDeploymentConfig

from business.activities import BusinessActivities
from business.metrics import pool_gauges
from business.service_handler import BusinessServiceHandler
from business.store import SettingsError, Store, StoreError, StoreSettings
from business.store import open_store as open_configured_store
from business.workflows import RefundWorkflow
from workerkit import ConfigError, run_workers
from workerkit.deployment import deployment_config

NAMESPACE = "business"
TASK_QUEUE_ENV = "BUSINESS_TASK_QUEUE"
DEFAULT_TASK_QUEUE = "business"
# Activities block on the store (SQLite serialises writers; PostgreSQL takes a pooled
# connection each): a few threads cover the writes and waiting on locks.
ACTIVITY_THREADS = 8


def open_store() -> Store:
    """The store the environment names (BUSINESS_STORE), or a ConfigError of one sentence."""
    try:
        return open_configured_store(StoreSettings.from_env())
    except (SettingsError, StoreError) as err:
        raise ConfigError(str(err)) from err


def build_worker(
    client: Client, store: Store, task_queue: str, deployment: WorkerDeploymentConfig | None = None
) -> Worker:
    """The one worker of this process; tests build it too, with their own store and queue."""
    activities = BusinessActivities(store)
    return Worker(
        client,
        task_queue=task_queue,
        deployment_config=deployment,
        workflows=[RefundWorkflow],
        activities=[activities.apply_refund],
        nexus_service_handlers=[BusinessServiceHandler(store)],
        activity_executor=ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="business-activity"),
        max_concurrent_activities=ACTIVITY_THREADS,
    )


class _Process:
    """The process's one store, opened by the worker factory and read by the readiness probe
    and the pool gauges (both start before the factory has run)."""

    store: Store | None = None


async def build_workers(client: Client) -> Sequence[Worker]:
    task_queue = os.environ.get(TASK_QUEUE_ENV) or DEFAULT_TASK_QUEUE
    _Process.store = await asyncio.to_thread(open_store)
    return [build_worker(client, _Process.store, task_queue, deployment_config())]


async def database_unready() -> str | None:
    """Readiness follows the database: a replica whose database does not answer takes no traffic."""
    store = _Process.store
    return None if store is None else await asyncio.to_thread(store.unready_reason)


async def _pool_gauges(client: Client) -> None:
    # Background jobs start once the factory has opened the store.
    await pool_gauges(_Process.store)


def main() -> None:
    run_workers(
        "business-worker",
        NAMESPACE,
        build_workers,
        port_env="BUSINESS_HEALTH_PORT",
        default_port=8402,
        metrics_port_env="BUSINESS_METRICS_PORT",
        default_metrics_port=8412,
        background=[_pool_gauges],
        unready=database_unready,
    )


if __name__ == "__main__":
    main()
