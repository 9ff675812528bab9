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
from temporalio.client import WorkflowFailureError

from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.system_check import SystemCheckInput, SystemCheckResult, SystemCheckWorkflow
from workerkit import ConfigError, TemporalUnreachable, connect

NAMESPACE = "agents"
console = Console()


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
        [f"{len(search.hits)} hits among {search.total_documents} documents, ranked in {search.took_ms:.2f} ms"]
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
        [*(answer.content or "(no content)").splitlines(),
         f"[{answer.usage.prompt_tokens} prompt + {answer.usage.completion_tokens} completion tokens]"],
    )


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
