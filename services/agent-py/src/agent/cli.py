"""``agent``: the command-line client of the agent system.

``agent check`` runs SystemCheckWorkflow (every hop: retrieval, business lookup and refund,
one model call) and prints what each hop returned.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid

from rich.console import Console
from rich.table import Table
from temporalio.client import WorkflowFailureError

from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.system_check import SystemCheckInput, SystemCheckResult, SystemCheckWorkflow
from workerkit import ConfigError, TemporalUnreachable, connect

NAMESPACE = "agents"
console = Console()


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


def render_system_check(result: SystemCheckResult, workflow_id: str) -> None:
    table = Table(title=f"System check {workflow_id}", show_lines=True)
    table.add_column("hop", style="bold cyan", no_wrap=True)
    table.add_column("served by", no_wrap=True)
    table.add_column("returned")
    hits = "\n".join(f"[{h.doc_id}] {h.title} (score {h.score:.2f})" for h in result.search.hits)
    table.add_row(
        "retrieval.search",
        "Go retrieval worker via Nexus (sync)",
        f"{len(result.search.hits)} of {result.search.total_documents} documents\n{hits or '(no hits)'}",
    )
    order = result.order
    table.add_row(
        "business.get_order",
        "business worker via Nexus (sync)",
        f"{order.order_id} for {order.customer}: {order.status}, "
        f"total {_money(order.total_cents, order.currency)}, "
        f"refunded {_money(order.refunded_cents, order.currency)}",
    )
    refund = result.refund
    table.add_row(
        "business.refund",
        "business worker via Nexus (workflow run)",
        f"{refund.refund_id} {refund.status}: {_money(refund.amount_cents, refund.currency)} "
        f"on {refund.order_id} (key {refund.idempotency_key})",
    )
    answer = result.answer
    table.add_row(
        "llm.chat_completion",
        f"model {answer.model} via openai client (activity)",
        f"{answer.content}\n[dim]{answer.usage.prompt_tokens} prompt + "
        f"{answer.usage.completion_tokens} completion tokens[/dim]",
    )
    console.print(table)


async def run_check(args: argparse.Namespace) -> int:
    client = await connect(NAMESPACE)
    workflow_id = args.workflow_id or f"system-check-{uuid.uuid4().hex[:12]}"
    check = SystemCheckInput(
        question=args.question,
        order_id=args.order,
        refund_cents=args.refund_cents,
        retrieval_endpoint=os.environ.get("AGENT_RETRIEVAL_ENDPOINT", "retrieval"),
        business_endpoint=os.environ.get("AGENT_BUSINESS_ENDPOINT", "business"),
    )
    with console.status(f"running {workflow_id} through every hop..."):
        try:
            result = await client.execute_workflow(
                SystemCheckWorkflow.run, check, id=workflow_id, task_queue=AGENT_TASK_QUEUE
            )
        except WorkflowFailureError as err:
            cause = err.cause
            while getattr(cause, "cause", None) is not None:
                cause = cause.cause
            console.print(f"[red]system check {workflow_id} failed:[/red] {cause}")
            return 1
    render_system_check(result, workflow_id)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run one request through every hop and show each result")
    check.add_argument("--question", default="How long does a refund take?")
    check.add_argument("--order", default="ORD-1001", help="order to look up and refund")
    check.add_argument("--refund-cents", type=int, default=500, help="amount to refund, in cents")
    check.add_argument("--workflow-id", help="workflow id (default: a new random one)")
    check.set_defaults(handler=run_check)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = asyncio.run(args.handler(args))
    except (TemporalUnreachable, ConfigError) as err:
        console.print(f"[red]agent:[/red] {err}")
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
