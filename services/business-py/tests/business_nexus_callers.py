"""Caller workflows for the Nexus tests: stand-ins for the agent that calls the business endpoint.

They live in a plain importable module, apart from the test fixtures, because the workflow
sandbox re-imports a workflow's module by name and runs its top level again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from nexus_contracts.business import (
        BusinessService,
        GetOrderRequest,
        Order,
        RefundRequest,
        RefundResult,
    )

# Bounds every test: an operation that would retry instead of failing fast shows up as a
# timeout here rather than as a hung suite.
OPERATION_TIMEOUT = timedelta(seconds=20)


@dataclass
class GetOrderCall:
    endpoint: str
    order_id: str


@dataclass
class RefundCalls:
    endpoint: str
    requests: list[RefundRequest]
    parallel: bool = False


@dataclass
class RefundOutcomes:
    results: list[RefundResult] = field(default_factory=list)
    # Whether the handler answered asynchronously (an operation token): refund is a
    # workflow-run operation, so every call must be async.
    asynchronous: list[bool] = field(default_factory=list)


@workflow.defn
class GetOrderCaller:
    @workflow.run
    async def run(self, call: GetOrderCall) -> Order:
        client = workflow.create_nexus_client(service=BusinessService, endpoint=call.endpoint)
        return await client.execute_operation(
            BusinessService.get_order,
            GetOrderRequest(order_id=call.order_id),
            schedule_to_close_timeout=OPERATION_TIMEOUT,
        )


@workflow.defn
class RefundCaller:
    @workflow.run
    async def run(self, calls: RefundCalls) -> RefundOutcomes:
        client = workflow.create_nexus_client(service=BusinessService, endpoint=calls.endpoint)

        async def one(request: RefundRequest) -> tuple[RefundResult, bool]:
            handle = await client.start_operation(
                BusinessService.refund, request, schedule_to_close_timeout=OPERATION_TIMEOUT
            )
            return await handle, handle.operation_token is not None

        if calls.parallel:
            pairs = await asyncio.gather(*(one(r) for r in calls.requests))
        else:
            pairs = [await one(r) for r in calls.requests]
        return RefundOutcomes(
            results=[result for result, _ in pairs], asynchronous=[is_async for _, is_async in pairs]
        )
