"""A rollout through the chart, as an operator does it with `helm upgrade`, on chart-rendered
processes against a Temporal dev server (tests/support/chart_processes.py).

v1 is installed (its post-install hook makes it current) and two conversations pinned to it wait
for a refund approval. The chart is upgraded to add v2 and ramp it: the pre-upgrade guard lets it
through, v2's pools start beside v1's (v1's processes untouched), the post-upgrade hook ramps v2.
An upgrade that would retire v1 now is refused by the guard with one sentence. The waiting
conversations are approved and finish on v1. The chart is upgraded to promote v2; v1 drains; only
then does the upgrade that retires v1 pass the guard, v1's pools stop cleanly, and the platform
(retrieval, business, codec and model servers) keeps running throughout; the `helm test` Pod's
system check passes on v2.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import customer_of
from support.chart_processes import (
    LocalCluster,
    Pod,
    empty_dev_server,
    make_secrets,
    run_to_completion,
    search_path,
    start,
    stop,
    the_one,
    wait_ready,
)
from support.helm_chart import SKIP_WITHOUT_HELM, pod_spec, render
from support.workflow_history import build_ids_of_history
from temporalio.client import Client, WorkflowExecutionStatus

from agent.chat.client import Conversations
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart
from agent.testing import eventually
from payload_codec import DirectoryKeySource, data_converter

pytestmark = SKIP_WITHOUT_HELM

V1, V2 = "2026.12.01-1", "2026.12.06-1"
DEPLOYMENT = "support-agent"
APPLY, GUARD = "post-install,post-upgrade", "pre-upgrade"
PLATFORM = {"retrieval-worker", "business-worker", "codec-server", "model-server"}


@pytest.fixture
def temporal_server(tmp_path: Path) -> Iterator[str]:
    with empty_dev_server(tmp_path) as address:
        yield address


def values(server: str, *build_ids: str, current: str, ramp: str = "", percentage: int = 0) -> list[dict]:
    """The release's manifests for these agent versions and this routing."""
    args = ["--set", f"temporal.address={server}", "--set", "setup.createNamespaces=true"]
    args += ["--set", "modelServer.enabled=true", "--set", f"agent.rollout.current={current}"]
    args += [a for i, b in enumerate(build_ids) for a in ("--set", f"agent.versions[{i}].buildId={b}")]
    if ramp:
        args += ["--set", f"agent.rollout.ramp.buildId={ramp}", "--set", f"agent.rollout.ramp.percentage={percentage}"]
    return render(*args)


