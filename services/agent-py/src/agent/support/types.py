"""Inputs, outputs and state of SupportAgentWorkflow (workflow-safe: plain dataclasses).

These are wire types too: clients (the CLI, an approval page, tests) send and read them, and
they sit in histories that a later worker version replays. Add fields with defaults; never
rename or remove one without a versioning plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agent.blobs.types import BlobRef
from agent.llm.types import Usage
from nexus_contracts.business import DEFAULT_ENDPOINT as BUSINESS_ENDPOINT
from nexus_contracts.retrieval import DEFAULT_ENDPOINT as RETRIEVAL_ENDPOINT

DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024
MESSAGE_BYTES_CEILING = 64 * 1024
"""No setting may raise the message limit above this: a message is update input, so it is
stored in history as it is."""


@dataclass
class ConversationSettings:
    """Per-conversation policy, fixed at start (and carried over continue-as-new)."""

    approval_threshold_cents: int = 10_000
    """Refunds above this amount (in the order's currency) wait for a person."""
    approval_timeout_s: float = 24 * 3600
    """How long an approval waits before the conversation escalates it to a ticket."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_idle_s: float = 24 * 3600
    """With no message and no pending approval for this long, the conversation ends."""
    inline_text_limit_bytes: int = 2048
    """Texts above this size (tool results, long messages) go to the blob store; the model
    calls' history then holds a reference."""
    max_tool_rounds: int = 4
    """Model calls per message; the last one may not call tools, so every message gets an answer."""
    tool_failure_limit: int = 3
    """After this many tool failures in a row, pause (``cooldown_s``) before the next model call."""
    cooldown_s: float = 30.0
    slow_down_after_attempts: int = 3
    """Read only when replaying runs recorded before cool-downs followed the provider: a model call
    that needed this many attempts then paused the next one, even with the provider back."""
    model: str | None = None
    model_timeout_s: float = 60.0
    """Start-to-close timeout of one model call attempt."""
    model_heartbeat_s: float = 10.0
    """Heartbeat timeout of a model call: a worker that dies mid-call is noticed after this long,
    and the call is retried on another worker (instead of after ``model_timeout_s``)."""
    model_max_attempts: int = 5
    max_answer_tokens: int = 1024
    max_turns_per_run: int = 25
    max_history_events: int = 1000
    """Continue-as-new budget: see ``agent.support.policy.should_continue_as_new``."""
    max_history_bytes: int = 1024 * 1024
    max_refund_cents_per_conversation: int = 50_000
    """Refunds one conversation may make or ask approval for, in all, per currency (500.00):
    held in code whatever the model asks."""
    max_conversation_tokens: int = 200_000
    """Model tokens one conversation may spend; past it the agent hands the conversation to a
    person (a ticket) instead of calling the model again."""
    retrieval_endpoint: str = RETRIEVAL_ENDPOINT
    business_endpoint: str = BUSINESS_ENDPOINT
    collection: str = "kb"
    search_top_k: int = 3
    mcp_servers: list[str] = field(default_factory=list)
    """External MCP servers whose tools the model is offered beside its own, by the names the
    worker's ``AGENT_MCP_SERVERS_FILE`` gives them (:mod:`agent.external`)."""
    mcp_tool_timeout_s: float = 30.0
    """Start-to-close timeout of one attempt of an external tool call."""
    mcp_tool_max_attempts: int = 3


@dataclass
class SendMessage:
    text: str


@dataclass
class Citation:
    doc_id: str
    title: str


@dataclass
class AgentReply:
    text: str
    turn: int
    citations: list[Citation] = field(default_factory=list)
    tools_used: list[str] = field(default_factory=list)
    approvals_requested: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    """What the agent said on its own since the last reply (approval outcomes, escalations)."""
    error: str | None = None
    """Set when the agent could not answer normally: ``model_rejected``, ``context_length``,
    ``model_unavailable``; the conversation goes on."""
    model: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(0, 0, 0))


@dataclass
class ApprovalDecision:
    approval_id: str
    approve: bool
    approver: str
    note: str = ""


class ApprovalStatus:
    PENDING = "pending"
    APPROVED = "approved"
    """Decided; the refund is being executed."""
    REJECTED = "rejected"
    EXECUTED = "executed"
    FAILED = "failed"
    """Approved, but the business service refused the refund (the message says why)."""
    ESCALATED = "escalated"
    """Deadline passed, or the conversation ended, before a decision: a ticket was opened."""


@dataclass
class Approval:
    approval_id: str
    action: str
    order_id: str
    amount_cents: int
    currency: str
    reason: str
    idempotency_key: str
    summary: str
    requested_at: datetime
    deadline: datetime
    status: str = ApprovalStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str = ""
    result: str | None = None
    """Refund id, ticket id, or the refusal message, once known."""


@dataclass
class ApprovalOutcome:
    approval_id: str
    status: str
    message: str
    """What the agent told the customer."""
    refund_id: str | None = None
    ticket_id: str | None = None


@dataclass
class TranscriptEntry:
    seq: int
    role: str
    """``user``, ``agent`` or ``event`` (something that happened without a message)."""
    text: str
    """The whole text, or a preview when ``ref`` holds it."""
    at: datetime
    turn: int
    ref: BlobRef | None = None
    citations: list[Citation] = field(default_factory=list)
    model: str | None = None


