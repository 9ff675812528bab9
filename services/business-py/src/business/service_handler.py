"""Nexus handler of the ``business`` service (contract: ``nexus/business/service.json``).

Errors a caller cannot fix by retrying are raised here as typed, non-retryable handler errors
(BAD_REQUEST, NOT_FOUND, UNAUTHORIZED) before any workflow starts, so the calling agent gets an
answer it can read at once instead of a failed or endlessly retried operation.

**Ownership is enforced here, below any model.** A request's ``customer_id`` is the customer
its caller acts for (the agent sets it from the conversation's authenticated identity; the
model cannot supply it). An order or ticket of another customer is refused with UNAUTHORIZED,
the refusal is written to the ``access_refusals`` table and counted
(``business_access_refusals_total{operation}``), and nothing of the other customer's data is
returned. A request without ``customer_id`` is a system caller's (the system check).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re

import nexusrpc
import nexusrpc.handler
import temporalio.nexus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from business.metrics import record_access_refused, record_ticket_created
from business.store import InvalidRefund, InvalidTicket, OrderNotFound, Store
from business.workflows import RefundWorkflow
from nexus_contracts.business import (
    MAX_BODY_LENGTH,
    MAX_CUSTOMER_ID_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_ORDER_ID_LENGTH,
    MAX_REASON_LENGTH,
    MAX_SUBJECT_LENGTH,
    MAX_TICKET_ID_LENGTH,
    MIN_AMOUNT_CENTS,
    TICKET_PRIORITIES,
    BusinessService,
    CreateTicketRequest,
    GetOrderRequest,
    GetTicketRequest,
    Order,
    RefundRequest,
    RefundResult,
    Ticket,
)

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

log = logging.getLogger(__name__)


def refund_workflow_id(idempotency_key: str) -> str:
    """``refund-<readable key>-<hash>``: the same key always names the same workflow.

    The key is sanitised for people reading the UI and CLI; the hash of the raw key keeps two
    keys that sanitise alike (``a/b`` and ``a-b``) from sharing a workflow, and a refund.
    """
    readable = _UNSAFE_ID_CHARS.sub("-", idempotency_key).strip("-")[:80]
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
    return f"refund-{readable}-{digest}" if readable else f"refund-{digest}"


def _bad_request(message: str) -> nexusrpc.HandlerError:
    return nexusrpc.HandlerError(message, type=nexusrpc.HandlerErrorType.BAD_REQUEST, retryable_override=False)


def _not_found(message: str) -> nexusrpc.HandlerError:
    # NOT_FOUND is non-retryable by default; said explicitly because a retried lookup of an
    # order that does not exist would only delay the agent's answer.
    return nexusrpc.HandlerError(message, type=nexusrpc.HandlerErrorType.NOT_FOUND, retryable_override=False)


def _unauthorized(message: str) -> nexusrpc.HandlerError:
    return nexusrpc.HandlerError(message, type=nexusrpc.HandlerErrorType.UNAUTHORIZED, retryable_override=False)


def _check_customer_id(customer_id: str | None) -> None:
    if customer_id is None:
        return
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise _bad_request("customer_id must be a customer's id, or absent for a system caller")
    if len(customer_id) > MAX_CUSTOMER_ID_LENGTH:
        raise _bad_request(f"customer_id must be at most {MAX_CUSTOMER_ID_LENGTH} characters")


def _check_order_id(order_id: str) -> None:
    if not order_id or not order_id.strip():
        raise _bad_request("order_id must not be empty")
    if len(order_id) > MAX_ORDER_ID_LENGTH:
        raise _bad_request(f"order_id must be at most {MAX_ORDER_ID_LENGTH} characters")


def _check_idempotency_key(key: str) -> None:
    if not key or not key.strip():
        raise _bad_request("idempotency_key must not be empty: derive it from your workflow id and step")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise _bad_request(f"idempotency_key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters")


def _check_ticket_request(input: CreateTicketRequest) -> None:
    if not input.subject or not input.subject.strip():
        raise _bad_request("subject must not be empty: say in one line what the customer needs")
    if len(input.subject) > MAX_SUBJECT_LENGTH:
        raise _bad_request(f"subject must be at most {MAX_SUBJECT_LENGTH} characters")
    if len(input.body) > MAX_BODY_LENGTH:
        raise _bad_request(f"body must be at most {MAX_BODY_LENGTH} characters")
    if input.priority not in TICKET_PRIORITIES:
        raise _bad_request(f"priority must be one of {', '.join(TICKET_PRIORITIES)}, got {input.priority!r}")
    if input.order_id is not None:
        _check_order_id(input.order_id)
    _check_idempotency_key(input.idempotency_key)


@nexusrpc.handler.service_handler(service=BusinessService)
class BusinessServiceHandler:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def _owned_order(self, operation: str, order_id: str, customer_id: str | None) -> Order:
        """The order, if the acting customer (None: a system caller) may act on it."""
        _check_order_id(order_id)
        _check_customer_id(customer_id)
        # The store blocks; keep the worker's event loop (and its other Nexus tasks) moving.
        order = await asyncio.to_thread(self._store.get_order, order_id)
        if order is None:
            raise _not_found(f"order {order_id} does not exist")
        await self._check_owner(operation, customer_id, order_id, order.customer_id)
        return order

    async def _check_owner(self, operation: str, customer_id: str | None, target: str, owner: str | None) -> None:
        if customer_id is None or customer_id == owner:
            return
        await asyncio.to_thread(self._store.record_refusal, operation, customer_id, target, owner or "")
        record_access_refused(operation)
        log.warning("refused %s of %s to customer %s: not theirs", operation, target, customer_id)
        # The same words whether the other customer exists or not: nothing about them leaks.
        raise _unauthorized(f"{target} does not belong to customer {customer_id}; it cannot be shown or changed")

    @nexusrpc.handler.sync_operation
    async def get_order(self, ctx: nexusrpc.handler.StartOperationContext, input: GetOrderRequest) -> Order:
        return await self._owned_order("get_order", input.order_id, input.customer_id)

    @nexusrpc.handler.sync_operation
    async def create_ticket(self, ctx: nexusrpc.handler.StartOperationContext, input: CreateTicketRequest) -> Ticket:
        # A sync operation although it writes: one short database transaction, idempotent per
        # key, so the caller's Nexus retries (and an agent step replayed after a crash) are safe.
        _check_ticket_request(input)
        _check_customer_id(input.customer_id)
        if input.order_id is not None:
            await self._owned_order("create_ticket", input.order_id, input.customer_id)
        try:
            ticket, new = await asyncio.to_thread(self._store.ticket_once, input)
        except OrderNotFound as err:
            raise _not_found(str(err)) from err
        except InvalidTicket as err:
            raise _bad_request(str(err)) from err
        if new:
            record_ticket_created()
        return ticket

    @nexusrpc.handler.sync_operation
    async def get_ticket(self, ctx: nexusrpc.handler.StartOperationContext, input: GetTicketRequest) -> Ticket:
        if not input.ticket_id or not input.ticket_id.strip():
            raise _bad_request("ticket_id must not be empty")
        if len(input.ticket_id) > MAX_TICKET_ID_LENGTH:
            raise _bad_request(f"ticket_id must be at most {MAX_TICKET_ID_LENGTH} characters")
        _check_customer_id(input.customer_id)
        ticket = await asyncio.to_thread(self._store.get_ticket, input.ticket_id)
        if ticket is None:
            raise _not_found(f"ticket {input.ticket_id} does not exist")
        await self._check_owner("get_ticket", input.customer_id, input.ticket_id, ticket.customer_id)
        return ticket

    @temporalio.nexus.workflow_run_operation
    async def refund(
        self, ctx: temporalio.nexus.WorkflowRunOperationContext, input: RefundRequest
    ) -> temporalio.nexus.WorkflowHandle[RefundResult]:
        await self._owned_order("refund", input.order_id, input.customer_id)
        _check_idempotency_key(input.idempotency_key)
        if len(input.reason) > MAX_REASON_LENGTH:
            raise _bad_request(f"reason must be at most {MAX_REASON_LENGTH} characters")
        if input.amount_cents < MIN_AMOUNT_CENTS:
            raise _bad_request(f"amount_cents must be a positive number of cents, got {input.amount_cents}")
        try:
            await asyncio.to_thread(self._store.check_refund, input.order_id, input.amount_cents, input.idempotency_key)
        except OrderNotFound as err:
            raise _not_found(str(err)) from err
        except InvalidRefund as err:
            raise _bad_request(str(err)) from err
        return await ctx.start_workflow(
            RefundWorkflow.run,
            input,
            id=refund_workflow_id(input.idempotency_key),
            # A second request while the refund runs attaches to it (the server adds this
            # caller's completion callback), so both callers get the one result.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A request after the refund finished starts a new run, whose activity finds the
            # key in the database and returns the refund already made. REJECT_DUPLICATE would
            # turn that harmless repeat into an error.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