def long_running(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def build_id(pod: Pod) -> str:
    return pod.env.get("TEMPORAL_WORKER_BUILD_ID", "")


def rollout_status(server: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "rollout", "status", "-d", DEPLOYMENT, "--address", server, "--json"],
        env={"PATH": search_path()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def wait_for_approval(conversations: Conversations, order: str, euros: int) -> str:
    """A conversation asking for a refund above its approval threshold: it waits for a person."""
    cid = await conversations.start(
        ConversationStart(settings=ConversationSettings(approval_threshold_cents=500), customer_id=customer_of(order)),
        f"chart-rollout-{uuid.uuid4().hex[:10]}",
    )
    reply = await conversations.send(cid, f"Please refund €{euros} on order {order}, it arrived damaged")
    assert reply.approvals_requested == ["APR-1"], reply.text
    return cid


@pytest.mark.timeout(900)
async def test_a_helm_upgrade_adds_ramps_promotes_and_retires_an_agent_version(
    temporal_server: str, tmp_path: Path
) -> None:
    install = values(temporal_server, V1, current=V1)
    ramp = values(temporal_server, V1, V2, current=V1, ramp=V2, percentage=50)
    promote = values(temporal_server, V1, V2, current=V2)
    retire = values(temporal_server, V2, current=V2)
    # One set of local ports for every workload any of the releases runs: a workload the
    # releases share is the same manifest in each (test_chart_versions.py), so the same process.
    union = {(d["kind"], d["metadata"]["name"]): d for docs in (install, ramp, promote, retire) for d in docs}
    cluster = LocalCluster(tmp_path, list(union.values()))
    secrets, _ = make_secrets(tmp_path)
    running: dict[str, Pod] = {}

    def roll_out(docs: list[dict]) -> None:
        """What Kubernetes does with the release's workloads: start the new ones, keep the rest."""
        new = [cluster.pod(d, secrets) for name, d in long_running(docs).items() if name not in running]
        for pod in new:
            start(pod)
            running[pod.name] = pod
        for pod in new:
            wait_ready(pod)

    def hook(docs: list[dict], when: str) -> subprocess.CompletedProcess[str]:
        return run_to_completion(cluster.pod(the_one(docs, "Job", "rollout", when), secrets))

    done = run_to_completion(cluster.pod(the_one(install, "Job", "setup"), secrets))
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        # --- helm install: v1 only, made current by the post-install hook -----------------------
        roll_out(install)
        applied = hook(install, APPLY)
        assert applied.returncode == 0 and f"promoted {V1} to current" in applied.stdout, applied.stderr
        ring = DirectoryKeySource(secrets["codec-keys"]).load()
        client = await Client.connect(
            temporal_server, namespace="agents", data_converter=data_converter(ring, "agents")
        )
        conversations = Conversations(client)
        pinned = [
            await wait_for_approval(conversations, "ORD-1001", 6),
            await wait_for_approval(conversations, "ORD-1006", 7),
        ]
        v1_processes = {name: pod.process.pid for name, pod in running.items()}  # type: ignore[union-attr]

        # --- helm upgrade: add v2 and ramp it ---------------------------------------------------
        guarded = hook(ramp, GUARD)
        assert guarded.returncode == 0, guarded.stderr
        roll_out(ramp)
        applied = hook(ramp, APPLY)
        assert applied.returncode == 0 and f"ramped {V2} to 50%" in applied.stdout, applied.stdout + applied.stderr
        status = rollout_status(temporal_server)
        assert status["routing"] == {"current": V1, "ramping": V2, "percentage": 50.0}
        pollers = {v["build_id"]: v["pollers"] for v in status["versions"]}
        assert pollers[V1] >= 3 and pollers[V2] >= 3, pollers  # each version's three pools
        agents = {build_id(p) for p in running.values() if p.component == "agent-worker" and p.process}
        assert agents == {V1, V2} and all(p.process and p.process.poll() is None for p in running.values())
        assert {n: p.process.pid for n, p in running.items() if n in v1_processes} == v1_processes  # type: ignore[union-attr]

        # --- an upgrade that would retire v1 now is refused -------------------------------------
        refused = hook(retire, GUARD)
        assert refused.returncode != 0
        [sentence] = refused.stderr.strip().splitlines()
        assert "refusing to retire" in sentence and V1 in sentence and "current" in sentence, sentence
        print(f"guard refused the retiring upgrade: {sentence}")

        # --- the waiting conversations finish on v1 ---------------------------------------------
        for cid in pinned:
            outcome = await conversations.decide(cid, "APR-1", approve=True, approver="lead-ana")
            assert outcome.status == ApprovalStatus.EXECUTED and outcome.refund_id
            await conversations.end(cid, "refund done")
            assert (await client.get_workflow_handle(cid).describe()).status == WorkflowExecutionStatus.COMPLETED
            assert await build_ids_of_history(client, cid) == {V1}, cid

        # --- helm upgrade: promote v2; v1 drains -------------------------------------------------
        assert hook(promote, GUARD).returncode == 0
        roll_out(promote)
        applied = hook(promote, APPLY)
        assert applied.returncode == 0 and f"promoted {V2} to current" in applied.stdout, applied.stderr

        async def v1_drained() -> bool:
            versions = {v["build_id"]: v for v in rollout_status(temporal_server)["versions"]}
            return versions[V1]["drainage"] == "drained" and versions[V1]["running"] == 0

        await eventually(v1_drained, 120, "v1 to report drained")

        # --- helm upgrade: retire v1, now that it drained ---------------------------------------
        guarded = hook(retire, GUARD)
        assert guarded.returncode == 0 and "is drained" in guarded.stdout, guarded.stderr
        gone = [name for name in running if name not in long_running(retire)]
        assert {build_id(running[n]) for n in gone} == {V1} and len(gone) == 3
        grace = {n: pod_spec(d).get("terminationGracePeriodSeconds", 30) for n, d in long_running(install).items()}
        exits = {name: stop(running.pop(name), grace[name]) for name in gone}
        assert exits == dict.fromkeys(gone, 0), exits
        assert hook(retire, APPLY).returncode == 0
        platform = [p for p in running.values() if p.component in PLATFORM]
        assert {p.component for p in platform} == PLATFORM
        assert all(p.process and p.process.poll() is None for p in platform)
        pids = {p.name: p.process.pid for p in platform if p.process}
        assert pids == {p.name: v1_processes[p.name] for p in platform}, "the rollout restarted a platform process"

        # --- helm test on the retired-v1 release: the system check passes on v2 -----------------
        check = run_to_completion(cluster.pod(the_one(retire, "Pod", "system-check"), secrets), timeout_s=180)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        for pod in reversed(list(running.values())):
            stop(pod)