@dataclass
class UsageTotals:
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    calls_by_model: dict[str, int] = field(default_factory=dict)

    def add(self, model: str, usage: Usage) -> None:
        self.model_calls += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.total_tokens += usage.total_tokens
        self.calls_by_model[model] = self.calls_by_model.get(model, 0) + 1


@dataclass
class ActionRecord:
    """An effect the conversation had in another system, with the key that made it happen once."""

    kind: str
    """``refund`` or ``ticket``."""
    ref_id: str
    summary: str
    idempotency_key: str
    at: datetime


@dataclass
class RefusalRecord:
    """One request of the model that a guardrail refused (``agent.support.audit``)."""

    rule: str
    """The rule (``agent.support.policy.Guardrail``), as counted in ``agent_guardrail_refusals_total``."""
    tool: str
    """The tool the model called (as it named it), or ``model`` for a model call refused by the budget."""
    detail: str
    """What the model was told, or why the request waits for a person."""
    at: datetime
    turn: int
    run_index: int
    idempotency_key: str | None = None
    """The step's key, the same the business service saw if the request reached it."""
    approval_id: str | None = None
    """The approval the refused request became, for a refund that waits for a person instead."""


@dataclass
class RefusalAudit:
    """Every guardrail refusal of a conversation: the newest records, and totals by rule that
    count every refusal, also those whose records were dropped past the bound."""

    records: list[RefusalRecord] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)


@dataclass
class AnsweredUpdate:
    """The answer to one customer message or approval decision, by the update id the client chose,
    carried over continue-as-new so a resend that reaches the next run gets the same answer."""

    update_id: str
    reply: AgentReply | None = None
    outcome: ApprovalOutcome | None = None


@dataclass
class CarriedState:
    """What one run hands the next at continue-as-new: small, whatever the conversation's length."""

    run_index: int
    turns: int
    step: int
    """Idempotency step counter: keys stay unique across runs."""
    approval_counter: int
    transcript_seq: int
    summary: str
    archive: BlobRef | None
    """The transcript so far (every earlier run, chained), in the blob store."""
    archived_entries: int
    recent: list[TranscriptEntry]
    asked: list[str]
    approvals: list[Approval]
    actions: list[ActionRecord]
    usage: UsageTotals
    notices: list[str]
    last_activity_at: datetime
    started_at: datetime
    model_call_seq: int = 0
    """Model calls scheduled so far: their activity ids (``llm-<n>``) stay unique across runs,
    so ``<workflow id>/<activity id>`` names one paid call for the provider's logs and ledgers."""
    answered: list[AnsweredUpdate] = field(default_factory=list)
    """The latest answers by update id (see :class:`AnsweredUpdate`)."""
    refunded_cents: dict[str, int] = field(default_factory=dict)
    """Refunds made so far, by currency (the conversation's cap counts them)."""
    refusals: RefusalAudit = field(default_factory=RefusalAudit)

    @classmethod
    def fresh(cls, now: datetime) -> CarriedState:
        """The state of a new conversation: the workflow keeps its state in this one shape, so
        continuing as new hands it on instead of copying it field by field."""
        return cls(
            run_index=0,
            turns=0,
            step=0,
            approval_counter=0,
            transcript_seq=0,
            summary="",
            archive=None,
            archived_entries=0,
            recent=[],
            asked=[],
            approvals=[],
            actions=[],
            usage=UsageTotals(),
            notices=[],
            last_activity_at=now,
            started_at=now,
        )


@dataclass
class ConversationStart:
    customer: str = ""
    """How the customer is addressed (free text, shown to people; never used for access)."""
    settings: ConversationSettings = field(default_factory=ConversationSettings)
    carried: CarriedState | None = None
    """None on a new conversation; set by the run that continued as new."""
    customer_id: str = ""
    """The customer the conversation acts for, from an authenticated principal (``agent.identity``);
    every business operation carries it, so no other customer's order or ticket is reachable. The
    model never sets it; a conversation without one is refused."""
    acting: str = ""
    """How that identity was established (``customer ada@example.com``, ``operator lead-ana acting
    for cust-ada``): kept for the record, shown in ``status``."""


@dataclass
class EndRequest:
    reason: str = "ended by the customer"


@dataclass
class TranscriptView:
    summary: str
    archive: BlobRef | None
    archived_entries: int
    entries: list[TranscriptEntry]


@dataclass
class ConversationStatus:
    conversation_id: str
    phase: str
    detail: str
    turns: int
    step: int
    run_index: int
    history_length: int
    pending_approvals: list[Approval]
    usage: UsageTotals
    actions: list[ActionRecord]
    ended: bool
    end_reason: str | None
    last_activity_at: datetime
    cooldown_until: datetime | None
    summary: str
    customer_id: str = ""
    acting: str = ""
    refusals: RefusalAudit = field(default_factory=RefusalAudit)


@dataclass
class ConversationSummary:
    conversation_id: str
    turns: int
    end_reason: str
    usage: UsageTotals
    actions: list[ActionRecord]
    approvals: list[Approval]
    transcript: BlobRef | None
    refusals: RefusalAudit = field(default_factory=RefusalAudit)
