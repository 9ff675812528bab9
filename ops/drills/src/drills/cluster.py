"""Cluster drill: support conversations on the self-hosted cluster while server nodes and then
PostgreSQL are SIGKILLed and restarted.

The cluster is the dev stack's cluster mode (three all-role ``temporal-server`` nodes on
PostgreSQL, mTLS, the JWT authorizer) and clients reach it the way they would in production:
through one address that balances over the live frontends (the stack's front door, HAProxy in TCP
mode, TLS passing through). The conversations are the crash drill's (:mod:`drills.crash`: a
policy question, a small refund paid at once, a large one after its approval, the end), all in
flight together (and more, a wave at a time, if they end before the last kill), with the
production timeouts; the clients retry as the SDK does and resend
with the same request id when their patience runs out.

The kills, in order (:data:`CLUSTER_KILL_PLAN`), each once a model call is in flight and each held
down for a while as a scheduler's restart would be: node ``temporal-1``, then ``temporal-2``, then
PostgreSQL (SIGKILL of the postmaster and every backend, restarted on the same data directory,
so it runs crash recovery).

The verdict:

- every conversation completed (``lost_conversations`` 0), each message processed once;
- no model or embedding call whose answer history had recorded was paid again
  (``repeated_recorded_calls``: a paid call of an activity that began after history recorded
  that activity's completion); a call paid again because its first answer never reached history
  (a node died while the completion was on its way) is counted apart (``unrecorded_repeats``);
- exactly the refunds asked for (``duplicate_refunds`` 0), one approval each, no escalation;
- per kill, ``resume_s``: from the restarted process being ready to the next workflow task any
  drill conversation completed (from the histories' event times), and ``after_kill_s``: from the
  kill to the next one (how long the cluster stopped making progress, if at all).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from agent.testing import began, calls_of, ledger
from drills.crash import (
    EXPECTED_REFUNDS,
    Customer,
    Kill,
    KillSchedule,
    Summary,
    business_rows,
    converse_while_killing,
    judge,
    print_failures,
)

POSTGRES = "postgres"
CLUSTER_KILL_PLAN: tuple[tuple[str, ...], ...] = (("temporal-1",), ("temporal-2",), (POSTGRES,))
# Each kill 2-5 s after the previous process is back, every target held down SERVER_DOWN_S.
DEFAULT_SCHEDULE = KillSchedule(
    CLUSTER_KILL_PLAN, len(CLUSTER_KILL_PLAN), frozenset(n for kill in CLUSTER_KILL_PLAN for n in kill), (2.0, 5.0)
)
RUN_PREFIX = "drill-cluster"


@dataclass
class ClusterKill(Kill):
    after_kill_s: float | None = None
    """From the kill to the next completed workflow task of a drill conversation."""


@dataclass
class ClusterSummary:
    conversations: int
    completed_conversations: int
    lost_conversations: int
    server_kills: int
    db_restarts: int
    kills: list[ClusterKill]
    model_calls: int
    recorded_calls: int
    repeated_recorded_calls: int
    unrecorded_repeats: int
    refunds: int
    refunds_asked: int
    duplicate_refunds: int
    conversations_with_wrong_refunds: int
    extra_approvals: int
    escalation_tickets: int
    messages_processed_twice: int
    resends: int
    slowest_request_s: float
    duration_s: float
    repeated_recorded_keys: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return (
            self.lost_conversations == 0
            and self.repeated_recorded_calls == 0
            and self.duplicate_refunds == 0
            and self.conversations_with_wrong_refunds == 0
            and self.extra_approvals == 0
            and self.escalation_tickets == 0
            and self.messages_processed_twice == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The kills and the verdict, as the drill prints them."""
        rows = [f"{'kill':<12} {'at':<9} {'down_s':>7} {'resume_s':>9} {'after_kill_s':>13}"]
        for kill in self.kills:
            rows.append(
                f"{'+'.join(kill.targets):<12} {kill.killed_at[11:19]:<9} {kill.down_s:>7.1f} "
                f"{_figure(kill.resume_s):>9} {_figure(kill.after_kill_s):>13}"
            )
        rows += [
            "",
            f"conversations {self.completed_conversations}/{self.conversations} completed "
            f"(lost {self.lost_conversations}); server kills {self.server_kills}, database restarts {self.db_restarts}",
            f"model calls {self.model_calls} (recorded in history {self.recorded_calls}): repeated after "
            f"recording {self.repeated_recorded_calls}, repeated before recording {self.unrecorded_repeats}",
            f"refunds {self.refunds} of {self.refunds_asked} asked (duplicates {self.duplicate_refunds}), "
            f"extra approvals {self.extra_approvals}, escalations {self.escalation_tickets}, "
            f"messages processed twice {self.messages_processed_twice}",
            f"client resends {self.resends}, slowest request {self.slowest_request_s:.1f} s, "
            f"drill {self.duration_s:.0f} s",
        ]
        return "\n".join(rows)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@dataclass
class _History:
    """What the verdict needs of one conversation's history: when each activity's completion was
    recorded, and when each workflow task completed."""

    completed_activities: dict[str, datetime]
    workflow_tasks: list[datetime]


