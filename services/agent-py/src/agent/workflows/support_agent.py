"""SupportAgentWorkflow: one customer conversation, driven by Updates, durable across crashes.

The run method is a single loop that owns every state change and every call, one thing at a
time, in arrival order: customer messages, approval decisions, the end request (all Updates,
queued by their handlers), and deadlines (approval timeouts, the idle limit, as durable
timers). Handlers only validate, queue and wait for the loop's answer, so no two steps ever
race on the model context or the idempotency step counter.

A message turn is the agent loop: the model (an activity on the ``llm`` queue) picks tools;
tools run through Nexus (retrieval ``search``; business ``get_order``, ``refund``,
``create_ticket``, ``get_ticket``); their results, failures included, go back to the model
until it answers. A refund above the conversation's threshold becomes an *approval* that waits
for ``decide_approval`` until its deadline, after which it is escalated to a ticket.

Every Update is idempotent by its id, which the client chooses and reuses when it resends (a
timeout, a server restart): within a run the server attaches a resend to the first; across
continue-as-new the new run knows the latest answers by update id (carried), so a resend gets
the recorded answer instead of becoming a second message, decision or refund.

Between turns the run continues as new when its history reaches the budget in
:func:`agent.support.policy.continue_as_new_reason`, carrying a compact state (summary,
approvals, step counter, totals) and a blob reference to the full transcript.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar, assert_never

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, NexusOperationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    # Imported here although only the toolbox names them: the converter resolves a result
    # type's annotations through the sandbox's ``sys.modules``, which only holds modules the
    # workflow module imported itself.
    import nexus_contracts.retrieval  # noqa: F401
    from agent.blobs.activities import STORE_TEXT_ACTIVITY, StoreText
    from agent.blobs.types import BlobRef
    from agent.external.types import (
        DISCOVER_TOOLS_ACTIVITY,
        MCP_TASK_QUEUE,
        Discovered,
        DiscoverRequest,
    )
    from agent.llm.types import (
        CHAT_COMPLETION_ACTIVITY,
        NON_RETRYABLE_MODEL_ERRORS,
        ChatMessage,
        ChatRequest,
        ChatResult,
        ModelErrorType,
        ToolCall,
        Usage,
        tool_call,
    )
    from agent.metrics import (
        APPROVED,
        ENDED,
        EXPIRED,
        PENDING_APPROVALS,
        REJECTED,
        record_approval_decided,
        record_approval_requested,
        record_tool_call,
    )
    from agent.queues import LLM_TASK_QUEUE
    from agent.support import replies
    from agent.support.activities import ARCHIVE_TRANSCRIPT_ACTIVITY, ArchiveRequest
    from agent.support.answer_screen import SHIPPED_STAGE, STAGES
    from agent.support.approvals import MAX_NOTE_CHARS, ApprovalBook
    from agent.support.audit import RefusalLog
    from agent.support.cooldown import COOLDOWN_FOLLOWS_PROVIDER, PROVIDER_DOWN, CoolDown
    from agent.support.policy import (
        Guardrail,
        continue_as_new_reason,
        escalation_key,
        format_money,
        message_problem,
        settings_problems,
        step_key,
    )
    from agent.support.prompts import SYSTEM_PROMPT, summary_prompt
    from agent.support.summary import remember_ask, summarize
    from agent.support.toolbox import ApprovalRequest, Toolbox, failure_of, refund_result
    from agent.support.types import (
        ActionRecord,
        AgentReply,
        AnsweredUpdate,
        Approval,
        ApprovalDecision,
        ApprovalOutcome,
        ApprovalStatus,
        CarriedState,
        Citation,
        ConversationStart,
        ConversationStatus,
        ConversationSummary,
        EndRequest,
        SendMessage,
        TranscriptEntry,
        TranscriptView,
    )
    from agent.tools import ESCALATE_TO_HUMAN, REFUND_ORDER, SUPPORT_TOOLS, Tool
    from nexus_contracts.business import CreateTicketRequest, RefundRequest
    from workerkit.deployment import when_versioned

T = TypeVar("T")

BLOB_ACTIVITY_TIMEOUT = timedelta(seconds=30)
MAX_QUEUED_MESSAGES = 5
RECENT_ENTRIES_CARRIED = 4
ACTIONS_CARRIED = 50
ANSWERS_KEPT = 64
"""Answers kept by update id within a run; a resend of an older one is answered by the server
from the run's own update registry or, failing that, refused by the validators as usual."""
ANSWERS_CARRIED = 8
IDENTITY_REQUIRED = "customer-identity-required"
TOKEN_BUDGET_PATCH = "conversation-token-budget"
# Patch: a conversation that names external MCP servers discovers their tools (an activity)
# at the start of each run; runs recorded before never name one, so never reach the marker.
EXTERNAL_TOOLS_PATCH = "external-mcp-tools"
DISCOVERY_TIMEOUT = timedelta(seconds=30)


