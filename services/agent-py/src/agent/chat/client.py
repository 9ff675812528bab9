"""A typed client for SupportAgentWorkflow, with errors a person can act on.

Every failure becomes a :class:`ChatError` with one sentence and the CLI's exit code:

== =====================================================================================
 0 success
 1 the conversation or the agent failed (a workflow error, no worker answering a query)
 2 cannot connect or configure (unreachable server, missing keys); argparse usage errors
 3 no conversation with that id
 4 the conversation refused the input (empty or oversized message, unknown or already
   decided approval, conversation already ended, id already taken)
== =====================================================================================
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from agent.queues import AGENT_TASK_QUEUE
from agent.support.types import (
    AgentReply,
    Approval,
    ApprovalDecision,
    ApprovalOutcome,
    ConversationStart,
    ConversationStatus,
    ConversationSummary,
    EndRequest,
    SendMessage,
    TranscriptView,
)
from agent.workflows.support_agent import SupportAgentWorkflow

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 2
EXIT_UNKNOWN_CONVERSATION = 3
EXIT_REJECTED = 4


class ChatError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def new_conversation_id() -> str:
    return f"support-{uuid.uuid4().hex[:12]}"


def _root_message(err: BaseException) -> str:
    cause: BaseException | None = err
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause  # type: ignore[union-attr]
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


class Conversations:
    def __init__(self, client: Client) -> None:
        self._client = client

    async def start(
        self, start: ConversationStart, conversation_id: str | None = None, *, replace: bool = False
    ) -> str:
        """Start a conversation. Ids are never reused (refund keys derive from them) unless
        ``replace``, which the demo uses to show that its refund happens once."""
        conversation_id = conversation_id or new_conversation_id()
        try:
            await self._client.start_workflow(
                SupportAgentWorkflow.run,
                start,
                id=conversation_id,
                task_queue=AGENT_TASK_QUEUE,
                id_reuse_policy=(
                    WorkflowIDReusePolicy.ALLOW_DUPLICATE if replace else WorkflowIDReusePolicy.REJECT_DUPLICATE
                ),
                id_conflict_policy=(
                    WorkflowIDConflictPolicy.TERMINATE_EXISTING if replace else WorkflowIDConflictPolicy.FAIL
                ),
            )
        except WorkflowAlreadyStartedError:
            raise ChatError(
                f"a conversation with id {conversation_id} exists already; choose another id or leave --id out",
                EXIT_REJECTED,
            ) from None
        except RPCError as err:
            raise self._rpc_error(err, conversation_id) from None
        return conversation_id

    def _handle(self, conversation_id: str) -> WorkflowHandle[SupportAgentWorkflow, ConversationSummary]:
        return self._client.get_workflow_handle_for(SupportAgentWorkflow.run, conversation_id)

    async def send(self, conversation_id: str, text: str) -> AgentReply:
        update = self._handle(conversation_id).execute_update(SupportAgentWorkflow.send_message, SendMessage(text))
        return await self._guard(conversation_id, update)

    async def decide(
        self, conversation_id: str, approval_id: str, *, approve: bool, approver: str, note: str = ""
    ) -> ApprovalOutcome:
        decision = ApprovalDecision(approval_id, approve, approver, note)
        update = self._handle(conversation_id).execute_update(SupportAgentWorkflow.decide_approval, decision)
        return await self._guard(conversation_id, update)

    async def end(self, conversation_id: str, reason: str = "ended by the customer") -> ConversationSummary:
        update = self._handle(conversation_id).execute_update(SupportAgentWorkflow.end_conversation, EndRequest(reason))
        return await self._guard(conversation_id, update)

    async def approvals(self, conversation_id: str) -> list[Approval]:
        query = self._handle(conversation_id).query(SupportAgentWorkflow.pending_approvals)
        return await self._guard(conversation_id, query)

    async def status(self, conversation_id: str) -> ConversationStatus:
        query = self._handle(conversation_id).query(SupportAgentWorkflow.status)
        return await self._guard(conversation_id, query)

    async def transcript(self, conversation_id: str) -> TranscriptView:
        query = self._handle(conversation_id).query(SupportAgentWorkflow.transcript)
        return await self._guard(conversation_id, query)

    async def _guard(self, conversation_id: str, call: Awaitable[T]) -> T:
        """Await one update or query; SDK errors become a :class:`ChatError`."""
        try:
            return await call
        except WorkflowUpdateFailedError as err:
            message = f"conversation {conversation_id} refused this: {_root_message(err)}"
            raise ChatError(message, EXIT_REJECTED) from None
        except WorkflowQueryFailedError as err:
            raise ChatError(f"conversation {conversation_id} could not answer: {err.message}", EXIT_FAILED) from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                status = await self._closed_status(conversation_id)
                if status is not None:
                    raise ChatError(
                        f"conversation {conversation_id} has ended ({status.name.lower()}); "
                        "start a new one with `agent chat start`",
                        EXIT_REJECTED,
                    ) from None
            raise self._rpc_error(err, conversation_id) from None

    async def _closed_status(self, conversation_id: str) -> WorkflowExecutionStatus | None:
        """None when no conversation has this id; else its status."""
        try:
            description = await self._client.get_workflow_handle(conversation_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return description.status

    def _rpc_error(self, err: RPCError, conversation_id: str) -> ChatError:
        if err.status == RPCStatusCode.NOT_FOUND:
            return ChatError(
                f"there is no conversation {conversation_id}; start one with `agent chat start`",
                EXIT_UNKNOWN_CONVERSATION,
            )
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return ChatError(
                f"the Temporal server did not answer ({err.message}); check that it runs (`make status`)",
                EXIT_UNAVAILABLE,
            )
        return ChatError(f"the Temporal server refused the request: {err.message}", EXIT_FAILED)
