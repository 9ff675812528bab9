"""Rollout drill: Worker Deployment Versioning of the agent worker, end to end on a dev server.

On a stack of its own (own ports and data directory), the unversioned agent worker is replaced
by version ``v1`` of deployment ``support-agent``; conversations pinned to v1 wait for a refund
approval; ``v2`` comes up and is ramped; new conversations split between the versions; the
pinned ones are approved and finish on v1; v2 is promoted; a rollback (current back to v1, then a
ramp stopped) is exercised; v1 drains and is retired; the per-version error figures are read
through the stack's own Prometheus, which scrapes both versions. Traffic moves only through the
``rollout`` CLI, as an operator would move it (ops/runbooks/rollout.md).

The retrieval and business workers stay unversioned here: only the agent's workflows move.
Drained means the server's drainage status of v1 reads ``drained`` *and* visibility counts no
open workflow on v1. ``make drill-rollout`` runs this file and keeps the JSON summary in
bench/results/drill-rollout.json (``DRILL_ROLLOUT_OUT``); otherwise it goes to a temp file.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import client_for, customer_of, free_ports, isolated_config
from support.workflow_history import build_ids_of_history
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.client import Client, WorkflowExecutionStatus

from agent.chat.client import Conversations
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart
from agent.testing import eventually
from devstack import prometheus
from devstack.processes import ProcessSpec, http_ok
from devstack.stack import Stack
from rollout.deployment import Deployment, DeploymentState
from rollout.errors import RolloutError
from workerkit.deployment import ENV_BUILD_ID, ENV_DEPLOYMENT_NAME

DEPLOYMENT = "support-agent"
RAMP_PERCENT = 30
# New conversations started during the ramp. Which version a workflow gets is decided per
# workflow id, like a weighted coin; v2's share must land within 4 standard deviations of
# N * p (here 12 of 40, +-11.6), which a correct ramp misses about once in 15,000 runs.
RAMP_SAMPLE = 40
TOLERANCE_SIGMAS = 4
AFTER_PROMOTE_SAMPLE = 6
THRESHOLD_CENTS = 500


@pytest.fixture(scope="module")
def drill_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own dev stack: versioning the agent queues would change routing under the other tests.
    # Not harness.running_stack: the drill needs no knowledge base, and ingesting it takes minutes.
    stack = Stack(isolated_config(tmp_path_factory.mktemp("drill-rollout")))
    try:
        stack.up(log=lambda line: None)
        yield stack
    finally:
        stack.down(log=lambda line: None)


def versioned_agent(stack: Stack, build_id: str) -> ProcessSpec:
    """The stack's agent worker as version ``build_id``, on health and metrics ports of its own."""
    base = next(s for s in stack.specs() if s.name == "agent-worker")
    health, metrics = free_ports(2)
    host = stack.config.host
    return replace(
        base,
        name=f"agent-worker-{build_id}",
        ports=[health, metrics],
        ready=http_ok(f"http://{host}:{health}/readyz"),
        env={
            **base.env,
            "AGENT_HEALTH_PORT": str(health),
            "AGENT_METRICS_PORT": str(metrics),
            ENV_DEPLOYMENT_NAME: DEPLOYMENT,
            ENV_BUILD_ID: build_id,
        },
    )


