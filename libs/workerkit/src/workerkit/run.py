"""Run one process's Temporal workers until SIGTERM/SIGINT, with health endpoints and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from workerkit.connect import connect
from workerkit.deployment import deployment_version
from workerkit.errors import ConfigError, TemporalUnreachable
from workerkit.health import UnreadyCheck, health_server, health_socket
from workerkit.metrics import metrics_address, metrics_runtime
from workerkit.settings import port_setting
from workerkit.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger(__name__)

WorkerFactory = Callable[[Client], Awaitable[Sequence[Worker]]]
# Runs beside the workers (periodic gauges, say) and is cancelled when they stop. A coroutine
# function, as asyncio.create_task takes coroutines only.
BackgroundTask = Callable[[Client], Coroutine[Any, Any, None]]


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def _serve(
    name: str,
    namespace: str,
    factory: WorkerFactory,
    probes: socket.socket,
    runtime: Runtime,
    background: Sequence[BackgroundTask],
    unready: UnreadyCheck | None,
) -> None:
    ready = asyncio.Event()
    health = health_server(name, ready, unready)
    health_task = asyncio.create_task(health.serve(sockets=[probes]))
    host, port = probes.getsockname()[:2]
    try:
        client = await connect(namespace, runtime)
        workers = await factory(client)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            for job in background:
                stack.callback(asyncio.create_task(job(client)).cancel)
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


def run_workers(
    name: str,
    namespace: str,
    factory: WorkerFactory,
    port_env: str,
    default_port: int,
    *,
    metrics_port_env: str,
    default_metrics_port: int,
    background: Sequence[BackgroundTask] = (),
    unready: UnreadyCheck | None = None,
) -> None:
    """Entry point helper: exits 0 on a clean stop, 1 with one clear line on a start-up failure.

    The health port comes from ``port_env`` (host from ``HEALTH_HOST``, default loopback), the
    Prometheus ``/metrics`` port from ``metrics_port_env`` (host from ``METRICS_HOST``).
    ``unready``, when given, can hold ``/readyz`` at 503 after start-up (a dependency is down).
    """
    configure_logging()
    host = os.environ.get("HEALTH_HOST", "127.0.0.1")
    try:
        # A bad port or a half-set deployment version fails here, before anything connects or listens.
        port = port_setting(port_env, default_port)
        deployment_version()
        probes = health_socket(host, port, port_env)
        runtime = metrics_runtime(metrics_address(metrics_port_env, default_metrics_port))
        configure_tracing(name)
        asyncio.run(_serve(name, namespace, factory, probes, runtime, background, unready))
    except (TemporalUnreachable, ConfigError) as err:
        sys.exit(f"{name}: {err}")
    finally:
        # After SIGTERM the workers have drained; send the spans of their last tasks.
        shutdown_tracing()
