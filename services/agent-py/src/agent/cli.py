"""``agent``: the command-line client of the agent system.

``agent check`` runs SystemCheckWorkflow (every hop: retrieval, business lookup and refund,
one model call) and prints what each hop returned.

``agent chat ...`` talks to support conversations (SupportAgentWorkflow):

    agent chat start [--customer-id ID] [--id ID] [--approval-threshold 100.00] [--approval-timeout 24h] [--max-idle 1d]
                     [--mcp-server NAME ...]
    agent chat send ID "message" [--message-id MID]   (prints the agent's answer; "-" reads stdin)
    agent chat approvals ID
    agent chat approve ID APPROVAL-ID [--note TEXT] [--approver NAME] [--decision-id DID]
    agent chat reject ID APPROVAL-ID [--note TEXT] [--approver NAME] [--decision-id DID]
    agent chat show ID                    (transcript, current step, pending approvals, token totals)
    agent chat refusals ID [--json]       (every guardrail refusal: rule, tool, what the model was told)
    agent chat end ID [--reason TEXT] [--request-id RID]

Every chat command needs an authenticated identity: ``AGENT_TOKEN_FILE`` (or ``AGENT_TOKEN``), checked
against ``AGENT_PRINCIPALS_FILE``, or a JWT verified against the identity provider named by
``AGENT_OIDC_ISSUER``/``AGENT_OIDC_AUDIENCE``/``AGENT_OIDC_JWKS_URL`` (see ``agent.identity``).
A customer's token starts and speaks in that customer's conversations only; an operator's (a
support lead's) acts for the customer named by ``--customer-id`` and alone decides approvals.

Messages, decisions and end requests are idempotent: each has an id (printed on stderr when the
CLI makes one); sending it again with the same id never processes it twice. While the Temporal
server is unreachable, commands wait up to ``AGENT_CLIENT_PATIENCE_S`` (default 120 s).

``agent ingest PATH... [--collection kb] [--workflow-id ID] [--documents-per-ingestion N]
[--chunk-chars C] [--overlap-chars O]`` runs
IngestWorkflow over files and directories (text, Markdown, HTML, PDF) with a progress display,
then prints one line per document: indexed, unchanged or failed (with the reason), and its
chunks. More than N documents (at most and by default 1000, the history budget of one
ingestion) are ingested in several workflows, one after the other. Exit code 1 when a document
failed.

``agent schedule create|describe|pause|unpause|trigger|delete`` keeps a Temporal Schedule that
re-ingests a document set with IngestWorkflow (``agent.ingest.schedule``).

``agent demo`` runs a scripted conversation (policy question, refund over the threshold,
approval, exactly-once refund). Exit codes: 0 ok; 1 the agent or conversation failed; 2 usage
error, or the server is unreachable or not configured; 3 no such conversation; 4 the
conversation refused the input.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import sys
import uuid
from datetime import datetime
from typing import NoReturn, TypedDict

from rich.console import Console
from temporalio.client import WorkflowFailureError
from temporalio.runtime import Runtime, TelemetryConfig

from agent.arguments import duration
from agent.chat.client import ChatError, Conversations, new_request_id, patience_from_env
from agent.chat.demo import DEMO_CONVERSATION_ID, DEMO_CUSTOMER_ID, run_demo
from agent.chat.render import (
    render_approvals,
    render_outcome,
    render_refusals,
    render_reply,
    render_status,
    render_summary,
)
from agent.identity import IdentityError, Principal, principal_from_env
from agent.ingest.command import ingest
from agent.ingest.schedule import add_schedule_parser, run_schedule
from agent.ingest.types import CHUNK_CHARS, CHUNK_OVERLAP_CHARS, MAX_DOCUMENTS_PER_INGESTION
from agent.queues import AGENT_TASK_QUEUE
from agent.support.policy import settings_problems
from agent.support.types import ConversationSettings, ConversationStart
from agent.workflows.system_check import SystemCheckInput, SystemCheckResult, SystemCheckWorkflow
from nexus_contracts.business import DEFAULT_ENDPOINT as BUSINESS_ENDPOINT
from nexus_contracts.retrieval import DEFAULT_ENDPOINT as RETRIEVAL_ENDPOINT
from workerkit import ConfigError, TemporalUnreachable, connect, root_message
from workerkit.process import exit_without_finalizing
from workerkit.tracing import traced_command

NAMESPACE = "agents"
console = Console()
# Progress and ids go to stderr, so stdout holds only the answer a script reads.
notes = Console(stderr=True)


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


def render_system_check(result: SystemCheckResult, workflow_id: str) -> None:
    """One block per hop: which process served it, over which transport, and what came back."""

    def hop(name: str, served_by: str, lines: list[str]) -> None:
        console.print(f"[bold cyan]{name}[/bold cyan]  [dim]{served_by}[/dim]")
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False)
        console.print()

    console.print(f"[bold]System check {workflow_id}[/bold]: {len(result.hops)} hops answered\n")
    search = result.search
    hop(
        "retrieval.search",
        "Go retrieval worker, Nexus sync operation (endpoint retrieval)",
        [
            f"{len(search.hits)} {search.mode} hits among {search.total_documents} documents, "
            f"ranked in {search.took_ms:.2f} ms"
        ]
        + [f"[{h.doc_id}] {h.title}  score {h.score:.2f}" for h in search.hits],
    )
    order = result.order
    hop(
        "business.get_order",
        "business worker, Nexus sync operation (endpoint business)",
        [
            f"{order.order_id} for {order.customer}: {order.status}, total "
            f"{_money(order.total_cents, order.currency)}, refunded so far "
            f"{_money(order.refunded_cents, order.currency)}"
        ],
    )
    refund = result.refund
    hop(
        "business.refund",
        "business worker, Nexus workflow-run operation (RefundWorkflow, endpoint business)",
        [
            f"{refund.refund_id} {refund.status}: {_money(refund.amount_cents, refund.currency)} on {refund.order_id}",
            f"idempotency key {refund.idempotency_key} (once per key, however often it runs)",
        ],
    )
    answer = result.answer
    hop(
        "llm.chat_completion",
        f"model {answer.model} through the openai client, activity on queue llm",
        [
            *(answer.content or "(no content)").splitlines(),
            f"[{answer.usage.prompt_tokens} prompt + {answer.usage.completion_tokens} completion tokens]",
        ],
    )


async def run_check(args: argparse.Namespace) -> int:
    client = await connect(NAMESPACE)
    workflow_id = args.workflow_id or f"system-check-{uuid.uuid4().hex[:12]}"
    check = SystemCheckInput(
        question=args.question,
        order_id=args.order,
        refund_cents=args.refund_cents,
        **_endpoints(),
    )
    with console.status(f"running {workflow_id} through every hop..."):
        try:
            result = await client.execute_workflow(
                SystemCheckWorkflow.run, check, id=workflow_id, task_queue=AGENT_TASK_QUEUE
            )
        except WorkflowFailureError as err:
            console.print(f"[red]system check {workflow_id} failed:[/red] {root_message(err)}")
            return 1
    render_system_check(result, workflow_id)
    return 0


def money_cents(raw: str) -> int:
    """``100``, ``100.00`` -> 10000 (cents of the order's currency)."""
    if not re.fullmatch(r"\d+(\.\d{1,2})?", raw.strip()):
        raise argparse.ArgumentTypeError(f"{raw!r} is not an amount; use e.g. 100 or 100.00")
    return round(float(raw) * 100)


class _Endpoints(TypedDict):
    """The endpoint fields of ConversationSettings, typed so that ``**_endpoints()`` checks."""

    retrieval_endpoint: str
    business_endpoint: str


def _endpoints() -> _Endpoints:
    """The Nexus endpoints a started workflow calls: the contracts' defaults unless overridden."""
    return {
        "retrieval_endpoint": os.environ.get("AGENT_RETRIEVAL_ENDPOINT", RETRIEVAL_ENDPOINT),
        "business_endpoint": os.environ.get("AGENT_BUSINESS_ENDPOINT", BUSINESS_ENDPOINT),
    }


async def _conversations() -> Conversations:
    patience = patience_from_env()
    try:
        client = await connect(NAMESPACE)
    except TemporalUnreachable:
        if not patience:
            raise
        # A restarting server is back within seconds; a stopped one is not: say which we wait for.
        address = os.environ.get("TEMPORAL_ADDRESS", "the configured address")
        notes.print(f"[dim]waiting up to {patience:.0f} s for the Temporal server at {address}...[/dim]")
        client = await connect(NAMESPACE, patience_s=patience)
    return Conversations(client, patience_s=patience)


def _request_id(given: str | None, kind: str, flag: str) -> str:
    """The caller's id, or a new one, printed so that a failed command can be resent safely."""
    if given:
        return given
    made = new_request_id(kind)
    notes.print(f"[dim]{flag} {made}[/dim]", highlight=False)
    return made


def _principal() -> Principal:
    try:
        return principal_from_env()
    except IdentityError as err:
        raise ChatError(str(err), 2) from None


async def _speaker(conversations: Conversations, conversation_id: str, *, deciding: bool = False) -> Principal:
    """The caller's principal, if it may speak in this conversation (decide: an operator only)."""
    principal = _principal()
    if deciding and not principal.operator:
        raise ChatError(f"{principal.subject} may not decide approvals; a support lead (an operator) does", 4)
    if not principal.operator:
        status = await conversations.status(conversation_id)
        if not principal.may_speak_in(status.customer_id):
            raise ChatError(f"{principal.subject} may not speak in conversation {conversation_id}", 4)
    return principal


async def chat_start(args: argparse.Namespace) -> int:
    try:
        customer_id, acting = _principal().acting_for(args.customer_id)
    except IdentityError as err:
        raise ChatError(str(err), 4 if "may act only" in str(err) else 2) from None
    settings = ConversationSettings(
        approval_threshold_cents=args.approval_threshold,
        approval_timeout_s=args.approval_timeout,
        max_idle_s=args.max_idle,
        mcp_servers=list(args.mcp_server),
        **_endpoints(),
    )
    if problems := settings_problems(settings):
        raise ChatError("invalid settings: " + "; ".join(problems), 4)
    conversations = await _conversations()
    start = ConversationStart(customer=args.customer, settings=settings, customer_id=customer_id, acting=acting)
    conversation_id = await conversations.start(start, args.id)
    console.print(conversation_id, highlight=False)
    return 0


async def chat_send(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.message == "-" else args.message
    message_id = _request_id(args.message_id, "msg", "--message-id")
    conversations = await _conversations()
    await _speaker(conversations, args.id)
    with console.status("waiting for the agent..."):
        reply = await conversations.send(args.id, text, message_id=message_id)
    render_reply(console, args.id, reply)
    return 0


async def chat_approvals(args: argparse.Namespace) -> int:
    conversations = await _conversations()
    await _speaker(conversations, args.id)
    render_approvals(console, await conversations.approvals(args.id))
    return 0


async def chat_decide(args: argparse.Namespace) -> int:
    conversations = await _conversations()
    principal = await _speaker(conversations, args.id, deciding=True)
    verb = "approving" if args.approve else "rejecting"
    decision_id = _request_id(args.decision_id, "decision", "--decision-id")
    with console.status(f"{verb} {args.approval_id}..."):
        outcome = await conversations.decide(
            args.id,
            args.approval_id,
            approve=args.approve,
            approver=args.approver or principal.subject,
            note=args.note,
            decision_id=decision_id,
        )
    render_outcome(console, outcome)
    return 0


async def chat_show(args: argparse.Namespace) -> int:
    conversations = await _conversations()
    await _speaker(conversations, args.id)
    status = await conversations.status(args.id)
    render_status(console, status, await conversations.transcript(args.id))
    return 0


async def chat_refusals(args: argparse.Namespace) -> int:
    conversations = await _conversations()
    await _speaker(conversations, args.id)
    audit = (await conversations.status(args.id)).refusals
    if args.json:
        # One JSON document an audit pipeline can collect (datetimes as ISO 8601).
        print(json.dumps(dataclasses.asdict(audit), default=datetime.isoformat, ensure_ascii=False))
    else:
        render_refusals(console, args.id, audit)
    return 0


async def chat_end(args: argparse.Namespace) -> int:
    request_id = _request_id(args.request_id, "end", "--request-id")
    conversations = await _conversations()
    await _speaker(conversations, args.id)
    with console.status("ending the conversation..."):
        summary = await conversations.end(args.id, args.reason, request_id=request_id)
    render_summary(console, summary)
    return 0


async def run_ingest(args: argparse.Namespace) -> int:
    return await ingest(
        await connect(NAMESPACE),
        console,
        args.paths,
        collection=args.collection,
        workflow_id=args.workflow_id,
        retrieval_endpoint=_endpoints()["retrieval_endpoint"],
        per_ingestion=args.documents_per_ingestion,
        chunk_chars=args.chunk_chars,
        overlap_chars=args.overlap_chars,
    )


async def schedule(args: argparse.Namespace) -> int:
    return await run_schedule(args, console)


async def demo(args: argparse.Namespace) -> int:
    try:
        _, acting = _principal().acting_for(DEMO_CUSTOMER_ID)
    except IdentityError as err:
        raise ChatError(f"the demo acts for {DEMO_CUSTOMER_ID}: {err}", 2) from None
    conversations = await _conversations()
    await run_demo(
        conversations,
        console,
        conversation_id=args.id,
        approver=args.approver,
        settings=ConversationSettings(approval_threshold_cents=10_000, approval_timeout_s=600, **_endpoints()),
        acting=acting,
    )
    return 0


def _add_chat(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser("chat", help="talk to support conversations (SupportAgentWorkflow)")
    sub = chat.add_subparsers(dest="chat_command", required=True)
    _add_chat_start(sub)
    _add_chat_requests(sub)
    _add_chat_reading(sub)


def _add_chat_start(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    start = sub.add_parser("start", help="start a conversation and print its id")
    start.add_argument("--id", help="conversation id (default: a new random one; ids are never reused)")
    start.add_argument(
        "--customer-id",
        metavar="ID",
        help="the customer the conversation acts for: required for an operator's token, "
        "implied by a customer's own (AGENT_TOKEN_FILE)",
    )
    start.add_argument("--customer", default="", help="how to address the customer (free text, never used for access)")
    start.add_argument(
        "--approval-threshold",
        type=money_cents,
        default=10_000,
        metavar="AMOUNT",
        help="refunds above this amount wait for a person (default 100.00)",
    )
    start.add_argument(
        "--approval-timeout",
        type=duration,
        default=24 * 3600,
        metavar="DURATION",
        help="how long an approval waits before it is escalated (default 24h)",
    )
    start.add_argument(
        "--mcp-server",
        action="append",
        default=[],
        metavar="NAME",
        help="offer this external MCP server's tools too (a name in the worker's AGENT_MCP_SERVERS_FILE; repeatable)",
    )
    start.add_argument(
        "--max-idle",
        type=duration,
        default=24 * 3600,
        metavar="DURATION",
        help="end the conversation after this long without messages (default 24h)",
    )
    start.set_defaults(handler=chat_start)


def _add_chat_requests(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """What changes a conversation: each takes an id of its own, so a resend is never done twice."""
    send = sub.add_parser("send", help="send a message and print the agent's answer")
    send.add_argument("id")
    send.add_argument("message", help='the message, or "-" to read it from stdin')
    send.add_argument(
        "--message-id",
        metavar="MID",
        help="id of this message; resending with the same id never processes it twice "
        "(default: a new one, printed on stderr)",
    )
    send.set_defaults(handler=chat_send)

    for name, approve in (("approve", True), ("reject", False)):
        decide = sub.add_parser(name, help=f"{name} a pending approval")
        decide.add_argument("id")
        decide.add_argument("approval_id")
        decide.add_argument("--note", default="", help="why (shown to the customer on rejection)")
        decide.add_argument(
            "--approver",
            default=os.environ.get("AGENT_APPROVER"),
            help="who decides, as recorded (default: $AGENT_APPROVER or your principal's subject)",
        )
        decide.add_argument(
            "--decision-id",
            metavar="DID",
            help="id of this decision, to resend it safely (default: a new one, printed on stderr)",
        )
        decide.set_defaults(handler=chat_decide, approve=approve)

    end = sub.add_parser("end", help="end a conversation (pending approvals are escalated)")
    end.add_argument("id")
    end.add_argument("--reason", default="ended by the customer")
    end.add_argument(
        "--request-id",
        metavar="RID",
        help="id of this request, to resend it safely (default: a new one, printed on stderr)",
    )
    end.set_defaults(handler=chat_end)


def _add_chat_reading(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """What reads a conversation (queries): safe to repeat."""
    approvals = sub.add_parser("approvals", help="list the approvals waiting for a person")
    approvals.add_argument("id")
    approvals.set_defaults(handler=chat_approvals)

    show = sub.add_parser("show", help="transcript, current step, pending approvals, token totals")
    show.add_argument("id")
    show.set_defaults(handler=chat_show)

    refusals = sub.add_parser(
        "refusals", help="every guardrail refusal of a conversation (what the model asked and a rule refused)"
    )
    refusals.add_argument("id")
    refusals.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    refusals.set_defaults(handler=chat_refusals)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run one request through every hop and show each result")
    check.add_argument("--question", default="How long does a refund take?")
    check.add_argument("--order", default="ORD-1001", help="order to look up and refund")
    check.add_argument("--refund-cents", type=int, default=500, help="amount to refund, in cents")
    check.add_argument("--workflow-id", help="workflow id (default: a new random one)")
    check.set_defaults(handler=run_check)
    _add_chat(commands)
    ingest_parser = commands.add_parser("ingest", help="ingest documents (text, Markdown, HTML, PDF) into a collection")
    ingest_parser.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories of them")
    ingest_parser.add_argument("--collection", default="kb", help="collection to index into (default kb)")
    ingest_parser.add_argument("--workflow-id", help="workflow id (default: a new random one)")
    ingest_parser.add_argument(
        "--documents-per-ingestion",
        type=int,
        default=MAX_DOCUMENTS_PER_INGESTION,
        metavar="N",
        help=f"documents per IngestWorkflow; more are ingested in several, one after the other "
        f"(default and most {MAX_DOCUMENTS_PER_INGESTION})",
    )
    # The defaults fit all-MiniLM-L6-v2's 256-token window; another embedding model may want others.
    ingest_parser.add_argument(
        "--chunk-chars",
        type=int,
        default=CHUNK_CHARS,
        metavar="C",
        help=f"target chunk size in characters, one embedding each (default {CHUNK_CHARS}, at least 100)",
    )
    ingest_parser.add_argument(
        "--overlap-chars",
        type=int,
        default=CHUNK_OVERLAP_CHARS,
        metavar="O",
        help=f"characters repeated from one chunk at the start of the next (default {CHUNK_OVERLAP_CHARS}, "
        "under half of --chunk-chars)",
    )
    ingest_parser.set_defaults(handler=run_ingest)
    add_schedule_parser(commands).set_defaults(handler=schedule)
    demo_parser = commands.add_parser("demo", help="run the scripted support conversation on the offline model")
    demo_parser.add_argument(
        "--id", default=DEMO_CONVERSATION_ID, help=f"conversation id (default {DEMO_CONVERSATION_ID})"
    )
    demo_parser.add_argument("--approver", default="demo-support-lead")
    demo_parser.set_defaults(handler=demo)
    return parser


def run(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (usage errors exit 2 through argparse)."""
    args = build_parser().parse_args(argv)
    # The SDK core's own log lines (connection retries while a server restarts) are for worker
    # logs; a person at a terminal gets this command's one-line outcome instead.
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=None)), error_if_already_set=False)
    try:
        # One trace per command when OTEL_* ask for tracing: a chat send's update, the agent
        # workflow, its model calls and the Nexus hops all hang under "agent chat".
        with traced_command("agent-cli", f"agent {args.command}"):
            code: int = asyncio.run(args.handler(args))
    except (TemporalUnreachable, ConfigError) as err:
        console.print(f"[red]agent:[/red] {err}")
        code = 2
    except ChatError as err:
        console.print("[red]agent:[/red] ", end="")
        console.print(err.message, markup=False, highlight=False)
        if err.resend_id:
            flag = {"send": "--message-id", "approve": "--decision-id", "reject": "--decision-id"}.get(
                getattr(args, "chat_command", ""), "--request-id"
            )
            console.print(f"to resend: the same command with {flag} {err.resend_id}", markup=False, highlight=False)
        code = err.exit_code
    except KeyboardInterrupt:
        code = 130
    return code


def main(argv: list[str] | None = None) -> NoReturn:
    exit_without_finalizing(run(argv))
