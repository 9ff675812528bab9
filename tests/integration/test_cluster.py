"""The cluster mode of the dev stack (`make up STACK=cluster`): three `temporal-server` nodes on
PostgreSQL in one membership ring, mTLS on the frontend and between nodes, the JWT authorizer,
and the whole system (workers, Nexus endpoints, codec, model server, Web UI) running through it,
every client reaching it through the front door.

The cluster tier's main module: one cluster, on its own ports and data directory, for every test
below (the system check, ingestion, an approved refund, the Web UI, the payload scan, the replay
gate, the refusals, and last `down` and `up` again). Skipped, with the reason, only when the
server is not built (`make temporal-server`) or HAProxy is not installed (`make haproxy`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import cluster_unavailable_reason, isolated_cluster_config
from harness import client_for, free_ports, ingest_knowledge_base, page_showing, refunds_of, run_system_check
from support.browser import ARTIFACTS, chromium_or_skip
from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from agent.chat.client import Conversations
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart, ConversationSummary
from devstack import cluster, webui
from devstack.config import NAMESPACES
from devstack.pki import ensure_token_issuer
from devstack.processes import port_in_use
from devstack.stack import Stack
from devstack.temporal_setup import server_healthy, temporal_cli
from keyops.history import walk_payloads
from replaygate.corpus import Corpus

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(cluster_unavailable_reason() is not None, reason=str(cluster_unavailable_reason()))

# What a person waits for at `make up STACK=cluster && agent check`; the issue asks to say so
# when this machine needs more.
BUDGET_S = 180.0


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    return {}


@pytest.fixture(scope="module")
def cluster_stack(timings: dict[str, float]) -> Iterator[Stack]:
    # One cluster for the whole module (the tier's cost is its start-up): every test below runs
    # on it, in file order, the one that stops and restarts it last.
    data_dir = Path(tempfile.mkdtemp(prefix="cluster-stack-"))
    stack = Stack(isolated_cluster_config(data_dir))
    started = time.monotonic()
    try:
        stack.up(log=lambda line: None)
        timings["up_s"] = time.monotonic() - started
        yield stack
    finally:
        stack.down(log=lambda line: None)
        shutil.rmtree(data_dir, ignore_errors=True)


def _agent(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **stack.client_env(), "COLUMNS": "200", **(env or {})},
    )


def test_agent_check_passes_through_the_cluster(cluster_stack: Stack, timings: dict[str, float]) -> None:
    started = time.monotonic()
    done = _agent(cluster_stack, "check", "--order", "ORD-1003", "--refund-cents", "200")
    timings["check_s"] = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    for hop in ("retrieval.search", "business.get_order", "business.refund", "llm.chat_completion", "ORD-1003"):
        assert hop in done.stdout
    total = timings["up_s"] + timings["check_s"]
    print(f"\ncluster up {timings['up_s']:.0f} s, agent check {timings['check_s']:.0f} s, total {total:.0f} s")
    if total > BUDGET_S:
        # Said, not failed: a loaded machine is slow, not wrong; the summary shows it.
        warnings.warn(f"cluster start plus check took {total:.0f} s, over the {BUDGET_S:.0f} s budget", stacklevel=1)


def test_the_demo_knowledge_base_ingests_through_the_cluster(cluster_stack: Stack) -> None:
    result = ingest_knowledge_base(cluster_stack)  # raises when a document failed
    assert len(result.documents) >= 3, result
    assert sum(d.chunks for d in result.documents) > 0, result


async def test_a_conversation_with_an_approved_refund(cluster_stack: Stack) -> None:
    client = await client_for(cluster_stack, "agents")
    chat = Conversations(client)
    cid = f"cluster-refund-{uuid.uuid4().hex[:8]}"
    # A $2 refund against a $1 threshold: it waits for a person's approval, then is paid once.
    settings = ConversationSettings(approval_threshold_cents=100)
    await chat.start(ConversationStart(settings=settings, customer_id="cust-katherine"), cid)
    await chat.send(cid, "How long do refunds take?")
    await chat.send(cid, "Please refund $2 on order ORD-1004, it arrived damaged.")
    await chat.decide(cid, "APR-1", approve=True, approver="cluster-test")
    await chat.end(cid)
    summary = await client.get_workflow_handle(cid, result_type=ConversationSummary).result()
    assert [a.status for a in summary.approvals] == [ApprovalStatus.EXECUTED], summary
    assert refunds_of(cluster_stack, cid, "amount_cents") == [200]


async def test_the_web_ui_shows_decoded_histories_of_the_cluster(cluster_stack: Stack) -> None:
    """The cluster's Web UI (ops/webui) in headless Chromium: it reads the history through the
    front door over mTLS with its own read-only token, and the browser decodes the payloads
    through the codec server."""
    if webui.binary() is None:
        pytest.skip(webui.BUILD_HINT)
    chromium_or_skip()
    question = f"Can I return a lamp bought {uuid.uuid4().hex[:6]}?"
    workflow_id = f"cluster-ui-{uuid.uuid4().hex[:8]}"
    client = await client_for(cluster_stack, "agents")
    await run_system_check(client, question, workflow_id)
    url = f"{cluster_stack.config.ui_url}/namespaces/agents/workflows/{workflow_id}"
    content, decode_calls = await page_showing(url, question, ARTIFACTS / "cluster-ui.png")
    assert question in content  # only the codec server's decoding can have put it there
    assert any(call.startswith(cluster_stack.config.codec_server_url) for call in decode_calls), decode_calls


async def test_no_payload_in_any_history_is_unencrypted(cluster_stack: Stack) -> None:
    """Every payload the cluster holds, in every namespace, read with no codec: ciphertext only."""
    checked = 0
    for namespace in NAMESPACES:
        env = {**cluster_stack.client_env(), "TEMPORAL_NAMESPACE": namespace}
        raw = await Client.connect(**ClientConfig.load_client_connect_config(disable_file=True, override_env_vars=env))
        async for execution in raw.list_workflows():
            history = await raw.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
            for found in walk_payloads(history.events):
                if found.plain_by_design:
                    continue
                encoding = found.payload.metadata.get("encoding", b"").decode()
                assert encoding == "binary/encrypted", f"{namespace}/{execution.id}: a {encoding!r} payload"
                checked += 1
    assert checked > 20, checked  # the tests above crossed every namespace


def test_the_replay_gate_replays_histories_exported_from_the_cluster(cluster_stack: Stack, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CODEC_KEYRING", "TEMPORAL_"))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "replaygate",
            "--corpus",
            str(corpus),
            "--go-replayer",
            str(REPO / "bin/retrieval-replay"),
        ],
        env={**environ, **cluster_stack.client_env(), "COLUMNS": "240"},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NON-DETERMINISTIC" not in done.stdout and "FAILED" not in done.stdout
    entries = Corpus.load(corpus).entries
    # The agent's, the business and the Go retrieval workflows were all exported, and each replayed.
    assert {e.namespace for e in entries} == set(NAMESPACES), entries
    assert f"{len(entries)} of {len(entries)} histories replay" in done.stdout, done.stdout


def test_three_nodes_share_one_membership_ring(cluster_stack: Stack) -> None:
    members = cluster.ring_members(cluster_stack.config, cluster_stack.cluster)
    # Every node runs every role; each role's ring holds one member per node.
    for role in cluster.ROLES:
        ports = {port for member_role, port in members if member_role == role}
        assert len(ports) == cluster.NODES, f"{role}: {sorted(members)}"


def test_every_node_refuses_a_client_without_a_certificate(cluster_stack: Stack) -> None:
    c = cluster_stack.config
    with_cert = cluster_stack.credentials("admin")
    without_cert = {k: v for k, v in with_cert.items() if not k.startswith("TEMPORAL_TLS_CLIENT_")}
    for node in range(cluster.NODES):
        address = f"{c.host}:{cluster.node_port(c, node, 'frontend')}"
        assert server_healthy(address, with_cert), address
        assert not server_healthy(address, without_cert), f"{address} served a client without a certificate"


def test_a_token_without_the_namespace_is_refused_in_one_sentence(cluster_stack: Stack) -> None:
    c = cluster_stack.config
    assert cluster_stack.cluster is not None
    wrong = ensure_token_issuer(cluster_stack.cluster.auth).token("wrong-namespace", ["retrieval:write"])
    health, metrics = free_ports(2)
    worker = subprocess.run(
        [sys.executable, "-m", "business.worker"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            **cluster_stack.client_env(),
            "TEMPORAL_NAMESPACE": "business",
            "TEMPORAL_API_KEY": wrong,
            "HEALTH_HOST": c.host,
            "BUSINESS_HEALTH_PORT": str(health),
            "METRICS_HOST": c.host,
            "BUSINESS_METRICS_PORT": str(metrics),
            "BUSINESS_DB_PATH": str(c.data_dir / "wrong-token-business.sqlite3"),
        },
    )
    assert worker.returncode == 1, worker.stdout + worker.stderr
    message = worker.stderr.strip().splitlines()[-1]
    assert "refused access to namespace business" in message, worker.stderr
    assert "Traceback" not in worker.stderr and wrong not in worker.stderr + worker.stdout

    # The agent CLI with the same token: the same sentence, exit code 2, no traceback.
    done = _agent(cluster_stack, "check", env={"TEMPORAL_API_KEY": wrong})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused access to namespace agents" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_down_stops_everything_and_the_data_survives(cluster_stack: Stack) -> None:
    c = cluster_stack.config
    done = _agent(cluster_stack, "check", "--workflow-id", "cluster-survives", "--refund-cents", "100")
    assert done.returncode == 0, done.stdout + done.stderr
    cluster_stack.down(log=lambda line: None)
    assert all(s.running is None for s in cluster_stack.status())
    node_ports = [p for n in range(cluster.NODES) for p in cluster.node_ports(c, n)]
    assert not [p for p in [c.ports["postgres"], *node_ports] if port_in_use(c.host, p)]

    cluster_stack.up(log=lambda line: None)
    env = {**os.environ, **cluster_stack.client_env()}
    described = subprocess.run(
        [
            temporal_cli(),
            "workflow",
            "describe",
            "--workflow-id",
            "cluster-survives",
            "--namespace",
            "agents",
            "--address",
            cluster_stack.temporal_address,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert described.returncode == 0, described.stderr
    status = json.loads(described.stdout)["workflowExecutionInfo"]["status"]
    assert status == "WORKFLOW_EXECUTION_STATUS_COMPLETED", status
