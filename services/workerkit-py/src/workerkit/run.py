"""Run one process's Temporal workers until SIGTERM/SIGINT, with health endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from temporalio.client import Client
from temporalio.worker import Worker

from workerkit.connect import connect
from workerkit.errors import ConfigError, TemporalUnreachable
from workerkit.health import health_server

log = logging.getLogger(__name__)

WorkerFactory = Callable[[Client], Awaitable[Sequence[Worker]]]


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def _serve(name: str, namespace: str, factory: WorkerFactory, host: str, port: int) -> None:
    ready = asyncio.Event()
    health = health_server(name, ready, host, port)
    health_task = asyncio.create_task(health.serve())
    try:
        client = await connect(namespace)
        workers = await factory(client)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            ready.set()
            log.info(
                "%s ready: namespace=%s task_queues=%s health=http://%s:%d/readyz",
                name,
                client.namespace,
                ",".join(w.task_queue for w in workers),
                host,
                port,
            )
            await stop.wait()
            log.info("%s shutting down: finishing in-flight tasks", name)
    finally:
        health.should_exit = True
        await health_task


def run_workers(name: str, namespace: str, factory: WorkerFactory, port_env: str, default_port: int) -> None:
    """Entry point helper: exits 0 on a clean stop, 1 with one clear line on a start-up failure.

    The health port comes from ``port_env`` (host from ``HEALTH_HOST``, default loopback).
    """
    configure_logging()
    host = os.environ.get("HEALTH_HOST", "127.0.0.1")
    try:
        port = int(os.environ.get(port_env, default_port))
    except ValueError:
        sys.exit(f"{name}: {port_env} must be a port number, got {os.environ[port_env]!r}")
    try:
        asyncio.run(_serve(name, namespace, factory, host, port))
    except (TemporalUnreachable, ConfigError) as err:
        sys.exit(f"{name}: {err}")
