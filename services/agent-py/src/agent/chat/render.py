"""How conversations look in a terminal (rich). Pure presentation: no Temporal calls here."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.support.types import (
    AgentReply,
    Approval,
    ApprovalOutcome,
    ConversationStatus,
    ConversationSummary,
    RefusalAudit,
    TranscriptView,
    UsageTotals,
)


def _plain(console: Console, text: str, style: str = "") -> None:
    # Agent and customer texts are data: never interpret [brackets] in them as markup.
    console.print(Text(text, style=style))


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def usage_line(usage: UsageTotals) -> str:
    models = ", ".join(f"{m} ×{n}" for m, n in sorted(usage.calls_by_model.items())) or "no model calls"
    return (
        f"{usage.model_calls} model call(s) ({models}): {usage.prompt_tokens} prompt + "
        f"{usage.completion_tokens} completion = {usage.total_tokens} tokens"
    )


def render_reply(console: Console, conversation_id: str, reply: AgentReply) -> None:
    for notice in reply.notices:
        console.print("[bold magenta]agent (meanwhile):[/bold magenta]")
        _plain(console, notice)
    console.print("[bold cyan]agent:[/bold cyan]")
    _plain(console, reply.text, "yellow" if reply.error else "")
    if reply.citations:
        _plain(console, "sources: " + "; ".join(f"[{c.doc_id}] {c.title}" for c in reply.citations), "dim")
    for approval_id in reply.approvals_requested:
        _plain(
            console,
            f"waiting for a person: {approval_id}. Decide with `agent chat approve {conversation_id} {approval_id}` "
            f"or `agent chat reject {conversation_id} {approval_id}`.",
            "bold",
        )
    meta = [f"turn {reply.turn}"]
    if reply.model:
        meta.append(reply.model)
    meta.append(f"{reply.usage.total_tokens} tokens")
    if reply.tools_used:
        meta.append("tools: " + ", ".join(reply.tools_used))
    if reply.error:
        meta.append(f"error: {reply.error}")
    _plain(console, " · ".join(meta), "dim")


def approvals_table(approvals: list[Approval], title: str = "Pending approvals") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "action", "status", "requested", "deadline"):
        table.add_column(column)
    for a in approvals:
        table.add_row(a.approval_id, Text(a.summary), a.status, _when(a.requested_at), _when(a.deadline))
    return table


def render_approvals(console: Console, approvals: list[Approval]) -> None:
    if not approvals:
        console.print("no approvals are pending")
        return
    console.print(approvals_table(approvals))


def render_outcome(console: Console, outcome: ApprovalOutcome) -> None:
    headline = f"{outcome.approval_id}: {outcome.status}"
    if outcome.refund_id:
        headline += f" (refund {outcome.refund_id})"
    console.print(Text(headline, style="bold"))
    console.print("[bold cyan]agent, to the customer:[/bold cyan]")
    _plain(console, outcome.message)


def refusals_line(audit: RefusalAudit) -> str:
    total = sum(audit.totals.values())
    rules = ", ".join(f"{rule} ×{n}" for rule, n in sorted(audit.totals.items()))
    return f"{total} guardrail refusal(s): {rules}" if total else "no guardrail refusals"


def render_refusals(console: Console, conversation_id: str, audit: RefusalAudit) -> None:
    """Every guardrail refusal of a conversation, for an auditor (``agent chat refusals``)."""
    _plain(console, f"Conversation {conversation_id}: {refusals_line(audit)}", "bold")
    kept = len(audit.records)
    if kept < sum(audit.totals.values()):
        _plain(console, f"(the newest {kept} are listed; the totals count every one)", "dim")
    if not audit.records:
        return
    table = Table(title_justify="left")
    for column in ("at", "turn", "rule", "tool", "what the model was told", "step"):
        table.add_column(column)
    for r in audit.records:
        table.add_row(_when(r.at), str(r.turn), r.rule, Text(r.tool), Text(r.detail), r.idempotency_key or "")
    console.print(table)


def render_status(console: Console, status: ConversationStatus, transcript: TranscriptView) -> None:
    state = f"ended ({status.end_reason})" if status.ended else status.phase
    console.print(Text(f"Conversation {status.conversation_id}", style="bold"))
    _plain(
        console,
        f"step: {state} · turns: {status.turns} · tool steps: {status.step} · run {status.run_index + 1} "
        f"({status.history_length} history events) · last activity {_when(status.last_activity_at)}",
    )
    if status.customer_id:
        _plain(console, f"for customer {status.customer_id} ({status.acting or 'identity not recorded'})")
    _plain(console, "tokens: " + usage_line(status.usage))
    if status.refusals.totals:
        _plain(console, f"{refusals_line(status.refusals)} (agent chat refusals {status.conversation_id})")
    if status.cooldown_until:
        _plain(console, f"cooling down until {_when(status.cooldown_until)}", "yellow")
    if status.pending_approvals:
        console.print(approvals_table(status.pending_approvals))
    if status.actions:
        console.print("[bold]actions[/bold]")
        for action in status.actions:
            _plain(console, f"  {action.summary}  [key {action.idempotency_key}]")
    if transcript.summary:
        console.print("[bold]earlier turns[/bold]")
        _plain(console, transcript.summary, "dim")
    if transcript.archive:
        archived = f"full transcript: blob {transcript.archive.uri} ({transcript.archived_entries} entries)"
        _plain(console, archived, "dim")
    console.print("[bold]transcript[/bold]")
    for entry in transcript.entries:
        who = {"user": "customer", "agent": "agent"}.get(entry.role, entry.role)
        style = "bold cyan" if who == "agent" else "bold"
        console.print(Text(f"{who} · turn {entry.turn} · {_when(entry.at)}", style=style))
        _plain(console, entry.text + (f"  (full text: blob {entry.ref.uri})" if entry.ref else ""))


def render_summary(console: Console, summary: ConversationSummary) -> None:
    console.print(Text(f"Conversation {summary.conversation_id} ended: {summary.end_reason}", style="bold"))
    _plain(console, f"{summary.turns} turn(s); " + usage_line(summary.usage))
    for action in summary.actions:
        _plain(console, f"  {action.summary}  [key {action.idempotency_key}]")
    if summary.transcript:
        _plain(console, f"transcript archived as blob {summary.transcript.uri}", "dim")
