"""The support agent's tools, run from workflow code through Nexus (deterministic, no I/O).

Every tool call ends in a :class:`ToolOutcome` the model can read, also when it failed: an
unknown order (NOT_FOUND), an invalid amount (BAD_REQUEST) or malformed arguments are answers
the model recovers from ("that order does not exist; please check the number"), never a failed
workflow. Refunds above the conversation's threshold are not executed here; the outcome asks
the workflow to open an approval instead.

Every business request leaves here with the conversation's ``customer_id`` (its authenticated
customer), whatever the model's arguments say: the business service refuses other customers'
orders and tickets, and that refusal comes back as a tool error the model can explain.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

import nexusrpc
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, NexusOperationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from agent import tools
from agent.blobs.types import preview_of
from agent.embeddings.types import (
    EMBED_TASK_QUEUE,
    EMBED_TEXTS_ACTIVITY,
    NON_RETRYABLE_EMBEDDING_ERRORS,
    EmbedRequest,
    EmbedResult,
)
from agent.external.types import (
    CALL_TOOL_ACTIVITY,
    MCP_TASK_QUEUE,
    NON_RETRYABLE_MCP_ERRORS,
    ExternalCall,
    ExternalResult,
    ExternalTool,
    McpErrorType,
)
from agent.llm.types import ToolCall
from agent.support.policy import (
    ABOVE_REMAINING_WORDS,
    Guardrail,
    format_money,
    needs_approval,
    over_conversation_cap,
    person_required,
)
from agent.support.types import Citation, ConversationSettings
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
from nexus_contracts.retrieval import MODE_BM25, MODE_HYBRID, RetrievalService, SearchHit, SearchRequest, SearchResponse

LOOKUP_TIMEOUT = timedelta(seconds=30)
# A refund is a workflow in the business namespace; give its retries (a locked database,
# a restarting worker) room before the agent reports it as unavailable.
REFUND_TIMEOUT = timedelta(minutes=5)
# Bounds on what the model may pass on to other services, well under the contracts' limits
# (MAX_*_LENGTH in nexus_contracts): these go into history as Nexus operation input, and a model often passes
# the customer's whole message along.
MAX_QUERY_CHARS = 1000
MAX_REASON_CHARS = 500
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 8000
# A query embedding is one short provider request; past this (retries included) the search
# goes on with BM25 alone rather than keep the customer waiting.
QUERY_EMBED_TIMEOUT = timedelta(seconds=20)
HYBRID_SEARCH_PATCH = "hybrid-knowledge-search"
# Patch: refunds held to the order's remaining amount and the conversation's cap before the
# business service is asked, and a refund on an order not yet delivered waits for a person.
REFUND_GUARDRAILS_PATCH = "refund-guardrails"


@dataclass
class KnowledgeSearch:
    response: SearchResponse
    fallback: str = ""
    """Why the search ran as BM25 only (empty when it was hybrid)."""


def source_of(hit: SearchHit) -> str:
    """The document a hit (a chunk, ``<doc_id>#<n>``) comes from: what a citation names."""
    return (hit.metadata or {}).get("source_id") or hit.doc_id


async def search_knowledge(
    retrieval: workflow.NexusClient[RetrievalService], query: str, collection: str, top_k: int
) -> KnowledgeSearch:
    """Hybrid search (BM25 and the query's embedding, fused by rank), or BM25 alone when the
    query cannot be embedded. Histories recorded before hybrid search replay the BM25 path."""
    vector: list[float] | None = None
    fallback = ""
    if workflow.patched(HYBRID_SEARCH_PATCH):
        try:
            embedded = await workflow.execute_activity(
                EMBED_TEXTS_ACTIVITY,
                EmbedRequest(texts=[query], purpose="query"),
                result_type=EmbedResult,
                task_queue=EMBED_TASK_QUEUE,
                schedule_to_close_timeout=QUERY_EMBED_TIMEOUT,
                retry_policy=RetryPolicy(non_retryable_error_types=NON_RETRYABLE_EMBEDDING_ERRORS),
            )
            vector = embedded.vectors[0]
        except ActivityError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            fallback = f"the query could not be embedded ({reason}), so these results are from keyword search only"
    response = await retrieval.execute_operation(
        RetrievalService.search,
        SearchRequest(
            query=query,
            collection=collection,
            top_k=top_k,
            mode=MODE_HYBRID if vector is not None else MODE_BM25,
            query_vector=vector,
        ),
        schedule_to_close_timeout=LOOKUP_TIMEOUT,
    )
    return KnowledgeSearch(response=response, fallback=fallback)


@dataclass
class ApprovalRequest:
    order_id: str
    amount_cents: int
    currency: str
    reason: str
    summary: str


@dataclass
class ToolOutcome:
    result: dict[str, Any]
    """JSON the model reads; ``{"error": {"type", "message"}}`` when the call failed."""
    failed: bool = False
    citations: list[Citation] = field(default_factory=list)
    refund: RefundResult | None = None
    ticket: Ticket | None = None
    approval: ApprovalRequest | None = None
    guardrail: str | None = None
    """The rule that refused the call (``Guardrail``), or made a refund wait for a person;
    counted and audited by the workflow (``agent.support.audit``)."""


class BadArguments(ValueError):
    """The model's arguments do not fit the tool; it is told so and can call again."""


def error_outcome(kind: str, message: str, guardrail: str | None = None) -> ToolOutcome:
    return ToolOutcome(result={"error": {"type": kind, "message": message}}, failed=True, guardrail=guardrail)


def failure_of(err: NexusOperationError) -> tuple[str, str]:
    """(type, sentence) of a failed Nexus operation, in words the model can pass on."""
    cause = err.cause
    if isinstance(cause, nexusrpc.HandlerError):
        return cause.type.name, str(cause)
    if isinstance(cause, ApplicationError):
        return cause.type or "FAILED", cause.message
    if isinstance(cause, TemporalTimeoutError):
        return "UNAVAILABLE", f"the {err.service} service did not answer in time; try again later"
    return "FAILED", str(cause or err)


def external_failure(tool: ExternalTool, err: ActivityError) -> tuple[str, str]:
    """(type, sentence) of an external tool call that failed for good, for the model to read."""
    cause = err.cause
    kind = cause.type if isinstance(cause, ApplicationError) else None
    if kind == McpErrorType.AUTH:
        return "UNAVAILABLE", f"the {tool.server} service refused our credentials; a person must fix that"
    if kind == McpErrorType.PROTOCOL:
        return "BAD_REQUEST", f"{tool.name}: {cause.message if isinstance(cause, ApplicationError) else err}"
    if kind == McpErrorType.UNKNOWN_SERVER:
        return "UNKNOWN_TOOL", f"the {tool.server} service is not configured here"
    return "UNAVAILABLE", f"the {tool.server} service did not answer; try again later"


def refund_result(refund: RefundResult, **extra: object) -> dict[str, Any]:
    """What the model reads about a refund: the facts a customer asks about first."""
    return {
        "status": "refunded",
        "refund_id": refund.refund_id,
        "amount": format_money(refund.amount_cents, refund.currency),
        "order_id": refund.order_id,
        **extra,
        "idempotency_key": refund.idempotency_key,
    }


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        raise BadArguments("the arguments are not valid JSON") from None
    if not isinstance(value, dict):
        raise BadArguments("the arguments must be a JSON object")
    return value


def _text(args: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadArguments(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise BadArguments(f"{name} must be a string")
    return value.strip()


def _whole_number(args: dict[str, Any], name: str) -> int:
    value = args.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise BadArguments(f"{name} must be a whole number")
    return int(value)


class Toolbox:
    """Created inside the workflow run (Nexus clients belong to the running workflow)."""

    def __init__(
        self, settings: ConversationSettings, customer_id: str | None, committed: Callable[[str], int]
    ) -> None:
        """``committed(currency)``: cents this conversation refunded or asked approval for."""
        self._settings = settings
        self._customer_id = customer_id
        self._committed = committed
        self._asked = ""
        self._refunds_this_turn = 0
        self.external: dict[str, ExternalTool] = {}
        """External MCP tools by the name the model sees (set once discovered)."""
        self._retrieval = workflow.create_nexus_client(service=RetrievalService, endpoint=settings.retrieval_endpoint)
        self._business = workflow.create_nexus_client(service=BusinessService, endpoint=settings.business_endpoint)

    async def run(
        self, call: ToolCall, idempotency_key: str, asked: str = "", refunds_this_turn: int = 0
    ) -> ToolOutcome:
        """Never raises for a tool's failure: the outcome says what went wrong. ``asked``: the
        customer's message this turn; ``refunds_this_turn``: refunds already made without a person."""
        self._asked, self._refunds_this_turn = asked, refunds_this_turn
        handler = self._handlers().get(call.name)
        if call.name in self.external:
            handler = self._external_tool(self.external[call.name])
        if handler is None:
            return error_outcome("UNKNOWN_TOOL", f"there is no tool named {call.name!r}", Guardrail.UNKNOWN_TOOL)
        try:
            return await handler(_arguments(call.arguments), idempotency_key)
        except BadArguments as err:
            return error_outcome("INVALID_ARGUMENTS", f"{call.name}: {err}", Guardrail.BAD_ARGUMENTS)
        except NexusOperationError as err:
            outcome = error_outcome(*failure_of(err))
            if outcome.result["error"]["type"] == "UNAUTHORIZED":
                outcome.guardrail = Guardrail.OTHER_CUSTOMER
            return outcome

    def _handlers(self) -> dict[str, Callable[[dict[str, Any], str], Awaitable[ToolOutcome]]]:
        """The handler of each tool the model is offered (``agent.tools.SUPPORT``), by its name;
        a handler parses its own arguments and gets the step's idempotency key."""
        return {
            tools.SEARCH_KNOWLEDGE.name: self._search_knowledge,
            tools.LOOKUP_ORDER.name: self._lookup_order,
            tools.REFUND_ORDER.name: self._refund_order,
            tools.ESCALATE_TO_HUMAN.name: self._escalate_to_human,
            tools.LOOKUP_TICKET.name: self._lookup_ticket,
        }

    def _external_tool(self, tool: ExternalTool) -> Callable[[dict[str, Any], str], Awaitable[ToolOutcome]]:
        """The handler of an external MCP tool: one activity per call, whose result (the tool's
        answer or its own error) is recorded, so a replay reads it instead of calling again."""

        async def call(args: dict[str, Any], key: str) -> ToolOutcome:
            s = self._settings
            try:
                result = await workflow.execute_activity(
                    CALL_TOOL_ACTIVITY,
                    ExternalCall(tool.server, tool.name, args, key),
                    result_type=ExternalResult,
                    task_queue=MCP_TASK_QUEUE,
                    start_to_close_timeout=timedelta(seconds=s.mcp_tool_timeout_s),
                    retry_policy=RetryPolicy(
                        maximum_attempts=s.mcp_tool_max_attempts, non_retryable_error_types=NON_RETRYABLE_MCP_ERRORS
                    ),
                    summary=f"MCP tool {tool.server}/{tool.name}",
                )
            except ActivityError as err:
                return error_outcome(*external_failure(tool, err))
            if result.is_error:
                return error_outcome("TOOL_ERROR", f"{tool.name} answered with an error: {result.text}")
            return ToolOutcome(
                result={"server": tool.server, "tool": tool.name, "result": result.structured or result.text}
            )

        return call

    async def _search_knowledge(self, args: dict[str, Any], _: str) -> ToolOutcome:
        query = (_text(args, "query") or "")[:MAX_QUERY_CHARS]
        search = await search_knowledge(self._retrieval, query, self._settings.collection, self._settings.search_top_k)
        hits = [
            {"doc_id": source_of(h), "title": h.title, "text": h.text, "score": round(h.score, 3)}
            for h in search.response.hits
        ]
        citations: list[Citation] = []
        for hit in search.response.hits:
            if all(c.doc_id != source_of(hit) for c in citations):
                citations.append(Citation(doc_id=source_of(hit), title=hit.title))
        result: dict[str, Any] = {"hits": hits}
        if search.fallback:
            result["note"] = search.fallback
        return ToolOutcome(result=result, citations=citations)

    async def order(self, order_id: str) -> Order:
        return await self._business.execute_operation(
            BusinessService.get_order,
            GetOrderRequest(order_id=order_id, customer_id=self._customer_id),
            schedule_to_close_timeout=LOOKUP_TIMEOUT,
        )

    async def _lookup_order(self, args: dict[str, Any], _: str) -> ToolOutcome:
        order = await self.order(_text(args, "order_id") or "")
        return ToolOutcome(result=asdict(order))

    async def _refund_order(self, args: dict[str, Any], key: str) -> ToolOutcome:
        order_id = _text(args, "order_id") or ""
        amount = _whole_number(args, "amount_cents")
        reason = (_text(args, "reason", required=False) or "requested by the customer")[:MAX_REASON_CHARS]
        currency = _text(args, "currency", required=False)
        # Looked up first: an unknown order or a wrong currency is the model's to fix, and a
        # person asked to approve a refund should see what the order is.
        order = await self.order(order_id)
        if currency is not None and currency.upper() != order.currency:
            return error_outcome(
                "BAD_REQUEST",
                f"order {order.order_id} was paid in {order.currency}; "
                f"a refund is in {order.currency}, not {currency.upper()}",
                Guardrail.WRONG_CURRENCY,
            )
        above_threshold = needs_approval(amount, self._settings.approval_threshold_cents)
        # Runs recorded before the guardrails asked the business service below the threshold.
        if amount > order.total_cents and (above_threshold or workflow.patched(REFUND_GUARDRAILS_PATCH)):
            # Refused before anything else: no key's refund can exceed the order's total. (Whether
            # enough is *left* is the business service's decision at execution: it also knows
            # refunds made meanwhile, and a key it refunded before.)
            return error_outcome(
                "BAD_REQUEST",
                f"cannot refund {format_money(amount, order.currency)} on order {order.order_id}: "
                f"the order total is {format_money(order.total_cents, order.currency)}",
                Guardrail.ABOVE_REMAINING,
            )
        capped = over_conversation_cap(
            amount, self._committed(order.currency), self._settings.max_refund_cents_per_conversation
        )
        # A person decides a refund on goods not yet delivered, one the customer did not ask for,
        # and any but the first of one message (a burst), whatever the amount.
        person_rule = person_required(order.fulfilment, self._asked, order.order_id, self._refunds_this_turn)
        needs_person = person_rule is not None
        # Checked only when a rule applies, so runs recorded before the rules replay unchanged.
        guarded = (capped or needs_person) and workflow.patched(REFUND_GUARDRAILS_PATCH)
        if guarded and capped:
            return error_outcome(
                "REFUSED",
                f"cannot refund {format_money(amount, order.currency)} on order {order.order_id}: this "
                "conversation has reached the refunds it may make; a person must handle any further refund",
                Guardrail.CONVERSATION_CAP,
            )
        if not above_threshold and not (guarded and needs_person):
            try:
                refund = await self.refund(RefundRequest(order.order_id, amount, reason, key))
            except NexusOperationError as err:
                outcome = error_outcome(*failure_of(err))
                if ABOVE_REMAINING_WORDS in outcome.result["error"]["message"]:
                    outcome.guardrail = Guardrail.ABOVE_REMAINING
                return outcome
            return ToolOutcome(result=refund_result(refund), refund=refund)
        summary = (
            f"refund {format_money(amount, order.currency)} on {order.order_id} for {order.customer} "
            f"(order total {format_money(order.total_cents, order.currency)}, "
            f"refunded so far {format_money(order.refunded_cents, order.currency)})"
        )
        return ToolOutcome(
            result={},
            approval=ApprovalRequest(order.order_id, amount, order.currency, reason, summary),
            # Above the threshold a person decides anyway: only a refund the rules alone sent to a
            # person counts as refused.
            guardrail=person_rule if guarded and not above_threshold else None,
        )

    async def refund(self, request: RefundRequest) -> RefundResult:
        return await self._business.execute_operation(
            BusinessService.refund,
            replace(request, customer_id=self._customer_id),
            schedule_to_close_timeout=REFUND_TIMEOUT,
        )

    async def open_ticket(self, request: CreateTicketRequest) -> Ticket:
        return await self._business.execute_operation(
            BusinessService.create_ticket,
            replace(request, customer_id=self._customer_id),
            schedule_to_close_timeout=LOOKUP_TIMEOUT,
        )

    async def _escalate_to_human(self, args: dict[str, Any], key: str) -> ToolOutcome:
        reason = _text(args, "reason") or ""
        ticket = await self.open_ticket(
            CreateTicketRequest(
                subject=preview_of(f"Customer asks for a person: {reason}", MAX_SUBJECT_CHARS),
                idempotency_key=key,
                body=reason[:MAX_BODY_CHARS],
                order_id=_text(args, "order_id", required=False),
            )
        )
        return ToolOutcome(result=asdict(ticket), ticket=ticket)

    async def _lookup_ticket(self, args: dict[str, Any], _: str) -> ToolOutcome:
        ticket = await self._business.execute_operation(
            BusinessService.get_ticket,
            GetTicketRequest(ticket_id=_text(args, "ticket_id") or "", customer_id=self._customer_id),
            schedule_to_close_timeout=LOOKUP_TIMEOUT,
        )
        return ToolOutcome(result=asdict(ticket))
