"""SystemCheckWorkflow: one request through every hop of the system.

Search the knowledge base (the question embedded on the ``embed`` queue, then a hybrid search in
the Go worker through the ``retrieval`` endpoint), look up an order and refund it
(business worker, ``business`` endpoint; the refund is a workflow-run operation), then ask the
model to answer from what came back. ``make demo`` runs it; in a cluster it is a canary that
proves the endpoints, namespaces, codecs and workers line up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from agent.llm.types import CHAT_COMPLETION_ACTIVITY, ChatMessage, ChatRequest, ChatResult, tool_call
    from agent.queues import LLM_TASK_QUEUE
    from agent.support.toolbox import search_knowledge, source_of
    from agent.tools import ALL_TOOLS, LOOKUP_ORDER, REFUND_ORDER, SEARCH_KNOWLEDGE
    from nexus_contracts.business import DEFAULT_ENDPOINT as BUSINESS_ENDPOINT
    from nexus_contracts.business import (
        BusinessService,
        GetOrderRequest,
        Order,
        RefundRequest,
        RefundResult,
    )
    from nexus_contracts.retrieval import DEFAULT_ENDPOINT as RETRIEVAL_ENDPOINT
    from nexus_contracts.retrieval import RetrievalService, SearchResponse
    from workerkit.deployment import when_versioned

MODEL_CALL_TIMEOUT = timedelta(seconds=60)
NEXUS_OPERATION_TIMEOUT = timedelta(seconds=60)
SYSTEM_PROMPT = (
    "You are the support agent of an online shop. Answer from the tool results only and cite documents as [doc_id]."
)


@dataclass
class SystemCheckInput:
    question: str
    order_id: str
    refund_cents: int
    refund_reason: str = "system check"
    collection: str = "kb"
    retrieval_endpoint: str = RETRIEVAL_ENDPOINT
    business_endpoint: str = BUSINESS_ENDPOINT


@dataclass
class SystemCheckResult:
    search: SearchResponse
    order: Order
    refund: RefundResult
    answer: ChatResult
    hops: list[str] = field(default_factory=list)


# Pinned: a check lasts seconds and tests one build end to end; moving it mid-run to another
# build would blur which one passed.
@workflow.defn(versioning_behavior=when_versioned(VersioningBehavior.PINNED))
class SystemCheckWorkflow:
    @workflow.run
    async def run(self, check: SystemCheckInput) -> SystemCheckResult:
        hops: list[str] = []
        retrieval = workflow.create_nexus_client(service=RetrievalService, endpoint=check.retrieval_endpoint)
        business = workflow.create_nexus_client(service=BusinessService, endpoint=check.business_endpoint)

        knowledge = await search_knowledge(retrieval, check.question, check.collection, top_k=3)
        search = knowledge.response
        # Hits are chunks; the check (like a citation) names the document each comes from.
        for hit in search.hits:
            hit.doc_id = source_of(hit)
        hops.append("retrieval.search")  # search.mode says whether it ran hybrid or fell back to bm25

        order = await business.execute_operation(
            BusinessService.get_order,
            GetOrderRequest(order_id=check.order_id),
            schedule_to_close_timeout=NEXUS_OPERATION_TIMEOUT,
        )
        hops.append("business.get_order")

        # Derived from this workflow's id: a retried or replayed request refunds at most once.
        idempotency_key = f"{workflow.info().workflow_id}/refund"
        refund = await business.execute_operation(
            BusinessService.refund,
            RefundRequest(
                order_id=order.order_id,
                amount_cents=check.refund_cents,
                reason=check.refund_reason,
                idempotency_key=idempotency_key,
            ),
            schedule_to_close_timeout=NEXUS_OPERATION_TIMEOUT,
        )
        hops.append("business.refund")

        # The hops above are the tool calls; the model sees them as its own tool-call turn
        # and answers from their results, as it will inside the agent loop.
        calls = [
            (SEARCH_KNOWLEDGE, {"query": check.question}, asdict(search)),
            (LOOKUP_ORDER, {"order_id": check.order_id}, asdict(order)),
            (
                REFUND_ORDER,
                {"order_id": check.order_id, "amount_cents": check.refund_cents, "reason": check.refund_reason},
                asdict(refund),
            ),
        ]
        messages = [
            ChatMessage(role="system", content=SYSTEM_PROMPT),
            ChatMessage(role="user", content=check.question),
            ChatMessage(
                role="assistant",
                tool_calls=[
                    tool_call(f"call_{i}", tool.name, json.dumps(args)) for i, (tool, args, _) in enumerate(calls)
                ],
            ),
            *[
                ChatMessage(role="tool", tool_call_id=f"call_{i}", content=json.dumps(output))
                for i, (_, _, output) in enumerate(calls)
            ],
        ]
        answer = await workflow.execute_activity(
            CHAT_COMPLETION_ACTIVITY,
            ChatRequest(messages=messages, tools=ALL_TOOLS),
            task_queue=LLM_TASK_QUEUE,
            start_to_close_timeout=MODEL_CALL_TIMEOUT,
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
            result_type=ChatResult,
        )
        hops.append("llm.chat_completion")
        return SystemCheckResult(search=search, order=order, refund=refund, answer=answer, hops=hops)
