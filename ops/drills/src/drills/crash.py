"""Crash drill: support conversations while the agent worker is SIGKILLed and restarted.

Each ledger model call is classified against the workflow histories and the kill times:
``completed`` (the attempt whose result history holds), ``in_flight`` (an earlier attempt
that was running when a kill hit; the model was paid, the answer was lost with the process)
or ``paid_twice`` (anything else: a call repeated after its result was recorded; must be 0).
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from agent.chat.client import EXIT_REJECTED, ChatError, Conversations
from agent.support.types import ConversationSettings, ConversationStart
from agent.testing import at, attempt_of, calls_of, ledger, start, stop

AGENT_WORKER = "agent-worker"
POLICY_QUESTION = "How long do refunds take?"
# $2 on the seeded USD order (total $268): up to 134 conversations' refunds fit its total.
REFUND_REQUEST = "Please refund $2 on order ORD-1004, it arrived damaged."
# A killed model attempt is retried after its start-to-close timeout: 5 s keeps the drill short
# while staying far above the simulator's answer time. Production keeps its 60 s default.
# How long a kill waits for a model call to be in flight before it strikes anyway.
IN_FLIGHT_WAIT_S = 15.0
DRILL_SETTINGS = ConversationSettings(approval_threshold_cents=100, model_timeout_s=5.0, model_max_attempts=10)


@dataclass
class Summary:
    conversations: int
    completed_conversations: int
    kills: int
    model_calls: int
    completed_in_history: int
    in_flight_repeats: int
    paid_twice: int
    refunds: int
    duplicate_refunds: int
    approved_without_one_refund: int
    duration_s: float
    paid_twice_keys: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return (
            self.completed_conversations == self.conversations
            and self.paid_twice == 0
            and self.duplicate_refunds == 0
            and self.approved_without_one_refund == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _conversation(conversations: Conversations, cid: str) -> None:
    """The demo's path: a policy question, a refund above the threshold, its approval, the end.
    Updates are retried: one can be lost with the worker that was running it."""
    await conversations.start(ConversationStart(settings=DRILL_SETTINGS), cid)
    await _retrying(lambda: conversations.send(cid, POLICY_QUESTION))
    await _retrying(lambda: conversations.send(cid, REFUND_REQUEST))
    await _retrying(lambda: conversations.decide(cid, "APR-1", approve=True, approver="drill"))
    await _retrying(lambda: conversations.end(cid))


async def _retrying(call: Any, attempts: int = 20) -> Any:
    for attempt in range(attempts):
        try:
            return await call()
        except ChatError as err:
            # A refusal after the first try means an earlier try already took effect.
            if err.exit_code == EXIT_REJECTED and attempt:
                return None
            if err.exit_code == EXIT_REJECTED or attempt == attempts - 1:
                raise
            await asyncio.sleep(1)
    return None


async def _killer(stack: Any, kills: int, window_s: tuple[float, float], stop_at: asyncio.Event,
                  rng: random.Random, model_server: str) -> list[datetime]:
    """Kills at a random moment of the window, then as soon as a model call is in flight, so every
    kill has a paid answer to lose (a random moment alone can fall while all conversations wait)."""
    times: list[datetime] = []
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(*window_s))
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        while not stop_at.is_set() and time.monotonic() < deadline:
            if await asyncio.to_thread(_chat_calls_in_flight, model_server):
                break
            await asyncio.sleep(0.05)
        if stop_at.is_set():
            break
        times.append(datetime.now(UTC))
        await asyncio.to_thread(stop, stack, AGENT_WORKER, kill=True)
        await asyncio.to_thread(start, stack, AGENT_WORKER)
    return times


async def _completed_attempts(client: Client, cid: str) -> dict[str, int]:
    """Activity id -> the attempt whose result the history recorded."""
    scheduled: dict[int, str] = {}
    started: dict[int, int] = {}
    done: dict[str, int] = {}
    async for event in client.get_workflow_handle(cid).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
        elif event.HasField("activity_task_started_event_attributes"):
            a = event.activity_task_started_event_attributes
            started[a.scheduled_event_id] = a.attempt
        elif event.HasField("activity_task_completed_event_attributes"):
            sid = event.activity_task_completed_event_attributes.scheduled_event_id
            done[scheduled[sid]] = started[sid]
    return done


def classify(entries: list[dict[str, Any]], completed: dict[str, int], kills: list[datetime],
             slack: timedelta = timedelta(milliseconds=250)) -> dict[str, list[str]]:
    """Sort one conversation's model calls into completed / in_flight / paid_twice."""
    out: dict[str, list[str]] = {"completed": [], "in_flight": [], "paid_twice": []}
    seen: set[tuple[str, int]] = set()
    for entry in sorted(entries, key=at):
        activity_id, attempt = attempt_of(entry)
        key = str(entry["request_key"])
        final = completed.get(activity_id)
        if (activity_id, attempt) in seen or final is None or attempt > final:
            out["paid_twice"].append(key)
        elif attempt == final:
            out["completed"].append(key)
        elif _killed_in_flight(entries, entry, kills, slack):
            out["in_flight"].append(key)
        else:
            out["paid_twice"].append(key)
        seen.add((activity_id, attempt))
    return out