async def _history(client: Client, cid: str) -> _History:
    scheduled: dict[int, str] = {}
    completed: dict[str, datetime] = {}
    tasks: list[datetime] = []
    async for event in client.get_workflow_handle(cid).fetch_history_events():
        at = event.event_time.ToDatetime(tzinfo=UTC)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed[scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]] = at
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks.append(at)
    return _History(completed, tasks)


def judge_calls(entries: list[dict[str, Any]], history: _History) -> dict[str, list[str]]:
    """Sort one conversation's paid calls (``ok`` in the simulator's ledger, keyed
    ``<workflow>/<activity>/<attempt>[/<batch>]``) against its history: ``recorded`` (the activity's
    completion is in history), ``repeated_recorded`` (paid for an activity whose completion history
    had already recorded when the call began: the cost the system exists to prevent), and
    ``unrecorded_repeats`` (more than one paid call for an activity, none after its recording: an
    answer lost on its way to history)."""
    out: dict[str, list[str]] = {"recorded": [], "repeated_recorded": [], "unrecorded_repeats": []}
    paid: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if entry.get("outcome") == "ok":
            _, activity_id, _, *batch = str(entry["request_key"]).split("/")
            paid[(activity_id, *batch)].append(entry)
    for (activity_id, *_batch), calls in paid.items():
        recorded_at = history.completed_activities.get(activity_id)
        if recorded_at is not None:
            out["recorded"].append(str(calls[0]["request_key"]))
        after = [c for c in calls if recorded_at is not None and began(c) > recorded_at]
        before = [c for c in calls if c not in after]
        out["repeated_recorded"] += [str(c["request_key"]) for c in after]
        out["unrecorded_repeats"] += [str(c["request_key"]) for c in sorted(before, key=began)[:-1]]
    return out


def _next_task_after(histories: list[_History], moment: datetime) -> float | None:
    later = [t for h in histories for t in h.workflow_tasks if t >= moment]
    return round((min(later) - moment).total_seconds(), 1) if later else None


async def run_cluster_drill(
    stack: Any,
    client: Client,
    *,
    conversations: int,
    concurrency: int | None = None,
    schedule: KillSchedule = DEFAULT_SCHEDULE,
    model_delay_s: float = 1.5,
    timeout_s: float = 1200,
) -> ClusterSummary:
    """Every conversation in flight at once (``concurrency`` None) while ``schedule`` is carried out."""
    began_at = time.monotonic()
    model_server = stack.config.model_server_url.removesuffix("/v1")
    customer, cids, results, kill_log = await converse_while_killing(
        stack, client, RUN_PREFIX, conversations, concurrency or conversations, schedule, model_delay_s, timeout_s
    )
    await print_failures(client, cids, results)
    base = await judge(stack, client, cids, kill_log, model_server)
    histories = [await _history(client, cid) for cid in cids]
    entries = ledger(model_server)
    verdicts: dict[str, list[str]] = defaultdict(list)
    for cid, history in zip(cids, histories, strict=True):
        own = calls_of(entries, cid) + calls_of(entries, cid, endpoint="embeddings")
        for name, keys in judge_calls(own, history).items():
            verdicts[name] += keys
    kills = []
    for kill, ready in kill_log:
        # The monotonic moment the process was ready again, on the wall clock the server stamps
        # events with (same machine).
        ready_at = datetime.now(UTC) - timedelta(seconds=time.monotonic() - ready)
        killed_at = datetime.fromisoformat(kill.killed_at)
        kills.append(
            ClusterKill(
                kill.targets,
                kill.killed_at,
                kill.down_s,
                resume_s=_next_task_after(histories, ready_at),
                after_kill_s=_next_task_after(histories, killed_at),
            )
        )
    refunds, _ = business_rows(stack, cids)
    return _summary(base, cids, kills, verdicts, refunds, customer, time.monotonic() - began_at)


def _summary(
    base: Summary,
    cids: list[str],
    kills: list[ClusterKill],
    verdicts: dict[str, list[str]],
    refunds: dict[str, list[tuple[str, int]]],
    customer: Customer,
    duration_s: float,
) -> ClusterSummary:
    duplicates = 0
    for made in refunds.values():
        for refund in set(made):
            duplicates += max(0, made.count(refund) - EXPECTED_REFUNDS.count(refund))
    return ClusterSummary(
        conversations=len(cids),
        completed_conversations=base.completed_conversations,
        lost_conversations=len(cids) - base.completed_conversations,
        server_kills=sum(1 for k in kills if any(t.startswith("temporal-") for t in k.targets)),
        db_restarts=sum(1 for k in kills if POSTGRES in k.targets),
        kills=kills,
        model_calls=base.model_calls,
        recorded_calls=len(verdicts["recorded"]),
        repeated_recorded_calls=len(verdicts["repeated_recorded"]),
        unrecorded_repeats=len(verdicts["unrecorded_repeats"]),
        refunds=base.refunds,
        refunds_asked=base.refunds_asked,
        duplicate_refunds=duplicates,
        conversations_with_wrong_refunds=base.conversations_with_wrong_refunds,
        extra_approvals=base.extra_approvals,
        escalation_tickets=base.escalation_tickets,
        messages_processed_twice=base.messages_processed_twice,
        resends=customer.resends,
        slowest_request_s=round(customer.slowest_s, 1),
        duration_s=round(duration_s, 1),
        repeated_recorded_keys=verdicts["repeated_recorded"],
    )
