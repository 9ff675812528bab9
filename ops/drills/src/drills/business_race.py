"""Business race drill: refunds racing through Nexus onto several business worker replicas that
share one PostgreSQL database, while one replica is SIGKILLed and restarted.

Callers are workflows in namespace ``agents`` calling the ``business`` Nexus endpoint's
``refund`` operation, as the agent's ``refund_order`` tool does. Each idempotency key is asked
for several times, by different callers at once, in a shuffled order; the keys of one order add
up to exactly its total, so a refund applied twice would either go above the total (refused by
the database) or leave another key refused. The verdict is read from the database:

- exactly one refund row per key, with the amount asked for;
- no order refunded above its total (each ends exactly at it, status ``refunded``);
- every caller of a key got the same answer (refund id and amount), and no request failed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from nexus_contracts.business import BusinessService, RefundRequest

# Long enough to outlive a killed replica's activity (its 30 s start-to-close timeout, then a
# retry on a live replica) with room to spare on a machine other work loads heavily: a request
# that still times out is a failure of the drill, reported with its cause.
OPERATION_TIMEOUT = timedelta(minutes=15)
ENDPOINT = "business"


@dataclass
class Answer:
    key: str
    refund_id: str | None
    amount_cents: int | None
    error: str | None
    seconds: float


@dataclass
class CallerInput:
    endpoint: str
    requests: list[RefundRequest]


@workflow.defn
class DrillRefundCaller:
    """Sends its refund requests at once and reports every answer, failures included."""

    @workflow.run
    async def run(self, calls: CallerInput) -> list[Answer]:
        client = workflow.create_nexus_client(service=BusinessService, endpoint=calls.endpoint)

        async def one(request: RefundRequest) -> Answer:
            began = workflow.time()
            try:
                result = await client.execute_operation(
                    BusinessService.refund, request, schedule_to_close_timeout=OPERATION_TIMEOUT
                )
            except Exception as err:  # the drill reports every failure rather than stopping
                causes: list[str] = []
                cause: BaseException | None = err
                while cause is not None:
                    causes.append(f"{type(cause).__name__}: {cause}")
                    cause = cause.__cause__
                failure = " <- ".join(causes)
                return Answer(request.idempotency_key, None, None, failure, workflow.time() - began)
            return Answer(request.idempotency_key, result.refund_id, result.amount_cents, None, workflow.time() - began)

        return list(await asyncio.gather(*(one(r) for r in calls.requests)))


@dataclass(frozen=True)
class Plan:
    """``keys`` idempotency keys over the orders, each asked ``per_key`` times."""

    orders: dict[str, int]
    """order id -> total cents"""
    keys: int
    per_key: int
    callers: int

    def amounts(self) -> dict[str, tuple[str, int]]:
        """key -> (order, amount): each order's keys add up to exactly its total."""
        ids = sorted(self.orders)
        per_order: dict[str, list[str]] = {o: [] for o in ids}
        run = uuid.uuid4().hex[:8]
        for n in range(self.keys):
            per_order[ids[n % len(ids)]].append(f"drill-{run}/refund-{n:03d}")
        plan = {}
        for order, keys in per_order.items():
            share = self.orders[order] // len(keys)
            for i, key in enumerate(keys):
                last = i == len(keys) - 1
                plan[key] = (order, self.orders[order] - share * (len(keys) - 1) if last else share)
        return plan


@dataclass
class Kill:
    process: str
    at_s: float
    restarted_ready_at_s: float | None = None


@dataclass
class Outcome:
    asked: dict[str, tuple[str, int]] = field(default_factory=dict)
    """key -> (order, amount), as the requests carried them"""
    answers: list[Answer] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    wall_s: float = 0.0


