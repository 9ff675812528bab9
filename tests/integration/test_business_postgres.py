"""The business worker on PostgreSQL (``make up DB=postgres``): three replicas on one database.

A support conversation makes a refund through them, as on the embedded store; then the race
drill (:mod:`drills.business_race`) sends refunds racing over shared idempotency keys through
Nexus while one replica is SIGKILLed and restarted. ``make drill-business`` runs the drill at
full size (``DRILL_BUSINESS_KEYS``, ``DRILL_BUSINESS_PER_KEY``) and writes ``DRILL_BUSINESS_OUT``.
Last, ``python -m devstack --db postgres up`` as a user runs it: its data survives ``down``/``up``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import client_for, free_ports, running_stack

from agent.chat.client import Conversations
from agent.support.types import ConversationSettings, ConversationStart
from business.store import SEED_ORDERS
from devstack import postgres
from devstack.config import PORTS, StackConfig
from devstack.stack import Stack
from drills import business_race
from drills.bench_report import report_header
from drills.business_race import Plan, commit, judge, run_race, sigkill, table

REPLICAS = 3
KILLED = "business-worker-2"


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("pg-stack"), db="postgres", business_replicas=REPLICAS) as stack:
        yield stack


def business_rows(stack: Stack, sql: str) -> list[list[str]]:
    assert stack.worker_pg is not None
    return postgres.psql(stack.worker_pg, "business", sql)


def test_the_stack_runs_replicas_on_one_database(pg_stack: Stack) -> None:
    running = {s.name for s in pg_stack.status() if s.running}
    assert {"postgres", "business-worker", "business-worker-2", "business-worker-3"} <= running
    assert business_rows(pg_stack, "SELECT max(version) FROM schema_migrations") == [["1"]]


async def test_support_conversation_refunds_once_on_postgres(pg_stack: Stack) -> None:
    conversations = Conversations(await client_for(pg_stack, "agents"))
    cid = await conversations.start(
        ConversationStart(
            customer="test",
            # High threshold: the refund goes straight to the business service.
            settings=ConversationSettings(approval_threshold_cents=1_000_000),
            customer_id="cust-edsger",
        ),
        f"test-conv-pg-{uuid.uuid4().hex[:10]}",
    )
    reply = await conversations.send(cid, "Please refund €5 on order ORD-1005")
    assert 'refund_order returned: {"status": "refunded", "refund_id": "RF-' in reply.text, reply.text
    [action] = (await conversations.status(cid)).actions
    assert action.kind == "refund"
    rows = business_rows(
        pg_stack, f"SELECT refund_id, amount_cents FROM refunds WHERE idempotency_key = '{action.idempotency_key}'"
    )
    assert rows == [[action.ref_id, "500"]]


@pytest.mark.timeout(1800)
async def test_refunds_racing_through_nexus_apply_once_while_a_replica_is_killed(pg_stack: Stack) -> None:
    keys = int(os.environ.get("DRILL_BUSINESS_KEYS", "12"))
    per_key = int(os.environ.get("DRILL_BUSINESS_PER_KEY", "5"))
    # Orders the conversation test leaves alone (it refunds ORD-1005).
    orders = {o.order_id: o.total_cents for o in SEED_ORDERS if o.order_id != "ORD-1005"}
    plan = Plan(orders=orders, keys=keys, per_key=per_key, callers=max(1, keys * per_key // 10))

    log = pg_stack.processes.log_path(KILLED)
    refunds_logged_before = log.read_text().count("refund RF-")
    busy_at_kill: list[int] = []

    def kill(name: str) -> None:
        # Killed once it has applied a refund of this run: mid-work, with others in flight.
        deadline = time.monotonic() + 120
        while log.read_text().count("refund RF-") == refunds_logged_before and time.monotonic() < deadline:
            time.sleep(0.05)
        busy_at_kill.append(log.read_text().count("refund RF-") - refunds_logged_before)
        running = pg_stack.processes.running(name)
        assert running is not None, f"{name} is not running"
        sigkill(running.pid)
        while pg_stack.processes.running(name) is not None:
            time.sleep(0.05)

    def restart(name: str) -> None:
        [spec] = [s for s in pg_stack.specs() if s.name == name]
        pg_stack.processes.start(spec)

    # Read before the run: the checkout may move on while it goes.
    measured_commit = commit()
    load_before = os.getloadavg()
    outcome = await run_race(await client_for(pg_stack, "agents"), plan, (KILLED, 0.5, 3.0), kill, restart)
    load_after = os.getloadavg()
    refunds = [
        (key, order, int(amount))
        for key, order, amount in business_rows(pg_stack, "SELECT idempotency_key, order_id, amount_cents FROM refunds")
    ]
    orders_now = [
        (order, int(refunded), int(total))
        for order, refunded, total in business_rows(
            pg_stack, "SELECT order_id, refunded_cents, total_cents FROM orders ORDER BY order_id"
        )
    ]
    verdict = judge(plan, outcome, refunds, orders_now)
    report = {
        **report_header(business_race.__doc__ or ""),
        "what": "refund requests racing over shared idempotency keys through the business Nexus endpoint onto "
        f"{REPLICAS} business worker replicas on one PostgreSQL database; {KILLED} SIGKILLed and restarted mid-run",
        "commit": measured_commit,
        "load": {
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(load_after[0], 2),
            "cpus": os.cpu_count(),
        },
        "plan": {
            "replicas": REPLICAS,
            "keys": plan.keys,
            "requests_per_key": plan.per_key,
            "requests": plan.keys * plan.per_key,
            "caller_workflows": plan.callers,
            "orders": len(plan.orders),
        },
        "kills": [
            {**vars(k), "refunds_it_had_applied_when_killed": busy}
            for k, busy in zip(outcome.kills, busy_at_kill, strict=True)
        ],
        "counts": {k: v for k, v in vars(verdict).items() if k != "latency_s"},
        "timings_s": {"wall": round(outcome.wall_s, 2), "request_latency": verdict.latency_s},
        "passed": verdict.passed,
    }
    text = json.dumps(report, indent=2)
    print(text)
    print(table(report))
    if out := os.environ.get("DRILL_BUSINESS_OUT"):
        Path(out).write_text(text + "\n")
    assert len(outcome.kills) == 1 and outcome.kills[0].restarted_ready_at_s is not None
    assert busy_at_kill[0] > 0, "the replica was killed before it did any work"
    failures = [a.error for a in outcome.answers if a.error]
    assert verdict.failed_requests == 0, failures[:3]
    assert verdict.keys_with_differing_answers == 0, text
    assert verdict.refund_rows_for_drill_keys == plan.keys, text
    assert verdict.rows_with_wrong_amount == 0 and verdict.orders_above_total == 0, text
    assert verdict.orders_not_exactly_refunded == 0, text


def test_make_up_db_postgres_keeps_its_data_across_down_and_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As a user runs it (python -m devstack, what `make up DB=postgres` calls), on free ports.
    monkeypatch.setenv("DEVSTACK_DATA_DIR", str(tmp_path))
    for name, port in zip(PORTS, free_ports(len(PORTS)), strict=True):
        monkeypatch.setenv(PORTS[name][0], str(port))

    def devstack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "devstack", *args], capture_output=True, text=True, timeout=300)

    try:
        first = devstack("--db", "postgres", "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "migrated from schema version 0 to 1" in first.stdout
        status = devstack("status")
        assert status.returncode == 0, status.stdout
        for name in ("postgres", "business-worker", "business-worker-2"):
            assert re.search(rf"^{name} +running", status.stdout, flags=re.MULTILINE), status.stdout
        stack = Stack(StackConfig.from_env("dev"))
        assert stack.worker_pg is not None
        postgres.psql(
            stack.worker_pg,
            "business",
            "INSERT INTO access_refusals (operation, customer_id, target, owner)"
            " VALUES ('get_order', 'cust-test', 'ORD-1001', 'cust-ada');",
        )
        assert devstack("down").returncode == 0
        # No DB= this time: the data directory remembers it.
        again = devstack("up")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already at schema version 1" in again.stdout
        assert postgres.psql(stack.worker_pg, "business", "SELECT customer_id FROM access_refusals") == [["cust-test"]]
    finally:
        down = devstack("down")
    assert down.returncode == 0, down.stderr
    assert devstack("status").returncode == 3
