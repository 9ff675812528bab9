"""Handler-side Nexus metrics per service and operation, named as the Go worker names them.

The Python SDK's own ``temporal_nexus_task_*`` series carry no operation label, so a dashboard
could not tell a slow ``refund`` from a slow ``lookup_order``. This interceptor records, through
``temporalio.nexus.metric_meter()`` (which adds ``nexus_service`` and ``nexus_operation``):

- ``nexus_handler_operations_total{outcome}``: started, cancelled and failed handler calls;
- ``nexus_handler_operation_latency_seconds``: how long the handler took to answer (for a
  workflow-run operation, until the workflow was started, not until it finished).

The Go retrieval worker records the same two names (``services/retrieval-go/app/metrics``), so
one panel covers both languages. Outcomes are a fixed set: ``ok``, ``operation_failed``,
``operation_canceled``, or a Nexus handler error type in lower case (``bad_request``,
``not_found``, ``internal`` ...), ``task_canceled`` when the task was cancelled (its deadline
passed or the worker stops); any other exception counts as ``internal``, as the SDK maps it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nexusrpc
from temporalio import client, nexus
from temporalio.worker import (
    ExecuteNexusOperationCancelInput,
    ExecuteNexusOperationStartInput,
    Interceptor,
    NexusOperationInboundInterceptor,
)

from workerkit.metrics import since

OPERATIONS = "nexus_handler_operations"
LATENCY = "nexus_handler_operation_latency"

OUTCOME_OK = "ok"
OUTCOME_INTERNAL = "internal"
OUTCOME_TASK_CANCELED = "task_canceled"


def outcome_of(err: BaseException | None) -> str:
    if err is None:
        return OUTCOME_OK
    if isinstance(err, nexusrpc.OperationError):
        return f"operation_{err.state.value}"
    if isinstance(err, nexusrpc.HandlerError):
        return err.type.name.lower()
    if isinstance(err, asyncio.CancelledError):
        return OUTCOME_TASK_CANCELED
    return OUTCOME_INTERNAL


class NexusHandlerMetrics(client.Interceptor, Interceptor):
    """Given to the client, so every worker built on it records its Nexus handlers' calls."""

    def intercept_nexus_operation(self, next: NexusOperationInboundInterceptor) -> NexusOperationInboundInterceptor:
        return _Recording(next)


class _Recording(NexusOperationInboundInterceptor):
    async def execute_nexus_operation_start(self, input: ExecuteNexusOperationStartInput) -> Any:
        return await _recorded("start", super().execute_nexus_operation_start(input))

    async def execute_nexus_operation_cancel(self, input: ExecuteNexusOperationCancelInput) -> None:
        await _recorded("cancel", super().execute_nexus_operation_cancel(input))


async def _recorded(method: str, call: Any) -> Any:
    started = time.monotonic()
    err: BaseException | None = None
    try:
        return await call
    except BaseException as e:
        err = e
        raise
    finally:
        meter = nexus.metric_meter()
        labels = {"method": method}
        meter.create_counter(OPERATIONS, "Nexus handler calls, by method and outcome.").add(
            1, {**labels, "outcome": outcome_of(err)}
        )
        meter.create_histogram_timedelta(LATENCY, "Time a Nexus handler took to answer.").record(
            since(started, time.monotonic()), labels
        )
