"""Crash drill: support conversations while every kind of process is SIGKILLed and brought back.

The kills rotate through :data:`KILL_PLAN`: the agent worker, the Temporal server (held down
longer than the SDK's default retries, then restarted on the same database), the model server,
the business worker, the Go retrieval worker, and two at once. Clients behave as real ones do:
each request waits out an outage for a while (the client's patience), and when it gives up the
drill resends it with the same id.

The verdict is the customer's, not the code's:

- every conversation completed, each of its three messages processed once (three turns);
- exactly one refund per refund asked for (the small one paid at once, the large one after its
  approval), with the amounts asked for, and exactly one approval, executed; no escalation ticket;
- every paid model or embedding call (``ok`` in the simulator's ledger) was paid once, except a
  call in flight when the agent worker died (the provider answered nobody: ``in_flight``); any
  other repeat is ``paid_twice`` and fails the drill;
- no request waited for a 60 s timeout (the slowest is reported), and each restart's resume time
  (from the process being ready again to the next request answered) is reported.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agent.chat.client import EXIT_REJECTED, EXIT_UNAVAILABLE, ChatError, Conversations
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart, ConversationSummary
from agent.testing import began, calls_of, chat_calls_in_flight, ledger, start, stop

AGENT_WORKER = "agent-worker"
TEMPORAL = "temporal"
MODEL_SERVER = "model-server"
KILL_PLAN: tuple[tuple[str, ...], ...] = (
    (AGENT_WORKER,),
    (TEMPORAL,),
    (MODEL_SERVER,),
    ("business-worker",),
    ("retrieval-worker",),
    (AGENT_WORKER, TEMPORAL),
)
POLICY_QUESTION = "How long do refunds take?"
# Both on ORD-1004 ($268, Katherine's: the conversations act for her), $2.50 per conversation.
# Below the drill's $1 threshold: refunded at once.
SMALL_REFUND = "Please refund $0.50 on order ORD-1004, the case is scuffed."
# Above it: an approval first.
LARGE_REFUND = "Please refund $2 on order ORD-1004, it arrived damaged."
EXPECTED_REFUNDS = [("ORD-1004", 50), ("ORD-1004", 200)]
CUSTOMER_ID = "cust-katherine"
MESSAGES = 3
# Production timeouts (60 s per model call, 10 s heartbeat): the drill proves no turn waits for them.
DRILL_SETTINGS = ConversationSettings(approval_threshold_cents=100, model_max_attempts=10)
# How long one client call waits out an outage before the drill resends it (the same id).
CLIENT_PATIENCE_S = 15.0
RESEND_LIMIT = 20
# The Temporal server stays down this long: longer than the SDK's default RPC retries (~6-10 s),
# as an operator's restart is (6.6 to 9.5 s measured).
SERVER_DOWN_S = 8.0
# How long a kill waits for a model call to be in flight before it strikes anyway.
IN_FLIGHT_WAIT_S = 15.0
STEP_TIMEOUT_S = 60.0


@dataclass
class Kill:
    targets: list[str]
    killed_at: str
    down_s: float
    """From the kill until every target answered its readiness check again."""
    resume_s: float | None = None
    """From then until the next client request was answered (None: none was left)."""


@dataclass
class Summary:
    conversations: int
    completed_conversations: int
    kills: list[Kill]
    model_calls: int
    paid_once: int
    in_flight_repeats: int
    paid_twice: int
    refunds: int
    refunds_asked: int
    conversations_with_wrong_refunds: int
    extra_approvals: int
    escalation_tickets: int
    messages_processed_twice: int
    resends: int
    slowest_request_s: float
    duration_s: float
    paid_twice_keys: list[str] = field(default_factory=list)
    in_flight_why: str = (
        "each was a call the model server was answering when the agent worker was SIGKILLed: the "
        "provider finished a request whose reader was gone, so its answer could not be kept"
    )

    def ok(self) -> bool:
        return (
            self.completed_conversations == self.conversations
            and self.paid_twice == 0
            and self.refunds == self.refunds_asked
            and self.conversations_with_wrong_refunds == 0
            and self.extra_approvals == 0
            and self.escalation_tickets == 0
            and self.messages_processed_twice == 0
            and self.slowest_request_s < STEP_TIMEOUT_S
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Customer:
    """A customer's app and a support lead's console: patient, and resending with the same id."""

    chat: Conversations
    resends: int = 0
    answered_at: list[float] = field(default_factory=list)
    slowest_s: float = 0.0

    async def call(self, request: Callable[[], Awaitable[Any]]) -> Any:
        began_at = time.monotonic()
        for _ in range(RESEND_LIMIT):
            try:
                result = await request()
            except ChatError as err:
                if err.exit_code != EXIT_UNAVAILABLE:
                    raise  # resends are idempotent: a refusal is a finding, not noise
                self.resends += 1
                await asyncio.sleep(1)
                continue
            now = time.monotonic()
            self.answered_at.append(now)
            self.slowest_s = max(self.slowest_s, now - began_at)
            return result
        raise RuntimeError(f"gave up after {RESEND_LIMIT} resends")


async def _conversation(client: Customer, cid: str) -> None:
    """The demo's path with both kinds of refund: every request has its id before it is sent."""
    ids = {name: f"{name}-{uuid.uuid4().hex}" for name in ("policy", "small", "large", "decision", "end")}
    chat = client.chat
    tries = 0

    async def start_once() -> None:
        nonlocal tries
        tries += 1
        try:
            await chat.start(ConversationStart(settings=DRILL_SETTINGS, customer_id=CUSTOMER_ID), cid)
        except ChatError as err:
            if err.exit_code == EXIT_REJECTED and tries > 1:
                return  # the id is the drill's own: an earlier try started it, its answer was lost
            raise

    await client.call(start_once)
    await client.call(lambda: chat.send(cid, POLICY_QUESTION, message_id=ids["policy"]))
    await client.call(lambda: chat.send(cid, SMALL_REFUND, message_id=ids["small"]))
    await client.call(lambda: chat.send(cid, LARGE_REFUND, message_id=ids["large"]))
    await client.call(lambda: chat.decide(cid, "APR-1", approve=True, approver="drill", decision_id=ids["decision"]))
    await client.call(lambda: chat.end(cid, request_id=ids["end"]))