def rollout_cli(stack: Stack, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEMPORAL_ADDRESS": stack.temporal_address, "TEMPORAL_NAMESPACE": "agents"}
    for name in ("TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "rollout", *args, "--deployment", DEPLOYMENT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if expect_ok:
        assert done.returncode == 0, f"rollout {' '.join(args)} failed: {done.stderr}"
    return done


def cli_json(stack: Stack, *args: str) -> dict[str, Any]:
    return json.loads(rollout_cli(stack, *args, "--json").stdout)


async def version_of(client: Client, workflow_id: str) -> str:
    """The build id a conversation is pinned to, once its first workflow task has run."""
    info = (await client.get_workflow_handle(workflow_id).describe()).raw_description.workflow_execution_info
    versioning = info.versioning_info
    if versioning.deployment_version.build_id:
        assert versioning.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED, workflow_id
    return versioning.deployment_version.build_id


async def start_conversations(client: Client, conversations: Conversations, n: int, label: str) -> dict[str, str]:
    """Start ``n`` conversations and wait until each is pinned: {workflow id: build id}."""
    start = ConversationStart(customer_id="cust-ada")
    ids = await asyncio.gather(
        *(conversations.start(start, f"drill-{label}-{uuid.uuid4().hex[:10]}") for _ in range(n))
    )
    pinned: dict[str, str] = {}

    async def all_pinned() -> bool:
        for cid in ids:
            if cid not in pinned and (build := await version_of(client, cid)):
                pinned[cid] = build
        return len(pinned) == n

    await eventually(all_pinned, 60, f"{n} new conversations to run their first workflow task")
    return pinned


async def refund_waiting_for_approval(conversations: Conversations, order: str, euros: int) -> str:
    cid = await conversations.start(
        ConversationStart(
            settings=ConversationSettings(approval_threshold_cents=THRESHOLD_CENTS), customer_id=customer_of(order)
        ),
        f"drill-pinned-{uuid.uuid4().hex[:10]}",
    )
    reply = await conversations.send(cid, f"Please refund €{euros} on order {order}, it arrived damaged")
    assert reply.approvals_requested == ["APR-1"], reply.text
    return cid


def by_version(state: DeploymentState) -> dict[str, dict[str, Any]]:
    return {
        v.build_id: {"state": v.status, "drainage": v.drainage, "pollers": v.pollers, "running": v.running}
        for v in state.versions
    }


@pytest.mark.timeout(600)
async def test_rollout_drill(drill_stack: Stack, tmp_path: Path) -> None:
    stack = drill_stack
    client = await client_for(stack, "agents")
    conversations = Conversations(client)
    deployment = Deployment(client, DEPLOYMENT)
    steps: list[dict[str, Any]] = []
    started: list[str] = []

    async def record(step: str, **extra: Any) -> DeploymentState:
        state = await deployment.state()
        steps.append({"step": step, "routing": state.routing.describe(), "versions": by_version(state), **extra})
        return state

    async def polling(build_id: str) -> bool:
        try:
            version = (await deployment.state()).version(build_id)
        except RolloutError:  # not registered yet: its first worker registers it on polling
            return False
        return bool(version and version.pollers)

    v1, v2 = versioned_agent(stack, "v1"), versioned_agent(stack, "v2")
    stack.processes.stop("agent-worker")
    try:
        # --- v1 only, current; conversations pinned to it wait for a person -------------------
        # The stack's Prometheus scrapes both versions from the start, as a cluster's would.
        assert prometheus.binary(), "the drill reads error rates from Prometheus: run `make prometheus`"
        prometheus.add_targets(
            stack.config, "drill-rollout", {spec.name: f"{stack.config.host}:{spec.ports[1]}" for spec in (v1, v2)}
        )
        stack.processes.start_all([v1])
        await eventually(lambda: polling("v1"), 60, "v1 workers to register and poll")
        promoted = cli_json(stack, "promote", "v1")
        assert promoted["after"]["current"] == "v1"
        pinned = [
            await refund_waiting_for_approval(conversations, "ORD-1001", 6),
            await refund_waiting_for_approval(conversations, "ORD-1006", 7),
        ]
        started += pinned
        assert [await version_of(client, cid) for cid in pinned] == ["v1", "v1"]
        await record("v1 current, 2 conversations waiting for approval", pinned_waiting={"v1": len(pinned)})

        # --- v2 deployed: no traffic until it is ramped ----------------------------------------
        stack.processes.start_all([v2])
        await eventually(lambda: polling("v2"), 60, "v2 workers to register and poll")
        with urllib.request.urlopen(f"http://{stack.config.host}:{v2.ports[1]}/metrics", timeout=5) as response:
            assert 'build_id="v2"' in response.read().decode()  # its metrics are told apart by version
        refused = rollout_cli(stack, "ramp", "v9", "10", expect_ok=False)
        assert refused.returncode == 1 and "'v9' is not part of deployment" in refused.stderr, refused.stderr
        state = await record("v2 deployed, not ramped")
        assert state.routing.current == "v1" and state.version("v2").status == "inactive"

        # --- ramp: new conversations split between the versions --------------------------------
        ramped = cli_json(stack, "ramp", "v2", str(RAMP_PERCENT))
        assert (ramped["after"]["ramping"], ramped["after"]["percentage"]) == ("v2", RAMP_PERCENT)
        split = await start_conversations(client, conversations, RAMP_SAMPLE, "ramp")
        started += list(split)
        counts = Counter(split.values())
        expected = RAMP_SAMPLE * RAMP_PERCENT / 100
        sigma = math.sqrt(RAMP_SAMPLE * RAMP_PERCENT / 100 * (1 - RAMP_PERCENT / 100))
        assert set(counts) == {"v1", "v2"}, counts
        assert abs(counts["v2"] - expected) <= TOLERANCE_SIGMAS * sigma, (counts, expected, sigma)
        state = await record(
            f"v2 ramped to {RAMP_PERCENT}%",
            new_conversations={"v1": counts["v1"], "v2": counts["v2"]},
            expected_on_v2=f"{expected:g} +- {TOLERANCE_SIGMAS * sigma:.1f}",
        )
        # The tool's visibility count agrees with what each workflow says of itself.
        assert state.version("v1").running == counts["v1"] + len(pinned)
        assert state.version("v2").running == counts["v2"]

        # --- the pinned conversations are approved and finish on v1 ----------------------------
        for cid in pinned:
            outcome = await conversations.decide(cid, "APR-1", approve=True, approver="lead-ana")
            assert outcome.status == ApprovalStatus.EXECUTED and outcome.refund_id
            await conversations.end(cid, "refund done")
            assert (await client.get_workflow_handle(cid).describe()).status == WorkflowExecutionStatus.COMPLETED
            assert await build_ids_of_history(client, cid) == {"v1"}, cid
        await record("pinned conversations approved and completed on v1", pinned_completed_on={"v1": len(pinned)})

        # --- promote v2: everything new goes there, v1 drains what it still has ----------------
        promoted = cli_json(stack, "promote", "v2")
        assert promoted["before"]["current"] == "v1" and promoted["after"] == {
            "current": "v2",
            "ramping": None,
            "percentage": 0.0,
        }
        after = await start_conversations(client, conversations, AFTER_PROMOTE_SAMPLE, "promoted")
        started += list(after)
        assert set(after.values()) == {"v2"}, after
        state = await record("v2 promoted", new_conversations=dict(Counter(after.values())))
        assert state.version("v1").status == "draining" and state.version("v1").running == counts["v1"]

        # --- rollback: current back to v1, then forward again, then a ramp stopped -------------
        back = cli_json(stack, "rollback")
        assert (back["before"]["current"], back["after"]["current"]) == ("v2", "v1")
        during = await start_conversations(client, conversations, AFTER_PROMOTE_SAMPLE, "rolled-back")
        started += list(during)
        assert set(during.values()) == {"v1"}, during
        await record("rolled back to v1", new_conversations=dict(Counter(during.values())))
        cli_json(stack, "promote", "v2")
        cli_json(stack, "ramp", "v1", "50")
        stopped = cli_json(stack, "rollback")
        assert stopped["before"]["ramping"] == "v1" and stopped["after"] == {
            "current": "v2",
            "ramping": None,
            "percentage": 0.0,
        }
        await record("v2 current again; a 50% ramp of v1 rolled back")

        # --- v1 drains once its last conversations end; then it is retired ---------------------
        on_v1 = [cid for cid in started if cid not in pinned and await version_of(client, cid) == "v1"]
        await asyncio.gather(*(conversations.end(cid, "drill over") for cid in on_v1))

        async def drained() -> bool:
            version = (await deployment.state()).version("v1")
            return version is not None and version.drainage == "drained" and version.running == 0

        await eventually(drained, 90, "v1 to report drained with no open workflows")
        await record("v1 drained", ended_on_v1=len(on_v1))

        # --- the error figures per version from metrics, as the operator reads them -------------
        # Every workflow of both versions closed normally: no failures, and v1's completions are
        # counted under its own build id (the counter moved while Prometheus scraped it).
        from_metrics: dict[str, Any] = {}

        async def counted_by_version() -> bool:
            from_metrics.update(cli_json(stack, "status", "--prometheus-url", prometheus.url(stack.config)))
            versions = {v["build_id"]: v for v in from_metrics["versions"]}
            return versions["v1"]["closed"] > 0

        await eventually(counted_by_version, 60, "Prometheus to count v1's completed conversations")
        per_version = {v["build_id"]: v for v in from_metrics["versions"]}
        assert {v["error_source"] for v in per_version.values()} == {"prometheus"}, per_version
        assert per_version["v1"]["failed"] == 0 and per_version["v2"]["failed"] == 0, per_version
        await record(
            "error figures from Prometheus",
            prometheus={
                b: {"closed": round(v["closed"], 1), "failed": v["failed"], "errors_per_min": v["errors_per_min"]}
                for b, v in per_version.items()
            },
        )
        stack.processes.stop(v1.name)
        status = cli_json(stack, "status")
        assert status["routing"]["current"] == "v2"
        assert {v["build_id"]: v["drainage"] for v in status["versions"]}["v1"] == "drained"
        await record("v1 workers stopped (retired)")
    finally:
        prometheus.remove_targets(stack.config, "drill-rollout")
        for spec in (v2, v1):
            stack.processes.stop(spec.name)

    summary = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "deployment": DEPLOYMENT,
        "namespace": "agents",
        "ramp_percent": RAMP_PERCENT,
        "ramp_sample": RAMP_SAMPLE,
        "drained_means": "drainage status 'drained' and no open workflow on the version in visibility",
        "unversioned": ["retrieval-worker", "business-worker"],
        "steps": steps,
    }
    out = Path(os.environ.get("DRILL_ROLLOUT_OUT") or tmp_path / "drill-rollout.json")
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
