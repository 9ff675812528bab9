"""A typed client for SupportAgentWorkflow, with errors a person can act on.

**Resending is safe.** Every message, approval decision and end request carries an id that the
caller chooses (or that this client makes), sent as the Update id (``message/<id>``,
``decision/<id>``, ``end/<id>``: the server attaches any update with a known id to the first
one, whatever its kind, so the kind keeps a message id from meeting a decision id) and reused on
every retry:
the conversation answers a resent id with the first one's answer instead of acting twice,
across continue-as-new too. **Outages are waited out.** Calls retry while the Temporal server
is unreachable, for ``patience_s`` (``AGENT_CLIENT_PATIENCE_S``, default 120 s: a server restart
fits); when they give up, the error says that the request may or may not have been accepted
and that resending it with the same id is safe.

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

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_type_hints

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
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
from workerkit.errors import root_message
from workerkit.settings import seconds_setting

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 2
EXIT_UNKNOWN_CONVERSATION = 3
EXIT_REJECTED = 4

PATIENCE_ENV = "AGENT_CLIENT_PATIENCE_S"
DEFAULT_PATIENCE_S = 120.0
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
# The server's clock and ours may differ a little when telling our own earlier start from another's.
_CLOCK_SKEW = timedelta(seconds=5)
_FIRST_DELAY_S, _MAX_DELAY_S = 0.5, 5.0


class ChatError(Exception):
    def __init__(self, message: str, exit_code: int, *, resend_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.resend_id = resend_id
        """Set when the request may or may not have been accepted: resending with this id is safe."""


def new_conversation_id() -> str:
    return f"support-{uuid.uuid4().hex[:12]}"


def new_request_id(kind: str = "msg") -> str:
    """An id for one message, decision or end request; reuse it to resend that request."""
    return f"{kind}-{uuid.uuid4().hex}"


def patience_from_env() -> float:
    return seconds_setting(PATIENCE_ENV, DEFAULT_PATIENCE_S, zero_allowed=True)


def check_request_id(request_id: str) -> str:
    if not _REQUEST_ID.fullmatch(request_id):
        raise ChatError(
            f"{request_id!r} cannot be a request id: use 1 to 128 letters, digits and . _ : @ - "
            "(starting with a letter or digit)",
            EXIT_REJECTED,
        )
    return request_id


def _transient(err: Exception) -> bool:
    """An error a server restart or a network blip explains: the same call may succeed later."""
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return True
    if not isinstance(err, RPCError):
        return False
    if err.status in (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
    ):
        return True
    message = err.message.lower()
    # A restarting server answers for a moment before its namespaces and shards are loaded.
    if err.status == RPCStatusCode.NOT_FOUND and "namespace" in message:
        return True
    return err.status in (RPCStatusCode.UNKNOWN, RPCStatusCode.INTERNAL) and any(
        word in message for word in ("transport", "connection", "unavailable", "shard")
    )


class Conversations:
    def __init__(self, client: Client, *, patience_s: float | None = None) -> None:
        """``patience_s``: how long a call waits out an unreachable server (default from
        ``AGENT_CLIENT_PATIENCE_S``, else 120 s)."""
        self._client = client
        self.patience_s = patience_from_env() if patience_s is None else patience_s

    async def start(
        self, start: ConversationStart, conversation_id: str | None = None, *, replace: bool = False
    ) -> str:
        """Start a conversation. Ids are never reused (refund keys derive from them) unless
        ``replace``, which the demo uses to show that its refund happens once. A start retried
        after an outage recognises the conversation its own first try created."""
        if not start.customer_id.strip():
            raise ChatError(
                "a conversation acts for one customer: set customer_id from an authenticated identity "
                "(see agent.identity)",
                EXIT_REJECTED,
            )
        conversation_id = conversation_id or new_conversation_id()
        asked_at = datetime.now(UTC)
        tries = 0

        async def start_once() -> None:
            nonlocal tries
            tries += 1
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

        try:
            await self._patiently(conversation_id, start_once, resend_id=None)
        except WorkflowAlreadyStartedError:
            if tries > 1 and await self._started_since(conversation_id, asked_at):
                return conversation_id  # our first try started it before its answer was lost
            raise ChatError(
                f"a conversation with id {conversation_id} exists already; choose another id or leave --id out",
                EXIT_REJECTED,
            ) from None
        return conversation_id

    async def _started_since(self, conversation_id: str, asked_at: datetime) -> bool:
        description = await self._client.get_workflow_handle(conversation_id).describe()
        return description.start_time >= asked_at - _CLOCK_SKEW

    def _handle(self, conversation_id: str) -> WorkflowHandle[SupportAgentWorkflow, ConversationSummary]:
        return self._client.get_workflow_handle_for(SupportAgentWorkflow.run, conversation_id)

    async def send(self, conversation_id: str, text: str, *, message_id: str | None = None) -> AgentReply:
        """The agent's answer to ``text``. Resending with the same ``message_id`` returns the
        first send's answer; the message is processed once."""
        message_id = check_request_id(message_id) if message_id else new_request_id("msg")
        update = SupportAgentWorkflow.send_message
        return await self._update(conversation_id, update, SendMessage(text), f"message/{message_id}", message_id)

    async def decide(
        self,
        conversation_id: str,
        approval_id: str,
        *,
        approve: bool,
        approver: str,
        note: str = "",
        decision_id: str | None = None,
    ) -> ApprovalOutcome:
        decision_id = check_request_id(decision_id) if decision_id else new_request_id("decision")
        decision = ApprovalDecision(approval_id, approve, approver, note)
        update = SupportAgentWorkflow.decide_approval
        return await self._update(conversation_id, update, decision, f"decision/{decision_id}", decision_id)

    async def end(
        self, conversation_id: str, reason: str = "ended by the customer", *, request_id: str | None = None
    ) -> ConversationSummary:
        request_id = check_request_id(request_id) if request_id else new_request_id("end")
        end = EndRequest(reason)
        update = SupportAgentWorkflow.end_conversation
        return await self._update(conversation_id, update, end, f"end/{request_id}", request_id)

    async def approvals(self, conversation_id: str) -> list[Approval]:
        return await self._query(conversation_id, SupportAgentWorkflow.pending_approvals)

    async def status(self, conversation_id: str) -> ConversationStatus:
        return await self._query(conversation_id, SupportAgentWorkflow.status)

    async def transcript(self, conversation_id: str) -> TranscriptView:
        return await self._query(conversation_id, SupportAgentWorkflow.transcript)

    async def _update(self, conversation_id: str, update: Any, arg: Any, update_id: str, request_id: str) -> Any:
        handle = self._handle(conversation_id)
        try:
            return await self._patiently(
                conversation_id, lambda: handle.execute_update(update, arg, id=update_id), resend_id=request_id
            )
        except ChatError as err:
            # Refused because the conversation has ended since: if this very request was answered
            # before (the end request that closed it, say), its recorded answer is the answer.
            if err.exit_code == EXIT_REJECTED:
                answer_type = get_type_hints(update)["return"]
                recorded = await self._recorded_answer(conversation_id, update_id, answer_type)
                if recorded is not None:
                    return recorded
            raise

    async def _recorded_answer(self, conversation_id: str, update_id: str, answer_type: type[T]) -> T | None:
        """The answer the latest run's history recorded for ``update_id``, if any."""
        try:
            async for event in self._client.get_workflow_handle(conversation_id).fetch_history_events():
                if not event.HasField("workflow_execution_update_completed_event_attributes"):
                    continue
                completed = event.workflow_execution_update_completed_event_attributes
                if completed.meta.update_id == update_id and completed.outcome.HasField("success"):
                    [answer] = await self._client.data_converter.decode(
                        completed.outcome.success.payloads, [answer_type]
                    )
                    return answer
        except RPCError:
            return None
        return None

    async def _query(self, conversation_id: str, query: Any) -> Any:
        handle = self._handle(conversation_id)
        return await self._patiently(conversation_id, lambda: handle.query(query), resend_id=None)

    async def _patiently(self, conversation_id: str, call: Callable[[], Awaitable[T]], *, resend_id: str | None) -> T:
        """Run ``call`` (the same request each time), retrying what an outage explains until
        ``patience_s`` runs out; SDK errors become a :class:`ChatError`."""
        deadline = time.monotonic() + self.patience_s
        delay = _FIRST_DELAY_S
        while True:
            try:
                return await call()
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                if _transient(err) and time.monotonic() + delay < deadline:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_DELAY_S)
                    continue
                raise await self._chat_error(err, conversation_id, resend_id) from None
            except WorkflowUpdateFailedError as err:
                message = f"conversation {conversation_id} refused this: {root_message(err)}"
                raise ChatError(message, EXIT_REJECTED) from None
            except WorkflowQueryFailedError as err:
                message = f"conversation {conversation_id} could not answer: {err.message}"
                raise ChatError(message, EXIT_FAILED) from None

    async def _chat_error(self, err: Exception, conversation_id: str, resend_id: str | None) -> ChatError:
        if _transient(err):
            waited = f"{self.patience_s:.0f} s"
            if resend_id is None:
                return ChatError(
                    f"the Temporal server did not answer within {waited} ({_rpc_message(err)}); "
                    "check that it runs (`make status`) and try again",
                    EXIT_UNAVAILABLE,
                )
            return ChatError(
                f"the Temporal server did not answer within {waited} ({_rpc_message(err)}), so request "
                f"{resend_id} may or may not have been accepted; resending it with the same id is safe "
                "(it is never processed twice)",
                EXIT_UNAVAILABLE,
                resend_id=resend_id,
            )
        assert isinstance(err, RPCError)
        if err.status == RPCStatusCode.NOT_FOUND:
            status = await self._closed_status(conversation_id)
            if status is not None:
                return ChatError(
                    f"conversation {conversation_id} has ended ({status.name.lower()}); "
                    "start a new one with `agent chat start`",
                    EXIT_REJECTED,
                )
            return ChatError(
                f"there is no conversation {conversation_id}; start one with `agent chat start`",
                EXIT_UNKNOWN_CONVERSATION,
            )
        return ChatError(f"the Temporal server refused the request: {err.message}", EXIT_FAILED)

    async def _closed_status(self, conversation_id: str) -> WorkflowExecutionStatus | None:
        """None when no conversation has this id (or the server cannot say); else its status."""
        try:
            description = await self._client.get_workflow_handle(conversation_id).describe()
        except RPCError:
            return None
        return description.status


def _rpc_message(err: Exception) -> str:
    return err.message if isinstance(err, RPCError) else str(err)