@dataclass(frozen=True)
class KillSchedule:
    """Which processes die, how many times, which stay down a while, and when (a random moment of
    ``window_s`` after the previous kill, once a model call is in flight)."""

    plan: tuple[tuple[str, ...], ...]
    kills: int
    held_down: frozenset[str]
    window_s: tuple[float, float]
    seed: int | None = None


async def _killer(
    stack: Any,
    schedule: KillSchedule,
    stop_at: asyncio.Event,
    model_server: str,
    faults: list[dict[str, Any]],
) -> list[tuple[Kill, float]]:
    """Kills the plan's targets in turn, each at a random moment of the window once a model call
    is in flight (so every kill has an answer to lose); returns each kill with its ready time.
    A kill that hits one of ``schedule.held_down`` keeps its targets down for SERVER_DOWN_S, as
    an operator's (or a scheduler's) restart does; the others restart at once."""
    rng = random.Random(schedule.seed)
    plan, held_down = schedule.plan, schedule.held_down
    done: list[tuple[Kill, float]] = []
    for number in range(schedule.kills):
        await asyncio.sleep(rng.uniform(*schedule.window_s))
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        while not stop_at.is_set() and time.monotonic() < deadline:
            if await asyncio.to_thread(chat_calls_in_flight, model_server):
                break
            await asyncio.sleep(0.05)
        if stop_at.is_set():
            break
        targets = plan[number % len(plan)]
        killed_at, killed = datetime.now(UTC), time.monotonic()
        for name in targets:
            await asyncio.to_thread(stop, stack, name, kill=True)
        if held_down.intersection(targets):
            await asyncio.sleep(SERVER_DOWN_S)
        # Servers first: a worker's readiness check needs the Temporal server.
        for name in sorted(targets, key=lambda n: n not in (*held_down, MODEL_SERVER)):
            await asyncio.to_thread(start, stack, name)
        if MODEL_SERVER in targets:
            _set_faults(model_server, faults)  # fault rules live in the server's memory
        ready = time.monotonic()
        done.append((Kill(list(targets), killed_at.isoformat(), round(ready - killed, 1)), ready))
    return done


