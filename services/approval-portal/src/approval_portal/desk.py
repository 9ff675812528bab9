"""The Temporal side of the portal: which approvals wait, and delivering a decision.

Pending approvals are found through visibility, by the ``AgentPendingApprovals`` search
attribute each conversation keeps equal to its number of pending approvals, never by listing
every conversation; each found conversation is then asked for its pending approvals (the
``status`` query), so what the page shows is the workflow's own state, not visibility's copy,
which may lag by a moment. The query's answer is decoded by the client's codec with the
deployment's key ring (the portal's own, as the workers have): the portal must encrypt the
decision it sends anyway, and it checks the approver's rights before it asks (see README).

A decision is the ``decide_approval`` Update that ``agent chat approve`` sends
(:meth:`agent.chat.client.Conversations.decide`), with the approver's identity. The workflow is
the arbiter: of two decisions on one approval, it takes the first and refuses the second with a
sentence naming who decided.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import Client

from agent.chat.client import ChatError, Conversations
from agent.metrics import PENDING_APPROVALS
from agent.support.types import Approval, ApprovalOutcome
from agent.workflows.support_agent import SupportAgentWorkflow

PENDING_QUERY = (
    f'WorkflowType = "{SupportAgentWorkflow.__name__}" AND ExecutionStatus = "Running" AND {PENDING_APPROVALS.name} > 0'
)
"""The visibility query for conversations with at least one approval waiting."""
QUERIES_IN_FLIGHT = 8


@dataclass(frozen=True)
class PendingApproval:
    conversation_id: str
    customer_id: str
    acting: str
    """How the conversation's identity was established (``operator lead-ana acting for ...``)."""
    approval: Approval


class ApprovalDesk:
    def __init__(self, client: Client, *, patience_s: float = 10.0, max_conversations: int = 200) -> None:
        """``patience_s``: how long one call waits out an unreachable server (a page must answer);
        ``max_conversations``: the most conversations one listing reads (the oldest waiting first)."""
        self._client = client
        self._conversations = Conversations(client, patience_s=patience_s)
        self.max_conversations = max_conversations

    async def pending(self) -> list[PendingApproval]:
        ids = [
            execution.id async for execution in self._client.list_workflows(PENDING_QUERY, limit=self.max_conversations)
        ]
        slots = asyncio.Semaphore(QUERIES_IN_FLIGHT)

        async def of(conversation_id: str) -> list[PendingApproval]:
            async with slots:
                try:
                    status = await self._conversations.status(conversation_id)
                except ChatError:
                    return []  # ended or decided since visibility listed it
            return [
                PendingApproval(conversation_id, status.customer_id, status.acting, approval)
                for approval in status.pending_approvals
            ]

        found = await asyncio.gather(*(of(i) for i in ids))
        return sorted((p for group in found for p in group), key=lambda p: p.approval.requested_at)

    async def decide(
        self, conversation_id: str, approval_id: str, *, approve: bool, approver: str, note: str, decision_id: str
    ) -> ApprovalOutcome:
        """The outcome, or :class:`ChatError` (exit code 4 when the conversation refused it)."""
        return await self._conversations.decide(
            conversation_id, approval_id, approve=approve, approver=approver, note=note, decision_id=decision_id
        )

    async def reachable(self) -> bool:
        try:
            await self._client.count_workflows(PENDING_QUERY)
        except Exception:  # any failure: not ready, and /readyz says so
            return False
        return True
