"""Key rotation drill on a real stack: rotate, restart, and prove every history still reads.

Own stack (not the session fixture): the drill rewrites the key ring and restarts the workers
and the codec server. Workflows started before the rotation are encrypted under key A, the
ones after it under key B; both must complete, decode with the rotated key ring, be counted
by `keyops report`, and be decodable (and audited) through the restarted codec server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format
from harness import running_stack
from temporalio.api.history.v1 import History
from temporalio.client import Client

from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow
from devstack.config import NAMESPACES
from devstack.stack import Stack
from keyops.history import iter_payloads
from keyops.report import UNENCRYPTED, tally_history
from keyops.temporal import fetch_raw_history
from payload_codec import EncryptionCodec, FileKeySource, KeyRing, UnknownKeyError, data_converter, is_encrypted

# Orders ORD-1004..1006 are left to drills; small refunds so a second run never exhausts them.
CHECKS_BEFORE = (("ORD-1004", 100), ("ORD-1005", 100))
CHECKS_AFTER = (("ORD-1006", 100), ("ORD-1004", 50))
WORKFLOW_TIMEOUT = timedelta(seconds=120)


@dataclass
class Drill:
    stack: Stack
    ring_a: KeyRing
    ring_b: KeyRing
    key_a: str
    key_b: str
    before: list[str]
    after: list[str]
    rotate_output: str
    setup_workflows: int
    """Workflows in ``agents`` before the drill (the harness's knowledge-base ingestion), all under key A."""


def keyops(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "keyops", *args], capture_output=True, text=True, timeout=120)


async def run_checks(stack: Stack, ring: KeyRing, checks: tuple[tuple[str, int], ...], tag: str) -> list[str]:
    client = await Client.connect(
        stack.temporal_address, namespace="agents", data_converter=data_converter(ring, "agents")
    )
    ids = [f"rotation-{tag}-{order}-{uuid.uuid4().hex[:6]}" for order, _ in checks]
    results = await asyncio.gather(
        *(
            client.execute_workflow(
                SystemCheckWorkflow.run,
                SystemCheckInput(question="How do refunds work?", order_id=order, refund_cents=cents),
                id=workflow_id,
                task_queue=AGENT_TASK_QUEUE,
                execution_timeout=WORKFLOW_TIMEOUT,
            )
            for workflow_id, (order, cents) in zip(ids, checks, strict=True)
        )
    )
    for result, (order, cents) in zip(results, checks, strict=True):
        assert result.order.order_id == order
        assert result.refund.amount_cents == cents and result.refund.status == "completed"
    return ids


async def raw_histories(stack: Stack, namespace: str) -> dict[str, History]:
    """Workflow id -> raw history (the drill runs one run per id), as the server stores it."""
    client = await Client.connect(stack.temporal_address, namespace=namespace)
    ids = [(w.id, w.run_id) async for w in client.list_workflows()]
    return {wid: await fetch_raw_history(client, wid, run_id) for wid, run_id in ids}


def key_ids(history: History) -> set[str]:
    return set(tally_history(history).payloads) - {UNENCRYPTED}


def token_not_in(token_file: Path, text: str) -> bool:
    return token_file.read_text().strip() not in text


@pytest.fixture(scope="module")
def rotation_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("rotation-stack")) as stack:
        yield stack


@pytest.fixture(scope="module")
async def drill(rotation_stack: Stack) -> Drill:
    stack = rotation_stack
    ring_path = stack.config.keyring_path
    ring_a = FileKeySource(ring_path).load()
    key_a = ring_a.active_id_for("agents")
    assert key_a is not None

    setup_workflows = len(await raw_histories(stack, "agents"))
    before = await run_checks(stack, ring_a, CHECKS_BEFORE, "before")

    rotated = await asyncio.to_thread(keyops, "rotate", "--namespace", "*", "--keyring-file", str(ring_path))
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    ring_b = FileKeySource(ring_path).load()
    key_b = ring_b.active_id_for("agents")
    assert key_b is not None and key_b != key_a
    await asyncio.to_thread(stack.restart_workers, log=lambda line: None)

    after = await run_checks(stack, ring_b, CHECKS_AFTER, "after")
    return Drill(stack, ring_a, ring_b, key_a, key_b, before, after, rotated.stdout + rotated.stderr, setup_workflows)


def test_rotate_keeps_the_old_key_and_prints_no_material(drill: Drill) -> None:
    assert drill.ring_b.key_ids == drill.ring_a.key_ids | {drill.key_b}
    assert drill.ring_b.key(drill.key_a).material == drill.ring_a.key(drill.key_a).material
    assert drill.ring_b.active == {"*": drill.key_b}
    assert drill.key_b in drill.rotate_output and "make restart-workers" in drill.rotate_output
    ring_text = drill.stack.config.keyring_path.read_text()
    for material in json.loads(ring_text)["keys"].values():
        assert material not in drill.rotate_output
    assert oct(drill.stack.config.keyring_path.stat().st_mode & 0o777) == "0o600"


async def test_workflows_before_use_key_a_only_and_after_key_b_only(drill: Drill) -> None:
    agents = await raw_histories(drill.stack, "agents")
    business = await raw_histories(drill.stack, "business")
    for workflow_id in drill.before:
        assert key_ids(agents[workflow_id]) == {drill.key_a}
        refund = next(h for wid, h in business.items() if workflow_id in wid)
        assert key_ids(refund) == {drill.key_a}
    for workflow_id in drill.after:
        assert key_ids(agents[workflow_id]) == {drill.key_b}
        refund = next(h for wid, h in business.items() if workflow_id in wid)
        assert key_ids(refund) == {drill.key_b}