class Phase:
    IDLE = "idle"
    CALLING_MODEL = "calling_model"
    RUNNING_TOOL = "running_tool"
    COOLING_DOWN = "cooling_down"
    EXECUTING_APPROVAL = "executing_approval"
    ESCALATING = "escalating"
    ARCHIVING = "archiving"
    ENDED = "ended"


# Queued updates, one type per kind; ``key`` is the update id, where the loop leaves the answer
# for the waiting handler.
@dataclass
class _Message:
    key: str
    message: SendMessage


@dataclass
class _Decision:
    key: str
    approval_id: str


@dataclass
class _End:
    key: str
    request: EndRequest


_Queued = _Message | _Decision | _End


@dataclass
class _Turn:
    citations: list[Citation] = field(default_factory=list)
    tools_used: list[str] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=lambda: Usage(0, 0, 0))
    model: str | None = None
    asked: str = ""
    """The customer's message this turn (what a refund without a person must answer to)."""
    refunds: int = 0
    """Refunds made this turn without a person."""


@dataclass
class _ModelFailure:
    kind: str
    """One of the ``agent.support.replies`` kinds (``AgentReply.error``)."""
    detail: str


def _model_error_type(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    if isinstance(cause, TemporalTimeoutError):
        return ModelErrorType.TIMEOUT
    return "unknown"


# Pinned: a conversation finishes on the build that started it, so changing the agent's code
# never needs a patch for conversations already in flight (they can wait days for an approval);
# the old version keeps serving them until they end, then drains (ops/runbooks/rollout.md).
@workflow.defn(versioning_behavior=when_versioned(VersioningBehavior.PINNED))
class SupportAgentWorkflow:
    # Every answer the model writes passes this screen before the customer sees it; the stage
    # of its patch lifecycle (docs/versioning.md) is chosen in agent.support.answer_screen.
    screen_answer = staticmethod(STAGES[SHIPPED_STAGE])

    @workflow.init
    def __init__(self, start: ConversationStart) -> None:
        # State is built here, not in run, so validators and queries work from the first task.
        self._id = workflow.info().workflow_id
        self._customer = start.customer
        self._customer_id = start.customer_id
        self._acting = start.acting
        self._settings = start.settings
        # What outlives a run, in the shape it is handed on in (continue-as-new).
        self._state = start.carried or CarriedState.fresh(workflow.now())
        self._approvals = ApprovalBook(self._state.approvals, self._state.approval_counter)
        self._refusals = RefusalLog(self._state.refusals, self._state.run_index)
        # Update id -> the answer it got (AgentReply, ApprovalOutcome or ConversationSummary).
        self._answered: dict[str, object] = {
            a.update_id: a.reply if a.reply is not None else a.outcome for a in self._state.answered
        }
        self._turns_this_run = 0
        self._queued_ids: set[str] = set()

        self._transcript: list[TranscriptEntry] = []
        self._context: list[ChatMessage] = self._context_from(self._state.recent)
        self._inbox: deque[_Queued] = deque()
        self._phase = Phase.IDLE
        self._detail = ""
        self._cooldown = CoolDown(self._settings.cooldown_s)
        self._tool_failures_in_a_row = 0
        self._ending = False
        self._ended = False
        self._end_reason: str | None = None
        # An unset attribute counts as none pending, so a conversation writes it (and its patch
        # marker) only once it has an approval: nothing in the history of one that never does.
        self._published_pending = 0

    # ---- the loop -------------------------------------------------------------------------

    @workflow.run
    async def run(self, start: ConversationStart) -> ConversationSummary:
        problems = settings_problems(self._settings)
        # Runs recorded before identities were required replay without one (no patch marker).
        if not self._customer_id.strip() and workflow.patched(IDENTITY_REQUIRED):
            problems.append("no customer_id: a conversation acts for an authenticated customer (see agent.identity)")
        if problems:
            raise ApplicationError(
                "invalid conversation settings: " + "; ".join(problems), type="InvalidSettings", non_retryable=True
            )
        self._tools = Toolbox(self._settings, self._customer_id or None, self._committed_cents)
        self._offered = SUPPORT_TOOLS
        if self._settings.mcp_servers and workflow.patched(EXTERNAL_TOOLS_PATCH):
            await self._discover_external_tools()
        while True:
            self._publish_pending()
            await self._wait_for_work()
            await self._escalate_overdue()
            summary = await self._work_off_inbox()
            if summary is None and self._idle_expired():
                self._ending = True
                summary = await self._finish(f"no message for {self._settings.max_idle_s:.0f} s")
            if summary is not None:
                break
            reason = continue_as_new_reason(
                self._settings,
                turns_this_run=self._turns_this_run,
                history_length=workflow.info().get_current_history_length(),
                history_bytes=workflow.info().get_current_history_size(),
                server_suggests=workflow.info().is_continue_as_new_suggested(),
            )
            if reason and await self._no_update_in_flight():
                await self._continue_as_new(reason)
        # Let the handler of the end request (if any) return its answer before the run closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return summary

    async def _discover_external_tools(self) -> None:
        """Offer the named MCP servers' tools beside the agent's own. The list is the activity's
        result, recorded: a replay (and the rest of this run) sees the same tools whatever the
        servers list now. A server that cannot be had leaves its tools out, nothing more."""
        try:
            found = await workflow.execute_activity(
                DISCOVER_TOOLS_ACTIVITY,
                DiscoverRequest(list(self._settings.mcp_servers)),
                result_type=Discovered,
                task_queue=MCP_TASK_QUEUE,
                schedule_to_close_timeout=DISCOVERY_TIMEOUT,
                summary="discover external MCP tools",
            )
        except ActivityError as err:
            workflow.logger.warning("external MCP tools not offered this run: %s", err.cause or err)
            return
        for server, why in found.unavailable.items():
            workflow.logger.warning("MCP server %s offers no tools this run: %s", server, why)
        self._tools.external = {t.qualified: t for t in found.tools}
        self._offered = SUPPORT_TOOLS + [t.as_tool().definition for t in self._tools.external.values()]

    async def _work_off_inbox(self) -> ConversationSummary | None:
        """Handle queued updates in arrival order; the summary once the conversation has ended."""
        while self._inbox:
            item = self._inbox.popleft()
            result = await self._handle(item)
            self._answer_kept(item.key, result)
            if isinstance(result, ConversationSummary):
                return result
        return None

    async def _handle(self, item: _Queued) -> object:
        match item:
            case _Message():
                return await self._answer(item.message.text)
            case _Decision():
                return await self._carry_out(self._approvals[item.approval_id])
            case _End():
                return await self._finish(item.request.reason)
        assert_never(item)

    async def _wait_for_work(self) -> None:
        deadlines = [a.deadline for a in self._approvals.pending()]
        if (idle := self._idle_deadline()) is not None:
            deadlines.append(idle)
        if not deadlines:
            await workflow.wait_condition(lambda: bool(self._inbox))
            return
        timeout = (min(deadlines) - workflow.now()).total_seconds()
        if timeout <= 0 or self._inbox:
            return
        try:
            await workflow.wait_condition(lambda: bool(self._inbox), timeout=timeout, timeout_summary="next deadline")
        except TimeoutError:
            pass

    def _publish_pending(self) -> None:
        """Keep the AgentPendingApprovals search attribute equal to the pending approvals, so
        the worker's ``agent_approvals_waiting`` gauge can count them from visibility."""
        pending = len(self._approvals.pending())
        if pending == self._published_pending or not workflow.patched("pending-approvals-search-attribute"):
            return
        workflow.upsert_search_attributes([PENDING_APPROVALS.value_set(pending)])
        self._published_pending = pending

    def _idle_expired(self) -> bool:
        deadline = self._idle_deadline()
        return deadline is not None and workflow.now() >= deadline

    def _idle_deadline(self) -> datetime | None:
        # Pending approvals have their own deadlines; the conversation is not idle while one waits.
        if self._approvals.pending() or self._ending:
            return None
        return self._state.last_activity_at + timedelta(seconds=self._settings.max_idle_s)

    async def _no_update_in_flight(self) -> bool:
        """Wait until every handler has returned its answer; False if new work arrived meanwhile."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or bool(self._inbox))
        return not self._inbox

    # ---- a customer message -----------------------------------------------------------------

    async def _answer(self, text: str) -> AgentReply:
        self._state.turns += 1
        self._turns_this_run += 1
        self._state.last_activity_at = workflow.now()
        self._state.asked = remember_ask(self._state.asked, text)
        entry = await self._record("user", text)
        mark = len(self._context)
        self._context.append(self._message("user", text, entry.ref))
        turn = _Turn(asked=text)
        answer, answer_ref, failure = await self._agent_loop(turn)
        if failure is not None:
            # Take the failed turn out of what the model sees next, so one bad request does
            # not poison the rest of the conversation; what it did is in actions and summary.
            del self._context[mark:]
            if failure.kind == replies.CONTEXT_LENGTH:
                self._context.clear()
                self._state.summary = summarize(
                    self._state.turns, self._state.asked, self._state.actions, self._approvals.all()
                )
            if failure.kind == replies.BUDGET_SPENT:
                answer = await self._hand_over(failure.detail)
        await self._record("agent", answer, citations=turn.citations, model=turn.model, ref=answer_ref)
        self._phase, self._detail = Phase.IDLE, ""
        return AgentReply(
            text=answer,
            turn=self._state.turns,
            citations=turn.citations,
            tools_used=turn.tools_used,
            approvals_requested=turn.approvals,
            notices=self._take_notices(),
            error=failure.kind if failure else None,
            model=turn.model,
            usage=turn.usage,
        )

    async def _agent_loop(self, turn: _Turn) -> tuple[str, BlobRef | None, _ModelFailure | None]:
        """(answer, its blob reference if large, failure) of one customer message."""
        rounds = self._settings.max_tool_rounds
        for round_no in range(rounds):
            # The last round may not call tools, so every message gets an answer.
            last = round_no == rounds - 1
            result = await self._call_model(turn, tool_choice="none" if last else "auto")
            if isinstance(result, _ModelFailure):
                return replies.apology(result.kind), None, result
            if not result.tool_calls:
                answer = self.screen_answer(result.content or "")
                ref = await self._store_if_large(answer)
                self._context.append(self._message("assistant", answer, ref))
                return answer, ref, None
            tool_calls = [tool_call(c.id, c.name, c.arguments) for c in result.tool_calls]
            calls_ref = await self._store_if_large(json.dumps(tool_calls, ensure_ascii=False), "application/json")
            self._context.append(
                ChatMessage(
                    role="assistant",
                    content=result.content,
                    tool_calls=None if calls_ref else tool_calls,
                    tool_calls_ref=calls_ref,
                )
            )
            for call in result.tool_calls:
                await self._use_tool(call, turn)
        return replies.TOO_MANY_ROUNDS, None, None

    async def _use_tool(self, call: ToolCall, turn: _Turn) -> None:
        self._state.step += 1
        key = step_key(self._id, self._state.step)
        self._phase, self._detail = Phase.RUNNING_TOOL, call.name
        outcome = await self._tools.run(call, key, turn.asked, turn.refunds)
        record_tool_call(call.name, outcome.failed)
        if outcome.approval is not None:
            outcome.result = self._open_approval(outcome.approval, key, turn)
        self._refusals.tool_refused(call.name, outcome.result, outcome.guardrail, self._state.turns, key)
        now = workflow.now()
        if outcome.refund is not None:
            r = outcome.refund
            self._refunded(r.amount_cents, r.currency)
            turn.refunds += 1
            summary = f"refund {r.refund_id} of {format_money(r.amount_cents, r.currency)} on {r.order_id}"
            self._state.actions.append(ActionRecord("refund", r.refund_id, summary, key, now))
        if outcome.ticket is not None:
            t = outcome.ticket
            self._state.actions.append(
                ActionRecord("ticket", t.ticket_id, f"ticket {t.ticket_id}: {t.subject}", key, now)
            )
        turn.tools_used.append(call.name)
        turn.citations.extend(c for c in outcome.citations if c not in turn.citations)
        if outcome.failed:
            self._tool_failures_in_a_row += 1
            if self._tool_failures_in_a_row >= self._settings.tool_failure_limit:
                # Whatever keeps failing (a flapping service, a confused model) gets a pause
                # before the next model call, on a durable timer.
                self._cool_down(f"{self._tool_failures_in_a_row} tool failures in a row")
                self._tool_failures_in_a_row = 0
        else:
            self._tool_failures_in_a_row = 0
        content = json.dumps(outcome.result, ensure_ascii=False)
        ref = await self._store_if_large(content)
        self._context.append(
            ChatMessage(role="tool", tool_call_id=call.id, content=None if ref else content, content_ref=ref)
        )

    def _open_approval(self, request: ApprovalRequest, key: str, turn: _Turn) -> dict[str, object]:
        approval = self._approvals.open(request, key, workflow.now(), self._settings.approval_timeout_s)
        turn.approvals.append(approval.approval_id)
        record_approval_requested()
        return replies.approval_pending(approval, self._settings.approval_threshold_cents)

    # ---- the model ----------------------------------------------------------------------------

    async def _call_model(self, turn: _Turn, tool_choice: str) -> ChatResult | _ModelFailure:
        messages = [ChatMessage(role="system", content=SYSTEM_PROMPT)]
        if self._state.summary:
            messages.append(ChatMessage(role="system", content=summary_prompt(self._state.summary)))
        request = ChatRequest(
            messages=messages + self._context,
            tools=self._offered,
            model=self._settings.model,
            max_tokens=self._settings.max_answer_tokens,
            tool_choice=tool_choice,
        )
        s = self._settings
        if self._state.usage.total_tokens >= s.max_conversation_tokens and workflow.patched(TOKEN_BUDGET_PATCH):
            spent = f"{self._state.usage.total_tokens} model tokens spent, the budget is {s.max_conversation_tokens}"
            self._refusals.record(Guardrail.TOKEN_BUDGET, "model", spent, self._state.turns)
            return _ModelFailure(replies.BUDGET_SPENT, spent)
        # Two rounds: the activity's own retries (backoff, Retry-After) first; if they run out
        # on a retryable error, one durable cool-down and one more round.
        for round_no in (1, 2):
            if self._cooldown.remaining() > timedelta(0):
                self._phase = Phase.COOLING_DOWN
            await self._cooldown.sit_out()
            self._phase, self._detail = Phase.CALLING_MODEL, f"turn {self._state.turns}"
            self._state.model_call_seq += 1
            try:
                result = await workflow.execute_activity(
                    CHAT_COMPLETION_ACTIVITY,
                    request,
                    activity_id=f"llm-{self._state.model_call_seq}",
                    task_queue=LLM_TASK_QUEUE,
                    start_to_close_timeout=timedelta(seconds=s.model_timeout_s),
                    heartbeat_timeout=timedelta(seconds=s.model_heartbeat_s),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=1),
                        backoff_coefficient=2.0,
                        maximum_interval=timedelta(seconds=30),
                        maximum_attempts=s.model_max_attempts,
                        non_retryable_error_types=NON_RETRYABLE_MODEL_ERRORS,
                    ),
                    result_type=ChatResult,
                    summary=f"model call, turn {self._state.turns}",
                )
            except ActivityError as err:
                kind = _model_error_type(err)
                detail = str(err.cause or err)
                if kind == ModelErrorType.CONTEXT_LENGTH:
                    return _ModelFailure(replies.CONTEXT_LENGTH, detail)
                if kind in NON_RETRYABLE_MODEL_ERRORS:
                    return _ModelFailure(replies.MODEL_REJECTED, detail)
                if round_no == 2:
                    return _ModelFailure(replies.MODEL_UNAVAILABLE, detail)
                cause = err.cause
                asked = cause.next_retry_delay if isinstance(cause, ApplicationError) else None
                self._cool_down(f"the model kept failing ({kind})", probe=kind in PROVIDER_DOWN, delay=asked)
                continue
            self._state.usage.add(result.model, result.usage)
            turn.usage = Usage(
                turn.usage.prompt_tokens + result.usage.prompt_tokens,
                turn.usage.completion_tokens + result.usage.completion_tokens,
                turn.usage.total_tokens + result.usage.total_tokens,
            )
            turn.model = result.model
            if result.attempt >= s.slow_down_after_attempts and not workflow.patched(COOLDOWN_FOLLOWS_PROVIDER):
                # Runs recorded before the patch paused after a burst even with the provider back;
                # now the activity's retries honour Retry-After and an answer means it is back.
                self._cool_down(f"the model needed {result.attempt} attempts")
            return result
        raise AssertionError("unreachable")

    def _cool_down(self, why: str, *, probe: bool = False, delay: timedelta | None = None) -> None:
        self._cooldown.start(why, probe=probe, delay=delay)
        self._detail = why

    def _committed_cents(self, currency: str) -> int:
        """Refunds made, or waiting for or under a decision, in ``currency``: what the cap counts."""
        return self._state.refunded_cents.get(currency, 0) + self._approvals.waiting_cents(currency)

    def _refunded(self, cents: int, currency: str) -> None:
        self._state.refunded_cents[currency] = self._state.refunded_cents.get(currency, 0) + cents

    async def _hand_over(self, why: str) -> str:
        """The budget is spent: a person takes over (one ticket per conversation), no model call."""
        key = escalation_key(self._id, "budget")
        try:
            ticket = await self._tools.open_ticket(
                CreateTicketRequest(
                    subject=f"Conversation {self._id} reached its model budget",
                    idempotency_key=key,
                    body=f"{why}. The agent stopped calling the model; please take the conversation over.",
                    priority="high",
                )
            )
        except NexusOperationError as err:
            return replies.not_handed_over(failure_of(err)[1])
        if all(a.idempotency_key != key for a in self._state.actions):
            self._state.actions.append(
                ActionRecord(
                    "ticket", ticket.ticket_id, f"ticket {ticket.ticket_id}: budget spent", key, workflow.now()
                )
            )
        return replies.handed_over(ticket.ticket_id)

    # ---- approvals ----------------------------------------------------------------------------

    async def _carry_out(self, approval: Approval) -> ApprovalOutcome:
        refund_id = None
        if approval.status == ApprovalStatus.APPROVED:
            self._phase, self._detail = Phase.EXECUTING_APPROVAL, approval.approval_id
            try:
                # The key was fixed when the approval was opened: however often this runs
                # (retries, replays, a restarted worker), the business service refunds once.
                refund = await self._tools.refund(
                    RefundRequest(approval.order_id, approval.amount_cents, approval.reason, approval.idempotency_key)
                )
            except NexusOperationError as err:
                kind, message = failure_of(err)
                approval.status, approval.result = ApprovalStatus.FAILED, message
                result: dict[str, object] = {"error": {"type": kind, "message": message}}
            else:
                approval.status, approval.result = ApprovalStatus.EXECUTED, refund.refund_id
                refund_id = refund.refund_id
                self._refunded(refund.amount_cents, refund.currency)
                self._state.actions.append(
                    ActionRecord(
                        "refund",
                        refund.refund_id,
                        f"refund {refund.refund_id} of {format_money(refund.amount_cents, refund.currency)} "
                        f"on {refund.order_id} (approved by {approval.decided_by})",
                        approval.idempotency_key,
                        workflow.now(),
                    )
                )
                result = refund_result(refund, approval_id=approval.approval_id, approved_by=approval.decided_by)
            fallback = replies.approved(approval, refund_id)
        else:
            result = {
                "status": "rejected",
                "approval_id": approval.approval_id,
                "nothing_paid": True,
                "rejected_by": approval.decided_by,
                "note": approval.note,
            }
            fallback = replies.rejected(approval)
        args = {"order_id": approval.order_id, "amount_cents": approval.amount_cents, "reason": approval.reason}
        message = await self._announce(approval, REFUND_ORDER, args, result, fallback)
        return ApprovalOutcome(approval.approval_id, approval.status, message, refund_id=refund_id)

    async def _escalate_overdue(self) -> None:
        for approval in self._approvals.overdue(workflow.now()):
            await self._escalate(approval, f"no decision by {approval.deadline:%Y-%m-%d %H:%M:%S} UTC")

    async def _escalate(self, approval: Approval, why: str) -> None:
        """A person did not decide in time (or the conversation ended): hand it to a ticket
        instead of acting, and tell the customer."""
        self._phase, self._detail = Phase.ESCALATING, approval.approval_id
        approval.status, approval.decided_by = ApprovalStatus.ESCALATED, "escalation"
        approval.decided_at = workflow.now()
        expired = approval.decided_at >= approval.deadline
        record_approval_decided(EXPIRED if expired else ENDED, approval.decided_at - approval.requested_at)
        try:
            ticket = await self._tools.open_ticket(
                CreateTicketRequest(
                    subject=f"Refund approval {approval.approval_id} for {approval.order_id} needs a decision",
                    idempotency_key=escalation_key(self._id, approval.approval_id),
                    body=f"Conversation {self._id}: {approval.summary}. Escalated because {why}. "
                    f"Customer's reason: {approval.reason}",
                    order_id=approval.order_id,
                    priority="high",
                )
            )
        except NexusOperationError as err:
            kind, message = failure_of(err)
            approval.result = f"no ticket could be opened: {message}"
            result: dict[str, object] = {"error": {"type": kind, "message": message}}
            fallback = replies.not_escalated(approval)
        else:
            approval.result = ticket.ticket_id
            self._state.actions.append(
                ActionRecord(
                    "ticket",
                    ticket.ticket_id,
                    f"ticket {ticket.ticket_id} escalating {approval.approval_id}",
                    escalation_key(self._id, approval.approval_id),
                    workflow.now(),
                )
            )
            result = {
                "status": "escalated",
                "ticket_id": ticket.ticket_id,
                "approval_id": approval.approval_id,
                "why": why,
                "nothing_paid": True,
            }
            fallback = replies.escalated(approval, why, ticket.ticket_id)
        args: dict[str, object] = {"reason": f"approval {approval.approval_id}: {why}", "order_id": approval.order_id}
        await self._announce(approval, ESCALATE_TO_HUMAN, args, result, fallback)

    async def _announce(
        self, approval: Approval, tool: Tool, args: dict[str, object], result: dict[str, object], fallback: str
    ) -> str:
        """Tell the customer what became of an approval, in the model's words when it can.

        The outcome reaches the model as the result of a tool call made on the approval's
        behalf, the shape every provider (and the simulator) answers from.
        """
        call_id = f"{approval.approval_id}-{approval.status}"
        self._context.append(
            ChatMessage(
                role="assistant",
                tool_calls=[tool_call(call_id, tool.name, json.dumps(args))],
            )
        )
        content = json.dumps(result, ensure_ascii=False)
        ref = await self._store_if_large(content)
        self._context.append(
            ChatMessage(role="tool", tool_call_id=call_id, content=None if ref else content, content_ref=ref)
        )
        turn = _Turn()
        answer = await self._call_model(turn, tool_choice="none")
        text = self.screen_answer(answer.content) if isinstance(answer, ChatResult) and answer.content else fallback
        self._context.append(ChatMessage(role="assistant", content=text))
        await self._record("agent", text, model=turn.model)
        self._state.notices.append(text)
        self._state.last_activity_at = workflow.now()
        self._phase, self._detail = Phase.IDLE, ""
        return text

    # ---- end and continue-as-new --------------------------------------------------------------

    async def _finish(self, reason: str) -> ConversationSummary:
        for approval in self._approvals.pending():
            await self._escalate(approval, "the conversation ended before a decision")
        await self._archive_transcript()
        self._ended, self._end_reason = True, reason
        self._phase, self._detail = Phase.ENDED, reason
        return ConversationSummary(
            conversation_id=self._id,
            turns=self._state.turns,
            end_reason=reason,
            usage=self._state.usage,
            actions=self._state.actions,
            approvals=self._approvals.all(),
            transcript=self._state.archive,
            refusals=self._state.refusals,
        )

    async def _continue_as_new(self, reason: str) -> None:
        workflow.logger.info("continuing as new after %s", reason)
        recent = (self._state.recent + self._transcript)[-RECENT_ENTRIES_CARRIED:]
        await self._archive_transcript()
        state = self._state
        carried = replace(
            state,
            run_index=state.run_index + 1,
            approval_counter=self._approvals.counter,
            summary=summarize(state.turns, state.asked, state.actions, self._approvals.all()),
            recent=recent,
            approvals=self._approvals.to_carry(),
            actions=state.actions[-ACTIONS_CARRIED:],
            answered=self._answers_to_carry(),
        )
        workflow.continue_as_new(
            ConversationStart(
                customer=self._customer,
                settings=self._settings,
                carried=carried,
                customer_id=self._customer_id,
                acting=self._acting,
            )
        )

    async def _archive_transcript(self) -> None:
        if not self._transcript and self._state.archive is not None:
            return
        self._phase = Phase.ARCHIVING
        # A local activity: its input (the transcript) is not written to history.
        self._state.archive = await workflow.execute_local_activity(
            ARCHIVE_TRANSCRIPT_ACTIVITY,
            ArchiveRequest(
                self._id, self._state.run_index, self._state.summary, self._transcript, previous=self._state.archive
            ),
            start_to_close_timeout=BLOB_ACTIVITY_TIMEOUT,
            result_type=BlobRef,
        )
        self._state.archived_entries += len(self._transcript)
        self._transcript = []

    # ---- transcript and large texts -----------------------------------------------------------

    async def _store_if_large(self, text: str, media_type: str = "text/plain; charset=utf-8") -> BlobRef | None:
        if len(text.encode("utf-8")) <= self._settings.inline_text_limit_bytes:
            return None
        # A local activity: the text is not copied into history again, only the reference is.
        return await workflow.execute_local_activity(
            STORE_TEXT_ACTIVITY,
            StoreText(text, media_type),
            start_to_close_timeout=BLOB_ACTIVITY_TIMEOUT,
            result_type=BlobRef,
        )

    async def _record(
        self,
        role: str,
        text: str,
        *,
        citations: list[Citation] | None = None,
        model: str | None = None,
        ref: BlobRef | None = None,
    ) -> TranscriptEntry:
        ref = ref or await self._store_if_large(text)
        self._state.transcript_seq += 1
        entry = TranscriptEntry(
            seq=self._state.transcript_seq,
            role=role,
            text=ref.preview if ref else text,
            at=workflow.now(),
            turn=self._state.turns,
            ref=ref,
            citations=list(citations or []),
            model=model,
        )
        self._transcript.append(entry)
        return entry

    @staticmethod
    def _message(role: str, text: str, ref: BlobRef | None) -> ChatMessage:
        return ChatMessage(role=role, content=None if ref else text, content_ref=ref)

    @classmethod
    def _context_from(cls, recent: list[TranscriptEntry]) -> list[ChatMessage]:
        """A new run's model context: the last exchanges, as plain text (their tool calls are
        summarised, not replayed)."""
        roles = {"user": "user", "agent": "assistant"}
        return [cls._message(roles[e.role], e.text, e.ref) for e in recent if e.role in roles]

    def _take_notices(self) -> list[str]:
        notices, self._state.notices = self._state.notices, []
        return notices

    # ---- updates ------------------------------------------------------------------------------

    @staticmethod
    def _update_id() -> str:
        info = workflow.current_update_info()
        assert info is not None
        return info.id

    def _seen(self, update_id: str) -> bool:
        """This update id was answered or is queued: a resend, not new work."""
        return update_id in self._answered or update_id in self._queued_ids

    async def _queue_and_wait(self, item: _Queued, answer_type: type[T]) -> T:
        update_id = item.key
        if not self._seen(update_id):
            self._queued_ids.add(update_id)
            self._inbox.append(item)
        await workflow.wait_condition(lambda: update_id in self._answered)
        answer = self._answered[update_id]
        if not isinstance(answer, answer_type):
            raise ApplicationError(
                f"update id {update_id} was used before for another kind of request; choose a new id",
                type="UpdateIdReused",
                non_retryable=True,
            )
        return answer

    def _answer_kept(self, update_id: str, answer: object) -> None:
        self._queued_ids.discard(update_id)
        self._answered[update_id] = answer
        while len(self._answered) > ANSWERS_KEPT:
            del self._answered[next(iter(self._answered))]

    def _answers_to_carry(self) -> list[AnsweredUpdate]:
        carried = []
        for update_id, answer in list(self._answered.items())[-ANSWERS_CARRIED:]:
            if isinstance(answer, AgentReply):
                carried.append(AnsweredUpdate(update_id, reply=answer))
            elif isinstance(answer, ApprovalOutcome):
                carried.append(AnsweredUpdate(update_id, outcome=answer))
        return carried

    @workflow.update
    async def send_message(self, message: SendMessage) -> AgentReply:
        """Returns when the agent has answered (the answer may say an approval is pending)."""
        return await self._queue_and_wait(_Message(self._update_id(), message), AgentReply)

    @send_message.validator
    def _validate_message(self, message: SendMessage) -> None:
        if self._seen(self._update_id()):
            return  # a resend: it gets the first one's answer
        if self._ending:
            raise ValueError(f"conversation {self._id} has ended; start a new one")
        problem = message_problem(message.text, self._settings.max_message_bytes)
        if problem:
            raise ValueError(problem)
        if sum(1 for q in self._inbox if isinstance(q, _Message)) >= MAX_QUEUED_MESSAGES:
            raise ValueError("the agent is still answering earlier messages; wait for its answer and send again")

    @workflow.update
    async def decide_approval(self, decision: ApprovalDecision) -> ApprovalOutcome:
        """Approve or reject a pending approval; returns once the refund ran (or the rejection
        was told to the customer)."""
        if self._seen(self._update_id()):
            return await self._queue_and_wait(_Decision(self._update_id(), decision.approval_id), ApprovalOutcome)
        # Checked again here: two decisions validated in one workflow task both passed the
        # validator before either handler ran.
        if problem := self._decision_problem(decision):
            raise ApplicationError(problem, type="ApprovalNotPending", non_retryable=True)
        approval = self._approvals[decision.approval_id]
        self._approvals.decide(approval, decision, workflow.now())
        assert approval.decided_at is not None
        record_approval_decided(APPROVED if decision.approve else REJECTED, approval.decided_at - approval.requested_at)
        return await self._queue_and_wait(_Decision(self._update_id(), decision.approval_id), ApprovalOutcome)

    @decide_approval.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        if self._seen(self._update_id()):
            return
        if problem := self._decision_problem(decision):
            raise ValueError(problem)

    def _decision_problem(self, decision: ApprovalDecision) -> str | None:
        return self._approvals.problem(decision, conversation_id=self._id, now=workflow.now(), ending=self._ending)

    @workflow.update
    async def end_conversation(self, request: EndRequest) -> ConversationSummary:
        """Ends the conversation: pending approvals are escalated, the transcript archived."""
        if not self._seen(self._update_id()):
            self._ending = True
        return await self._queue_and_wait(_End(self._update_id(), request), ConversationSummary)

    @end_conversation.validator
    def _validate_end(self, request: EndRequest) -> None:
        if self._seen(self._update_id()):
            return
        if self._ending:
            raise ValueError(f"conversation {self._id} has already ended")
        if not isinstance(request.reason, str) or len(request.reason) > MAX_NOTE_CHARS:
            raise ValueError(f"reason must be text of at most {MAX_NOTE_CHARS} characters")

    # ---- queries ------------------------------------------------------------------------------

    @workflow.query
    def transcript(self) -> TranscriptView:
        return TranscriptView(
            summary=self._state.summary,
            archive=self._state.archive,
            archived_entries=self._state.archived_entries,
            entries=self._state.recent + self._transcript,
        )

    @workflow.query
    def current_step(self) -> str:
        phase, detail = self._phase, self._detail
        if phase == Phase.IDLE:
            pending = self._approvals.pending()
            if pending:
                phase, detail = "waiting_for_approval", ", ".join(a.approval_id for a in pending)
            else:
                phase, detail = "waiting_for_message", ""
        return f"{phase}: {detail}" if detail else phase

    @workflow.query
    def pending_approvals(self) -> list[Approval]:
        return self._approvals.pending()

    @workflow.query
    def status(self) -> ConversationStatus:
        return ConversationStatus(
            conversation_id=self._id,
            phase=self.current_step(),
            detail=self._detail,
            turns=self._state.turns,
            step=self._state.step,
            run_index=self._state.run_index,
            history_length=workflow.info().get_current_history_length(),
            pending_approvals=self._approvals.pending(),
            usage=self._state.usage,
            actions=self._state.actions,
            ended=self._ended,
            end_reason=self._end_reason,
            last_activity_at=self._state.last_activity_at,
            cooldown_until=self._cooldown.until,
            summary=self._state.summary,
            customer_id=self._customer_id,
            acting=self._acting,
            refusals=self._state.refusals,
        )