def classify(
    entries: list[dict[str, Any]], agent_kills: list[datetime], slack: timedelta = timedelta(milliseconds=250)
) -> dict[str, list[str]]:
    """Sort one conversation's paid calls (chat and embeddings) into paid_once / in_flight / paid_twice.

    Per call (activity, and batch for embeddings) the last paid answer is the one history holds,
    directly or as the kept answer a later attempt returned. An earlier paid answer is
    ``in_flight`` when an agent-worker kill fell between its start and the next attempt's start
    (the process died before it could keep the answer), else ``paid_twice``.
    """
    out: dict[str, list[str]] = {"paid_once": [], "in_flight": [], "paid_twice": []}
    attempts: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if entry.get("outcome") == "ok":
            attempts[_call_of(entry)].append(entry)
    for paid in attempts.values():
        paid.sort(key=began)
        *earlier, last = paid
        out["paid_once"].append(str(last["request_key"]))
        for entry, following in zip(earlier, paid[1:], strict=True):
            cut = any(began(entry) - slack <= k <= began(following) for k in agent_kills)
            out["in_flight" if cut else "paid_twice"].append(str(entry["request_key"]))
    return out


def _call_of(entry: dict[str, Any]) -> tuple[str, ...]:
    """A ledger key without its attempt: ``<wf>/<activity>/<attempt>[/<batch>]`` -> (activity[, batch])."""
    _, activity_id, _, *batch = str(entry["request_key"]).split("/")
    return (activity_id, *batch)