def _killed_in_flight(
    entries: list[dict[str, Any]], entry: dict[str, Any], kills: list[datetime], slack: timedelta
) -> bool:
    """A kill fell between this attempt's call and the next attempt's call. The ledger stamps a
    call when it is answered, so the call began ``latency_ms`` earlier; ``slack`` absorbs the
    clock readings of two processes."""
    activity_id, attempt = attempt_of(entry)
    later = [_began(e) for e in entries if attempt_of(e) == (activity_id, attempt + 1)]
    until = min(later) if later else datetime.max.replace(tzinfo=UTC)
    return any(_began(entry) - slack <= k <= until for k in kills)


def _began(entry: dict[str, Any]) -> datetime:
    return at(entry) - timedelta(milliseconds=float(entry.get("latency_ms") or 0))


def _chat_calls_in_flight(model_server: str) -> float:
    with urllib.request.urlopen(f"{model_server}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "modelserver_requests_in_flight":
            return sum(s.value for s in family.samples if s.labels.get("endpoint") == "chat.completions")
    return 0.0


def _set_faults(model_server: str, rules: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{model_server}/admin/faults", data=json.dumps(rules).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def _refunds(stack: Any, cids: list[str]) -> tuple[int, int, int]:
    with sqlite3.connect(stack.config.data_dir / "business.sqlite3") as conn:
        rows = conn.execute("SELECT idempotency_key FROM refunds").fetchall()
    keys = [k for (k,) in rows if k.split("/", 1)[0] in cids]
    per_cid = {cid: sum(1 for k in keys if k.startswith(f"{cid}/")) for cid in cids}
    return len(keys), len(keys) - len(set(keys)), sum(1 for n in per_cid.values() if n != 1)


async def run_drill(stack: Any, client: Client, *, conversations: int, kills: int, concurrency: int = 5,
                    kill_window_s: tuple[float, float] = (0.5, 2.5), seed: int | None = None,
                    model_delay_s: float = 1.5, timeout_s: float = 600) -> Summary:
    began = time.monotonic()
    rng = random.Random(seed)
    chat = Conversations(client)
    run = uuid.uuid4().hex[:6]
    cids = [f"drill-crash-{run}-{i:03d}" for i in range(conversations)]
    gate = asyncio.Semaphore(concurrency)
    finished = asyncio.Event()

    async def one(cid: str) -> bool:
        async with gate:
            await _conversation(chat, cid)
            return True

    model_server = stack.config.model_server_url.removesuffix("/v1")
    # The simulator answers in milliseconds, so a kill would almost never find a model call
    # running; slowed down, kills cut calls in flight and the drill proves they are told apart.
    _set_faults(model_server, [{"kind": "slow", "delay_s": model_delay_s, "endpoint": "chat.completions",
                                "match": f"drill-crash-{run}-"}])
    killer = asyncio.create_task(_killer(stack, kills, kill_window_s, finished, rng, model_server))
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(one(c) for c in cids), return_exceptions=True), timeout_s
        )
    finally:
        finished.set()
        _set_faults(model_server, [])
    kill_times = await killer
    completed_ok = 0
    for cid in cids:
        desc = await client.get_workflow_handle(cid).describe()
        completed_ok += desc.status is not None and desc.status.name == "COMPLETED"
    entries = ledger(model_server)
    sorted_calls: dict[str, list[str]] = {"completed": [], "in_flight": [], "paid_twice": []}
    for cid in cids:
        parts = classify(calls_of(entries, cid), await _completed_attempts(client, cid), kill_times)
        for name, keys in parts.items():
            sorted_calls[name] += keys
    refunds, duplicates, unmatched = _refunds(stack, cids)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        print(f"{len(failures)} conversation(s) raised; first: {failures[0]!r}")
    return Summary(
        conversations=conversations,
        completed_conversations=completed_ok,
        kills=len(kill_times),
        model_calls=sum(len(v) for v in sorted_calls.values()),
        completed_in_history=len(sorted_calls["completed"]),
        in_flight_repeats=len(sorted_calls["in_flight"]),
        paid_twice=len(sorted_calls["paid_twice"]),
        refunds=refunds,
        duplicate_refunds=duplicates,
        approved_without_one_refund=unmatched,
        duration_s=round(time.monotonic() - began, 1),
        paid_twice_keys=sorted_calls["paid_twice"],
    )
