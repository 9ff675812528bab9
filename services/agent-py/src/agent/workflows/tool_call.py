"""One tool call from outside a conversation (the MCP server's), as a workflow of its own.

The caller names the workflow by an idempotency key (``tool_call_id``), so a call resent after a
timeout or a crash of the caller reaches the same run and gets its result, never a second
effect; underneath, the business service's own idempotency key (the same key) holds too.

The tools are the support agent's (:mod:`agent.support.toolbox`), so the same rules apply to a
person's MCP client as to the model: the order's currency, its total, the refund cap, and the
approval threshold. A refund a person must decide opens a :class:`RefundApprovalWorkflow`
(its own run, which outlives this one) and this call answers ``pending_approval`` at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError, NexusOperationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    import nexus_contracts.retrieval  # noqa: F401  (result types resolve through sys.modules)
    from agent import tools
    from agent.llm.types import ToolCall
    from agent.metrics import PENDING_APPROVALS
    from agent.support.policy import format_money
    from agent.support.toolbox import ApprovalRequest, Toolbox, failure_of, refund_result
    from agent.support.types import ApprovalDecision, ApprovalStatus, ConversationSettings
    from nexus_contracts.business import RefundRequest
    from workerkit.deployment import when_versioned

CALLABLE = frozenset(
    t.name
    for t in (
        tools.SEARCH_KNOWLEDGE,
        tools.LOOKUP_ORDER,
        tools.REFUND_ORDER,
        tools.ESCALATE_TO_HUMAN,
        tools.LOOKUP_TICKET,
    )
)
"""The agent's tools a caller outside a conversation may run."""


def tool_call_id(key: str) -> str:
    """The workflow id of the call with idempotency key ``key``."""
    return f"tool-call-{key}"


def approval_id_of(call_id: str) -> str:
    """The workflow id of the approval a refund call opens (one per call)."""
    return f"{call_id}-approval"


@dataclass
class ToolInvocation:
    tool: str
    arguments: dict[str, Any]
    caller: str
    """Who asked (the MCP principal's subject): recorded with an approval for the approver."""
    customer_id: str | None = None
    """The customer the call acts for (None: an operator's call, any customer)."""
    settings: ConversationSettings = field(default_factory=ConversationSettings)


@dataclass
class ToolCallResult:
    result: dict[str, Any]
    """What the caller reads; ``{"error": {"type", "message"}}`` when the call failed."""
    failed: bool = False


@dataclass
class ApprovalStart:
    request: ApprovalRequest
    idempotency_key: str
    caller: str
    customer_id: str | None
    settings: ConversationSettings


@dataclass
class ApprovalResult:
    approval_id: str
    status: str
    decided_by: str = ""
    note: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def _asked(arguments: dict[str, Any]) -> str:
    # The caller named this order in an explicit refund call: what the guardrail asks of a
    # customer's own message before a refund goes ahead without a person.
    return f"please refund order {arguments.get('order_id', '')}"


@workflow.defn(versioning_behavior=when_versioned(VersioningBehavior.AUTO_UPGRADE))
class ToolCallWorkflow:
    @workflow.run
    async def run(self, call: ToolInvocation) -> ToolCallResult:
        if call.tool not in CALLABLE:
            raise ApplicationError(f"there is no tool named {call.tool!r}", type="UnknownTool", non_retryable=True)
        key = workflow.info().workflow_id
        toolbox = Toolbox(call.settings, call.customer_id, committed=lambda currency: 0)
        asked = _asked(call.arguments) if call.tool == tools.REFUND_ORDER.name else ""
        outcome = await toolbox.run(ToolCall(id=key, name=call.tool, arguments=json.dumps(call.arguments)), key, asked)
        if outcome.approval is None:
            return ToolCallResult(outcome.result, outcome.failed)
        approval_id = approval_id_of(key)
        await workflow.start_child_workflow(
            RefundApprovalWorkflow.run,
            ApprovalStart(outcome.approval, key, call.caller, call.customer_id, call.settings),
            id=approval_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        return ToolCallResult(
            {
                "status": "pending_approval",
                "approval_id": approval_id,
                "summary": outcome.approval.summary,
                "nothing_paid_yet": True,
                "why": outcome.guardrail
                or f"refunds above {format_money(call.settings.approval_threshold_cents, outcome.approval.currency)} "
                "wait for a person",
            }
        )


@workflow.defn(versioning_behavior=when_versioned(VersioningBehavior.PINNED))
class RefundApprovalWorkflow:
    """A refund waiting for a person: ``decide_approval`` (the conversation's Update, same
    input) approves or rejects it; with no decision by the deadline it expires, nothing paid.
    Pending while ``AgentPendingApprovals`` is 1, so approvers find it through visibility."""

    @workflow.init
    def __init__(self, start: ApprovalStart) -> None:
        self._status = ApprovalStatus.PENDING
        self._decision: ApprovalDecision | None = None

    @workflow.run
    async def run(self, start: ApprovalStart) -> ApprovalResult:
        approval_id = workflow.info().workflow_id
        workflow.upsert_search_attributes([PENDING_APPROVALS.value_set(1)])
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None,
                timeout=timedelta(seconds=start.settings.approval_timeout_s),
                timeout_summary="approval deadline",
            )
        except TimeoutError:
            self._status = ApprovalStatus.ESCALATED
        workflow.upsert_search_attributes([PENDING_APPROVALS.value_set(0)])
        decision = self._decision
        if decision is None:
            return ApprovalResult(approval_id, "expired", result={"nothing_paid": True})
        if not decision.approve:
            return ApprovalResult(
                approval_id, ApprovalStatus.REJECTED, decision.approver, decision.note, {"nothing_paid": True}
            )
        request = start.request
        toolbox = Toolbox(start.settings, start.customer_id, committed=lambda currency: 0)
        try:
            refund = await toolbox.refund(
                RefundRequest(request.order_id, request.amount_cents, request.reason, start.idempotency_key)
            )
        except NexusOperationError as err:
            kind, message = failure_of(err)
            self._status = ApprovalStatus.FAILED
            result = {"error": {"type": kind, "message": message}}
        else:
            self._status = ApprovalStatus.EXECUTED
            result = refund_result(refund, approval_id=approval_id, approved_by=decision.approver)
        return ApprovalResult(approval_id, self._status, decision.approver, decision.note, result)

    @workflow.update
    async def decide_approval(self, decision: ApprovalDecision) -> str:
        self._decision = decision
        self._status = ApprovalStatus.APPROVED if decision.approve else ApprovalStatus.REJECTED
        return self._status

    @decide_approval.validator
    def _validate(self, decision: ApprovalDecision) -> None:
        if self._decision is not None or self._status != ApprovalStatus.PENDING:
            raise ValueError(f"approval {workflow.info().workflow_id} is {self._status}, no longer pending")
        if decision.approval_id != workflow.info().workflow_id:
            raise ValueError(f"this is approval {workflow.info().workflow_id}, not {decision.approval_id}")

    @workflow.query
    def status(self) -> str:
        return self._status