async def run_race(
    client: Client,
    plan: Plan,
    kill: tuple[str, float, float] | None,
    kill_process,
    restart_process,
) -> Outcome:
    """Send the plan's requests through caller workflows (a worker in this process polls their
    queue); ``kill`` = (process, seconds after the start, seconds down) is SIGKILLed by
    ``kill_process(name)`` and brought back by ``restart_process(name)`` (blocking)."""
    amounts = plan.amounts()
    requests = [
        RefundRequest(order_id=order, amount_cents=amount, reason="drill", idempotency_key=key)
        for key, (order, amount) in amounts.items()
        for _ in range(plan.per_key)
    ]
    random.shuffle(requests)
    batches = [requests[i :: plan.callers] for i in range(plan.callers)]
    queue = f"drill-business-{uuid.uuid4().hex[:8]}"
    outcome = Outcome(asked=amounts)
    async with Worker(client, task_queue=queue, workflows=[DrillRefundCaller]):
        start = time.monotonic()

        async def chaos() -> None:
            if kill is None:
                return
            name, after_s, down_s = kill
            await asyncio.sleep(after_s)
            # kill_process may wait until the replica is busy; the kill is timed when it lands.
            await asyncio.to_thread(kill_process, name)
            record = Kill(name, time.monotonic() - start)
            outcome.kills.append(record)
            await asyncio.sleep(down_s)
            await asyncio.to_thread(restart_process, name)
            record.restarted_ready_at_s = time.monotonic() - start

        chaos_task = asyncio.create_task(chaos())
        results = await asyncio.gather(
            *(
                client.execute_workflow(
                    DrillRefundCaller.run,
                    CallerInput(ENDPOINT, batch),
                    id=f"{queue}-caller-{n}",
                    task_queue=queue,
                    execution_timeout=OPERATION_TIMEOUT * 2,
                )
                for n, batch in enumerate(batches)
            )
        )
        await chaos_task
        outcome.wall_s = time.monotonic() - start
    outcome.answers = [answer for batch in results for answer in batch]
    return outcome


@dataclass
class Verdict:
    requests: int
    failed_requests: int
    keys: int
    keys_with_differing_answers: int
    refund_rows: int
    refund_rows_for_drill_keys: int
    rows_with_wrong_amount: int
    orders_above_total: int
    orders_not_exactly_refunded: int
    latency_s: dict[str, float]

    @property
    def passed(self) -> bool:
        return (
            self.failed_requests == 0
            and self.keys_with_differing_answers == 0
            and self.refund_rows_for_drill_keys == self.keys
            and self.rows_with_wrong_amount == 0
            and self.orders_above_total == 0
            and self.orders_not_exactly_refunded == 0
        )


def judge(
    plan: Plan, outcome: Outcome, refunds: list[tuple[str, str, int]], orders: list[tuple[str, int, int]]
) -> Verdict:
    """``refunds``: (key, order, amount) of every row; ``orders``: (order, refunded, total)."""
    amounts = {key: amount for key, (_, amount) in outcome.asked.items()}
    by_key: dict[str, set[tuple[str | None, int | None]]] = {}
    for answer in outcome.answers:
        if answer.error is None:
            by_key.setdefault(answer.key, set()).add((answer.refund_id, answer.amount_cents))
    drill_rows = [row for row in refunds if row[0] in amounts]
    seconds = sorted(a.seconds for a in outcome.answers)
    return Verdict(
        requests=len(outcome.answers),
        failed_requests=sum(a.error is not None for a in outcome.answers),
        keys=len(amounts),
        keys_with_differing_answers=sum(len(answers) != 1 for answers in by_key.values()) + len(amounts) - len(by_key),
        refund_rows=len(refunds),
        refund_rows_for_drill_keys=len(drill_rows),
        rows_with_wrong_amount=sum(amount != amounts[key] for key, _, amount in drill_rows),
        orders_above_total=sum(refunded > total for _, refunded, total in orders),
        orders_not_exactly_refunded=sum(refunded != total for order, refunded, total in orders if order in plan.orders),
        latency_s={
            "p50": round(statistics.median(seconds), 3),
            "p95": round(seconds[int(0.95 * (len(seconds) - 1))], 3),
            "max": round(seconds[-1], 3),
        },
    )


def sigkill(pid: int) -> None:
    """SIGKILL the process group of ``pid`` (the stack starts each process in its own)."""
    os.killpg(pid, signal.SIGKILL)


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def table(report: dict) -> str:
    """The drill report as the table `make drill-business` prints."""
    counts, plan, latency = report["counts"], report["plan"], report["timings_s"]["request_latency"]
    rows = [
        ("requests sent / failed", f"{counts['requests']} / {counts['failed_requests']}"),
        ("idempotency keys / refund rows for them", f"{counts['keys']} / {counts['refund_rows_for_drill_keys']}"),
        ("keys whose callers got different answers", counts["keys_with_differing_answers"]),
        ("rows with a wrong amount", counts["rows_with_wrong_amount"]),
        (
            "orders above total / not exactly refunded",
            f"{counts['orders_above_total']} / {counts['orders_not_exactly_refunded']}",
        ),
        ("replicas, killed", f"{plan['replicas']}, {', '.join(k['process'] for k in report['kills'])}"),
        ("wall time (s)", report["timings_s"]["wall"]),
        ("request latency p50 / p95 / max (s)", " / ".join(str(v) for v in latency.values())),
        ("passed", report["passed"]),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
