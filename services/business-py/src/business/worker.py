"""Business worker process: the ``business`` Nexus service, its workflows and activities.

Run with ``python -m business.worker`` (or ``python -m business``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker, WorkerDeploymentConfig

from business.activities import BusinessActivities
from business.db import DB_PATH_ENV, Store, db_path_from_env
from business.service_handler import BusinessServiceHandler
from business.workflows import RefundWorkflow
from workerkit import ConfigError, run_workers
from workerkit.deployment import deployment_config

NAMESPACE = "business"
TASK_QUEUE_ENV = "BUSINESS_TASK_QUEUE"
DEFAULT_TASK_QUEUE = "business"
# SQLite takes one writer at a time; a few threads cover reads and waiting on the lock.
ACTIVITY_THREADS = 8


def open_store() -> Store:
    path = db_path_from_env()
    try:
        return Store(path)
    except (OSError, sqlite3.Error) as err:
        raise ConfigError(
            f"cannot open the business database at {path}: {err}. Set {DB_PATH_ENV} to a writable file path."
        ) from err


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


async def build_workers(client: Client) -> Sequence[Worker]:
    task_queue = os.environ.get(TASK_QUEUE_ENV) or DEFAULT_TASK_QUEUE
    return [build_worker(client, open_store(), task_queue, deployment_config())]


def main() -> None:
    run_workers(
        "business-worker",
        NAMESPACE,
        build_workers,
        port_env="BUSINESS_HEALTH_PORT",
        default_port=8402,
        metrics_port_env="BUSINESS_METRICS_PORT",
        default_metrics_port=8412,
    )


if __name__ == "__main__":
    main()