async def test_every_history_decodes_with_the_rotated_key_ring(drill: Drill) -> None:
    decoded = {drill.key_a: 0, drill.key_b: 0}
    for namespace in NAMESPACES:
        new_codec = EncryptionCodec(drill.ring_b, namespace)
        old_codec = EncryptionCodec(drill.ring_a, namespace)
        for history in (await raw_histories(drill.stack, namespace)).values():
            for payload in iter_payloads(history):
                if not is_encrypted(payload):
                    continue
                new_codec.decode_one(payload)  # raises if any payload cannot be read
                key_id = payload.metadata["encryption-key-id"].decode()
                decoded[key_id] += 1
                if key_id == drill.key_b:
                    # Proof the new key is really used: the pre-rotation ring cannot read it.
                    with pytest.raises(UnknownKeyError):
                        old_codec.decode_one(payload)
    assert decoded[drill.key_a] > 0 and decoded[drill.key_b] > 0


async def test_report_counts_both_keys_per_namespace(drill: Drill) -> None:
    stack = drill.stack
    done = await asyncio.to_thread(
        keyops,
        "report",
        *[arg for ns in NAMESPACES for arg in ("--namespace", ns)],
        "--address",
        stack.temporal_address,
        "--keyring-file",
        str(stack.config.keyring_path),
        "--json",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)

    agents = report["namespaces"]["agents"]["keys"]
    # Exactly the drill's workflows (and the set-up ingestion before it), each under exactly one key.
    assert agents[drill.key_a]["workflows"] == len(drill.before) + drill.setup_workflows
    assert agents[drill.key_b]["workflows"] == len(drill.after)
    assert agents[drill.key_a]["open_workflows"] == agents[drill.key_b]["open_workflows"] == 0
    business = report["namespaces"]["business"]["keys"]
    assert business[drill.key_a]["workflows"] == len(drill.before)
    assert business[drill.key_b]["workflows"] == len(drill.after)
    # The report agrees with an independent count of the same raw histories (in the namespaces
    # where nothing runs after the drill; the retrieval worker may index in the background).
    for namespace in ("agents", "business"):
        expected: dict[str, int] = {}
        for history in (await raw_histories(stack, namespace)).values():
            for label, count in tally_history(history).payloads.items():
                expected[label] = expected.get(label, 0) + count
        assert {k: v["payloads"] for k, v in report["namespaces"][namespace]["keys"].items()} == expected
    for key in (drill.key_a, drill.key_b):
        assert report["totals"][key]["payloads"] > 0
    assert report["keyring"]["unreferenced"] == []
    # Closed histories leave with retention; the report says when the last one naming A goes.
    assert report["namespaces"]["agents"]["keys"][drill.key_a]["references_end_by"] is not None

    human = await asyncio.to_thread(keyops, "report", "-n", "agents", "--address", stack.temporal_address)
    assert human.returncode == 0, human.stderr
    assert drill.key_a in human.stdout and drill.key_b in human.stdout


async def test_restarted_codec_server_exports_both_keys_and_audits_it(drill: Drill, tmp_path: Path) -> None:
    stack = drill.stack
    auditor_token = stack.codec_tokens.auditor_token_file
    exported: dict[str, History] = {}
    for workflow_id in (drill.before[0], drill.after[0]):
        out = tmp_path / f"{workflow_id}.json"
        done = await asyncio.to_thread(
            keyops,
            "export",
            "--namespace",
            "agents",
            "--workflow-id",
            workflow_id,
            "--codec-endpoint",
            stack.config.codec_server_url,
            "--token-file",
            str(auditor_token),
            "--address",
            stack.temporal_address,
            "-o",
            str(out),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        history = json_format.Parse(out.read_text(), History())
        assert not any(is_encrypted(p) for p in iter_payloads(history))
        exported[workflow_id] = history
        assert token_not_in(auditor_token, done.stdout + done.stderr)
    # The decoded input is the plain request: the order id is readable again.
    for workflow_id, (order, _) in zip(
        (drill.before[0], drill.after[0]), (CHECKS_BEFORE[0], CHECKS_AFTER[0]), strict=False
    ):
        started = exported[workflow_id].events[0].workflow_execution_started_event_attributes
        assert order.encode() in started.input.payloads[0].data

    audit = [json.loads(line) for line in (stack.config.log_dir / "codec-audit.jsonl").read_text().splitlines()]
    exports = [r for r in audit if (r.get("user_agent") or "").startswith("keyops-export/")]
    for workflow_id, key in ((drill.before[0], drill.key_a), (drill.after[0], drill.key_b)):
        records = [r for r in exports if workflow_id in r["user_agent"]]
        assert records and all(r["subject"] == "local-auditor" and r["outcome"] == "ok" for r in records)
        assert key in {k for r in records for k in r["key_ids"]}


async def test_export_is_refused_without_a_valid_token(drill: Drill, tmp_path: Path) -> None:
    stack = drill.stack
    bad_token = tmp_path / "bad-token"
    bad_token.write_text("not-a-token-the-server-knows\n")
    out = tmp_path / "refused.json"
    done = await asyncio.to_thread(
        keyops,
        "export",
        "--namespace",
        "agents",
        "--workflow-id",
        drill.before[0],
        "--codec-endpoint",
        stack.config.codec_server_url,
        "--token-file",
        str(bad_token),
        "--address",
        stack.temporal_address,
        "-o",
        str(out),
    )
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and "not-a-token-the-server-knows" not in done.stderr
    assert not out.exists()
