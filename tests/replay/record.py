"""Regenerate the replay corpus (tests/replay/corpus) from real runs on a fresh stack.

    .venv/bin/python tests/replay/record.py [--only NAME ...] [--out DIR]

Starts a stack like the integration tests do (dev server, every worker, the built Go binary)
with the committed TEST-ONLY key ring, runs one scenario per history the corpus needs, then
reads each history back with a client that has no codec, so it is stored encrypted exactly as
the server holds it. Stage variants of SupportAgentWorkflow (stage_workflows.py) run in this
process on a task queue of their own, next to the stack's workers. ``--only`` re-records some
scenarios (replacing their earlier histories) and keeps the rest. Run ``make build`` first.

``go-before-byte-batches`` is the Go history from before the ``byte-capped-batches`` GetVersion
change; only a build from before that change can record it again (see docs/versioning.md), so
it is not among the default scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the harness and this package, as pytest's pythonpath has them

from harness import client_for, running_stack  # noqa: E402
from replay.stage_workflows import STAGE_WORKFLOWS  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.api.history.v1 import History  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from agent.blobs.activities import BlobActivities  # noqa: E402
from agent.blobs.store import LocalBlobStore  # noqa: E402
from agent.chat.client import Conversations  # noqa: E402
from agent.ingest.types import OUTCOME_INDEXED, IngestInput, child_workflow_id, document_id  # noqa: E402
from agent.queues import AGENT_TASK_QUEUE  # noqa: E402
from agent.support.activities import SupportActivities  # noqa: E402
from agent.support.types import ConversationSettings, ConversationStart  # noqa: E402
from agent.testing import blob_dir  # noqa: E402
from agent.workflows.ingest import IngestWorkflow  # noqa: E402
from agent.workflows.support_agent import SupportAgentWorkflow  # noqa: E402
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from keyops.temporal import connect_raw, fetch_raw_history, list_executions, resolve_run_id  # noqa: E402
from replaygate.corpus import Corpus  # noqa: E402

CORPUS = HERE / "corpus"
KNOWLEDGE_BASE = HERE.parents[1] / "ops" / "demo" / "knowledge-base"
TEST_KEYRING = HERE / "test-keyring.json"
RETRIEVAL_TASK_QUEUE = "retrieval"
APPROVAL_THRESHOLD_CENTS = 500


@dataclass(frozen=True)
class Recorded:
    namespace: str
    workflow_id: str
    note: str
    run_id: str = ""
    """Empty: the latest run."""
    history: History | None = None
    """A snapshot taken mid-flight; None: read the history after the scenario."""


Scenario = Callable[[Stack], Awaitable[list[Recorded]]]


def _id(name: str) -> str:
    return f"replay-{name}-{uuid.uuid4().hex[:8]}"


async def _conversation(
    client: Client,
    workflow_id: str,
    settings: ConversationSettings,
    task_queue: str = AGENT_TASK_QUEUE,
    customer_id: str = "cust-grace",
) -> Conversations:
    await client.start_workflow(
        SupportAgentWorkflow.run,
        ConversationStart(customer="replay", settings=settings, customer_id=customer_id),
        id=workflow_id,
        task_queue=task_queue,
    )
    return Conversations(client)


async def support_ended(stack: Stack) -> list[Recorded]:
    client = await client_for(stack, "agents")
    cid = _id("support")
    conversations = await _conversation(client, cid, ConversationSettings())
    await conversations.send(cid, "How long does a refund take?")
    await conversations.send(cid, "Where is my order ORD-1002?")
    await conversations.end(cid)
    return [Recorded("agents", cid, "a conversation with a search and an order lookup, ended by the customer")]


async def support_waiting(stack: Stack) -> list[Recorded]:
    client = await client_for(stack, "agents")
    cid = _id("support-waiting")
    conversations = await _conversation(
        client,
        cid,
        ConversationSettings(approval_threshold_cents=APPROVAL_THRESHOLD_CENTS, approval_timeout_s=86400),
        customer_id="cust-ada",
    )
    reply = await conversations.send(cid, "Please refund €6 on order ORD-1001, the keycaps are cracked")
    assert reply.approvals_requested == ["APR-1"], reply.text
    return [Recorded("agents", cid, "open, waiting for a person to decide APR-1 (a durable timer is running)")]


async def support_refund(stack: Stack) -> list[Recorded]:
    client = await client_for(stack, "agents")
    cid = _id("support-refund")
    conversations = await _conversation(
        client, cid, ConversationSettings(approval_threshold_cents=APPROVAL_THRESHOLD_CENTS), customer_id="cust-alan"
    )
    reply = await conversations.send(cid, "Please refund €7 on order ORD-1003, it arrived broken")
    assert reply.approvals_requested == ["APR-1"], reply.text
    outcome = await conversations.decide(cid, "APR-1", approve=True, approver="lead-replay", note="ok")
    assert outcome.refund_id, outcome
    await conversations.end(cid)
    return [Recorded("agents", cid, "a refund approved by a person and paid through the business service")]


async def support_continued(stack: Stack) -> list[Recorded]:
    client = await client_for(stack, "agents")
    cid = _id("support-continued")
    conversations = await _conversation(client, cid, ConversationSettings(max_history_events=100))
    first = (await client.get_workflow_handle(cid).describe()).run_id
    for text in ["How long do refunds take?", "Where is my order ORD-1002?", "Hello", "Can I cancel an order?"] * 2:
        await conversations.send(cid, text)
    assert (await conversations.status(cid)).run_index >= 1, "the conversation did not continue as new"
    await conversations.send(cid, "Thanks, that is all")
    return [
        Recorded("agents", cid, "the first run, closed by continue-as-new", first),
        Recorded("agents", cid, "open, a run started by continue-as-new with carried state"),
    ]


async def system_check(stack: Stack) -> list[Recorded]:
    client = await client_for(stack, "agents")
    wid = _id("system-check")
    await client.execute_workflow(
        SystemCheckWorkflow.run,
        SystemCheckInput(question="How long does a refund take?", order_id="ORD-1001", refund_cents=300),
        id=wid,
        task_queue=AGENT_TASK_QUEUE,
    )
    return [Recorded("agents", wid, "every hop once: Go search, order lookup, refund, model answer")]


async def ingest(stack: Stack) -> list[Recorded]:
    client = await client_for(stack, "agents")
    wid = _id("ingest")
    collection = f"replay-{uuid.uuid4().hex[:6]}"
    paths = [str(KNOWLEDGE_BASE / name) for name in ("refund-policy.md", "order-cancellation.md")]
    result = await client.execute_workflow(
        IngestWorkflow.run, IngestInput(paths=paths, collection=collection), id=wid, task_queue=AGENT_TASK_QUEUE
    )
    assert result.count(OUTCOME_INDEXED) == len(paths), result
    return [
        Recorded("agents", wid, "two documents ingested: inspect, a child workflow each"),
        Recorded(
            "agents",
            child_workflow_id(collection, document_id(paths[0])),
            "one document: extract, embed on the embed queue, index through Nexus",
        ),
    ]


async def ingest_running(stack: Stack) -> list[Recorded]:
    """A snapshot of an ingestion in flight: one document done, the others not yet."""
    client = await client_for(stack, "agents")
    raw = await connect_raw("agents", stack.temporal_address)
    wid = _id("ingest-running")
    paths = sorted(str(p) for p in KNOWLEDGE_BASE.glob("*.md"))
    request = IngestInput(paths=paths, collection=f"replay-{uuid.uuid4().hex[:6]}", document_concurrency=1)
    handle = await client.start_workflow(IngestWorkflow.run, request, id=wid, task_queue=AGENT_TASK_QUEUE)
    while True:
        history = await fetch_raw_history(raw, wid)
        kinds = {e.event_type for e in history.events}
        if EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED in kinds:
            raise AssertionError("the ingestion finished before a mid-flight snapshot; give it more documents")
        if EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED in kinds:
            break
        await asyncio.sleep(0.05)
    await handle.result()
    run_id = (await handle.describe()).run_id
    return [Recorded("agents", wid, "mid-ingestion: the first document indexed, the rest to come", run_id, history)]


async def business_refunds(stack: Stack) -> list[Recorded]:
    raw = await connect_raw("business", stack.temporal_address)
    found = [e async for e in list_executions(raw, "WorkflowType = 'RefundWorkflow'")]
    assert found, "no RefundWorkflow ran; record support-refund or system-check with this one"
    return [Recorded("business", e.workflow_id, "a refund run started by a Nexus operation", e.run_id) for e in found]


def _documents(count: int) -> list[dict[str, object]]:
    # 8 KiB each: one count batch of 64 is 512 KiB, more than a byte-capped batch may carry.
    return [
        {
            "id": f"doc-{i}",
            "version": 1,
            "title": f"Replay document {i}",
            "text": f"Refund policy note {i}. " + "x" * 8192,
            "metadata": {},
            "vector": None,
        }
        for i in range(count)
    ]


async def _index(stack: Stack, name: str, note: str) -> list[Recorded]:
    client = await client_for(stack, "retrieval")
    wid = _id(name)
    request = {"collection": f"replay-{uuid.uuid4().hex[:6]}", "batch_id": wid, "documents": _documents(70)}
    await client.execute_workflow("IndexDocumentsWorkflow", request, id=wid, task_queue=RETRIEVAL_TASK_QUEUE)
    return [Recorded("retrieval", wid, note)]


async def go_index(stack: Stack) -> list[Recorded]:
    return await _index(stack, "index", "70 documents of 8 KiB: three byte-capped activity batches (current code)")


async def go_before_byte_batches(stack: Stack) -> list[Recorded]:
    return await _index(stack, "index-v0", "recorded before the byte-capped-batches GetVersion change")


def _stage(stage: int) -> Scenario:
    async def record(stack: Stack) -> list[Recorded]:
        client = await client_for(stack, "agents")
        blobs = LocalBlobStore(blob_dir(stack), client.data_converter.payload_codec)
        task_queue = f"replay-stage-{stage}"
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[STAGE_WORKFLOWS[stage]],
            activities=[BlobActivities(blobs).store_text, SupportActivities(blobs).archive_transcript],
        )
        async with worker:
            cid = _id(f"stage{stage}")
            conversations = await _conversation(client, cid, ConversationSettings(), task_queue)
            await conversations.send(cid, "How long does a refund take?")
            await conversations.end(cid)
        return [Recorded("agents", cid, f"answer-screen patch stage {stage}: recorded on that stage's code")]

    return record


SCENARIOS: dict[str, Scenario] = {
    "support-ended": support_ended,
    "support-waiting": support_waiting,
    "support-refund": support_refund,
    "support-continued": support_continued,
    "system-check": system_check,
    "ingest": ingest,
    "ingest-running": ingest_running,
    "business-refunds": business_refunds,  # after the scenarios that refund
    "go-index": go_index,
    "stage-0": _stage(0),
    "stage-2": _stage(2),
}
OPTIONAL = {"go-before-byte-batches": go_before_byte_batches}


async def record(stack: Stack, names: list[str], out: Path) -> None:
    corpus = Corpus.load(out)
    for name in names:
        print(f"recording {name}", flush=True)
        for stale in [e for e in corpus.entries if e.note.startswith(f"{name}:")]:
            corpus.remove(stale)
        for rec in await {**SCENARIOS, **OPTIONAL}[name](stack):
            raw = await connect_raw(rec.namespace, stack.temporal_address)
            run_id = rec.run_id or await resolve_run_id(raw, rec.workflow_id, None)
            history = rec.history or await fetch_raw_history(raw, rec.workflow_id, run_id)
            entry = corpus.add(rec.namespace, rec.workflow_id, run_id, history, note=f"{name}: {rec.note}")
            corpus.save()
            print(f"  {entry.file}: {len(history.events)} events", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[*SCENARIOS, *OPTIONAL], help="scenarios to (re-)record")
    parser.add_argument("--out", type=Path, default=CORPUS, help="corpus directory (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replay-record-") as tmp:
        data_dir = Path(tmp)
        # The stack keeps a key ring it finds in its data directory: the recording uses the test one.
        shutil.copy(TEST_KEYRING, data_dir / "keyring.json")
        (data_dir / "keyring.json").chmod(0o600)
        with running_stack(data_dir) as stack:
            asyncio.run(record(stack, args.only or list(SCENARIOS), args.out))


if __name__ == "__main__":
    main()
