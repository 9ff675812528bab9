"""Outcome labels of the Nexus handler metrics: a fixed set, the same words the Go worker uses."""

from __future__ import annotations

import asyncio

import nexusrpc
import pytest

from workerkit.nexus_metrics import outcome_of


@pytest.mark.parametrize(
    ("err", "outcome"),
    [
        (None, "ok"),
        (nexusrpc.HandlerError("no such order", type=nexusrpc.HandlerErrorType.NOT_FOUND), "not_found"),
        (nexusrpc.HandlerError("bad amount", type=nexusrpc.HandlerErrorType.BAD_REQUEST), "bad_request"),
        (nexusrpc.OperationError("refused", state=nexusrpc.OperationErrorState.FAILED), "operation_failed"),
        (nexusrpc.OperationError("stopped", state=nexusrpc.OperationErrorState.CANCELED), "operation_canceled"),
        (asyncio.CancelledError(), "task_canceled"),
        (RuntimeError("disk full"), "internal"),
    ],
)
def test_outcome_of(err: BaseException | None, outcome: str) -> None:
    assert outcome_of(err) == outcome
