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
        CreateTicketRequest,
        GetOrderRequest,
        GetTicketRequest,
        Order,
        RefundRequest,
        RefundResult,
        Ticket,
    )

# Bounds every test: an operation that would retry instead of failing fast shows up as a
# timeout here rather than as a hung suite.
OPERATION_TIMEOUT = timedelta(seconds=20)


@dataclass
class GetOrderCall:
    endpoint: str
    order_id: str
    customer_id: str | None = None


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
            GetOrderRequest(order_id=call.order_id, customer_id=call.customer_id),
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
        return RefundOutcomes(results=[result for result, _ in pairs], asynchronous=[is_async for _, is_async in pairs])


@dataclass
class TicketCalls:
    endpoint: str
    create: list[CreateTicketRequest] = field(default_factory=list)
    get: list[str] = field(default_factory=list)
    customer_id: str | None = None
    """Who looks the tickets up (None: a system caller)."""


@workflow.defn
class TicketCaller:
    """Creates the tickets in order, then looks up the ids in ``get``."""

    @workflow.run
    async def run(self, calls: TicketCalls) -> list[Ticket]:
        client = workflow.create_nexus_client(service=BusinessService, endpoint=calls.endpoint)
        tickets = [
            await client.execute_operation(
                BusinessService.create_ticket, request, schedule_to_close_timeout=OPERATION_TIMEOUT
            )
            for request in calls.create
        ]
        for ticket_id in calls.get:
            tickets.append(
                await client.execute_operation(
                    BusinessService.get_ticket,
                    GetTicketRequest(ticket_id=ticket_id, customer_id=calls.customer_id),
                    schedule_to_close_timeout=OPERATION_TIMEOUT,
                )
            )
        return tickets