def _set_faults(model_server: str, rules: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{model_server}/admin/faults",
        data=json.dumps(rules).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def business_rows(stack: Any, cids: list[str]) -> tuple[dict[str, list[tuple[str, int]]], dict[str, int]]:
    """Refunds (order, amount) and ticket counts per conversation, from the business database."""
    with sqlite3.connect(stack.config.data_dir / "business.sqlite3") as conn:
        refunds = conn.execute("SELECT order_id, amount_cents, idempotency_key FROM refunds").fetchall()
        tickets = conn.execute("SELECT idempotency_key FROM tickets").fetchall()
    by_cid: dict[str, list[tuple[str, int]]] = {cid: [] for cid in cids}
    for order_id, amount, key in refunds:
        if (cid := key.split("/", 1)[0]) in by_cid:
            by_cid[cid].append((order_id, amount))
    ticket_counts = {cid: sum(1 for (key,) in tickets if key.startswith(f"{cid}/")) for cid in cids}
    return by_cid, ticket_counts


async def run_drill(
    stack: Any,
    client: Client,
    *,
    conversations: int,
    kills: int,
    concurrency: int = 5,
    kill_window_s: tuple[float, float] = (0.5, 2.5),
    seed: int | None = None,
    model_delay_s: float = 1.5,
    timeout_s: float = 900,
) -> Summary:
    began_at = time.monotonic()
    model_server = stack.config.model_server_url.removesuffix("/v1")
    schedule = KillSchedule(KILL_PLAN, kills, frozenset({TEMPORAL}), kill_window_s, seed)
    customer, cids, results, kill_log = await converse_while_killing(
        stack, client, "drill-crash", conversations, concurrency, schedule, model_delay_s, timeout_s
    )
    for kill, ready in kill_log:
        after = [t for t in customer.answered_at if t >= ready]
        kill.resume_s = round(min(after) - ready, 1) if after else None
    await print_failures(client, cids, results)
    summary = await judge(stack, client, cids, kill_log, model_server)
    summary.resends, summary.slowest_request_s = customer.resends, round(customer.slowest_s, 1)
    summary.duration_s = round(time.monotonic() - began_at, 1)
    return summary


async def converse_while_killing(
    stack: Any,
    client: Client,
    prefix: str,
    conversations: int,
    concurrency: int,
    schedule: KillSchedule,
    model_delay_s: float,
    timeout_s: float,
) -> tuple[Customer, list[str], list[Any], list[tuple[Kill, float]]]:
    """``conversations`` drill conversations (ids ``<prefix>-<run>-<n>``) while ``schedule`` is
    carried out, and more if they all end before it is (see :func:`_talk_while_killing`): the
    patient customer, every id, each conversation's outcome, and the kills with the moment each
    killed process was ready again."""
    customer = Customer(Conversations(client, patience_s=CLIENT_PATIENCE_S))
    run = uuid.uuid4().hex[:6]
    cids: list[str] = []

    def new_cid() -> str:
        cids.append(f"{prefix}-{run}-{len(cids):03d}")
        return cids[-1]

    first_wave = [new_cid() for _ in range(conversations)]
    model_server = stack.config.model_server_url.removesuffix("/v1")
    # The simulator answers in milliseconds, so a kill would almost never find a model call
    # running; slowed down, kills cut calls in flight and the drill proves they are told apart.
    faults = [{"kind": "slow", "delay_s": model_delay_s, "endpoint": "chat.completions", "match": f"{prefix}-{run}-"}]
    _set_faults(model_server, faults)
    stop = asyncio.Event()
    try:
        killer = _killer(stack, schedule, stop, model_server, faults)
        results, kill_log = await _talk_while_killing(
            customer, first_wave, new_cid, killer, stop, concurrency, timeout_s
        )
    finally:
        _set_faults(model_server, [])
    return customer, cids, results, kill_log


async def _talk_while_killing(
    customer: Customer,
    first_wave: list[str],
    new_cid: Callable[[], str],
    killer: Coroutine[Any, Any, list[tuple[Kill, float]]],
    stop: asyncio.Event,
    concurrency: int,
    timeout_s: float,
) -> tuple[list[Any], list[tuple[Kill, float]]]:
    """Every conversation's requests, while ``killer`` kills processes until ``stop``; (outcomes,
    kills with the moment each process was back). A killed process that does not come back ends
    the drill; otherwise the killer finishes its kill (the process is back) before this returns.

    The conversations outlast the kill plan: on a fast machine ``first_wave`` can end before the
    last kill (each kill waits for a call in flight), so while kills remain another wave of
    ``concurrency`` conversations (ids from ``new_cid``) starts as the previous one ends. A drill
    whose plan ran out of conversations would prove nothing about the kills it skipped."""
    gate = asyncio.Semaphore(concurrency)

    async def one(cid: str) -> None:
        async with gate:
            await _conversation(customer, cid)

    def launch(cids: list[str]) -> asyncio.Future[list[Any]]:
        return asyncio.ensure_future(asyncio.gather(*(one(c) for c in cids), return_exceptions=True))

    killing = asyncio.create_task(killer)
    talking = launch(first_wave)
    results: list[Any] = []
    deadline = time.monotonic() + timeout_s
    watched: set[asyncio.Future[Any]] = {talking, killing}
    try:
        while True:
            done, _ = await asyncio.wait(
                watched, timeout=deadline - time.monotonic(), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise TimeoutError(f"the conversations did not finish within {timeout_s:.0f} s")
            if killing in done:
                if (failure := killing.exception()) is not None:
                    raise RuntimeError(f"a killed process did not come back: {failure}") from failure
                watched.discard(killing)
            if talking in done:
                results += talking.result()
                if killing.done():
                    break
                watched.discard(talking)
                talking = launch([new_cid() for _ in range(concurrency)])
                watched.add(talking)
    finally:
        talking.cancel()
        stop.set()
        failed = killing.done() and killing.exception() is not None
        kill_log = [] if failed else await killing
    return results, kill_log


async def failure_trail(client: Client, cid: str) -> list[str]:
    """What went wrong in one conversation, from its history: every failed or timed-out activity,
    Nexus operation and workflow task, with its decoded failure message. The drills print it for
    each conversation that raised, before the stack (and its history) is gone."""
    failed = {
        "ACTIVITY_TASK_FAILED": "activity_task_failed_event_attributes",
        "ACTIVITY_TASK_TIMED_OUT": "activity_task_timed_out_event_attributes",
        "NEXUS_OPERATION_FAILED": "nexus_operation_failed_event_attributes",
        "NEXUS_OPERATION_TIMED_OUT": "nexus_operation_timed_out_event_attributes",
        "WORKFLOW_TASK_FAILED": "workflow_task_failed_event_attributes",
    }
    trail = []
    async for event in client.get_workflow_handle(cid).fetch_history_events():
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        if (field := failed.get(name)) is None:
            continue
        failure = getattr(event, field).failure
        message = str(await client.data_converter.decode_failure(failure)) if failure.ByteSize() else ""
        trail.append(f"{event.event_id} {name}: {message}")
    return trail


async def print_failures(client: Client, cids: list[str], results: list[Any]) -> None:
    """One line per conversation that raised, then its failure trail."""
    for cid, result in zip(cids, results, strict=False):
        if isinstance(result, BaseException):
            print(f"{cid} raised {result!r}")
            for line in await failure_trail(client, cid):
                print(f"  {line}")


async def judge(
    stack: Any, client: Client, cids: list[str], kill_log: list[tuple[Kill, float]], model_server: str
) -> Summary:
    """What the customers meant against what happened: refunds, approvals, messages, paid calls."""
    summaries: dict[str, ConversationSummary | None] = {}
    for cid in cids:
        handle = client.get_workflow_handle(cid, result_type=ConversationSummary)
        desc = await handle.describe()
        summaries[cid] = await handle.result() if desc.status is not None and desc.status.name == "COMPLETED" else None
    agent_kills = [datetime.fromisoformat(k.killed_at) for k, _ in kill_log if AGENT_WORKER in k.targets]
    entries = ledger(model_server)
    verdicts: dict[str, list[str]] = {"paid_once": [], "in_flight": [], "paid_twice": []}
    for cid in cids:
        own = calls_of(entries, cid) + calls_of(entries, cid, endpoint="embeddings")
        for name, keys in classify(own, agent_kills).items():
            verdicts[name] += keys
    refunds, tickets = business_rows(stack, cids)
    completed = [s for s in summaries.values() if s is not None]
    return Summary(
        conversations=len(cids),
        completed_conversations=len(completed),
        kills=[k for k, _ in kill_log],
        model_calls=sum(len(v) for v in verdicts.values()),
        paid_once=len(verdicts["paid_once"]),
        in_flight_repeats=len(verdicts["in_flight"]),
        paid_twice=len(verdicts["paid_twice"]),
        refunds=sum(len(r) for r in refunds.values()),
        refunds_asked=len(EXPECTED_REFUNDS) * len(cids),
        conversations_with_wrong_refunds=sum(1 for r in refunds.values() if sorted(r) != sorted(EXPECTED_REFUNDS)),
        extra_approvals=sum(
            max(0, len(s.approvals) - 1) + sum(a.status != ApprovalStatus.EXECUTED for a in s.approvals)
            for s in completed
        ),
        escalation_tickets=sum(tickets.values()),
        messages_processed_twice=sum(1 for s in completed if s.turns != MESSAGES),
        resends=0,
        slowest_request_s=0.0,
        duration_s=0.0,
        paid_twice_keys=verdicts["paid_twice"],
    )
