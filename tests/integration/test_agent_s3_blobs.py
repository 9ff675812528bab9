"""The agent worker with its blobs in a bucket (``AGENT_BLOB_STORE=s3``) of a real
S3-compatible server: a stack of its own brought up as ``make up BLOBS=s3`` does (SeaweedFS,
`make s3-server`, started by the stack; the worker gets the standard AWS variables, as a
deployment gives them).

Shown: ingested documents and a large message land in the bucket sealed (no plaintext in any
object), the model call reads the message back from it, the paid answers are kept in it too and
nothing lands on the pod's disk, an outage of the store holds a conversation up without losing it, a
worker given refused credentials or a missing bucket does not start, saying why in one sentence,
and the overview dashboard's S3 panels show the requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import client_for, free_ports, running_stack
from prometheus_client.parser import text_string_to_metric_families
from support.dashboards import S3_BLOB_PANELS, wait_for_panel_data
from temporalio.client import Client

from agent.blobs.s3 import S3BlobStore
from agent.chat.client import Conversations
from agent.support.types import ConversationSettings, ConversationStart
from agent.testing import blob_dir, blob_store, start, stop
from devstack import prometheus, s3
from devstack.stack import Stack, knowledge_base_dir


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The knowledge base is ingested into the bucket as the stack comes up."""
    if not s3.BINARY.exists():
        pytest.skip(s3.BUILD_HINT)
    with running_stack(tmp_path_factory.mktemp("stack"), blobs="s3") as stack:
        yield stack


@pytest.fixture(scope="module")
async def client(s3_stack: Stack) -> Client:
    return await client_for(s3_stack, "agents")


def objects(stack: Stack) -> dict[str, bytes]:
    bucket = s3.stack_client(stack.config)
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket=s3.BUCKET).get("Contents", [])]
    return {key: bucket.get_object(Bucket=s3.BUCKET, Key=key)["Body"].read() for key in keys}


def blob_requests(stack: Stack) -> dict[tuple[str, str], float]:
    """``agent_blob_store_requests_total`` of the agent worker, by (operation, outcome)."""
    url = f"http://{stack.config.host}:{stack.config.ports['agent_metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.labels["operation"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "agent_blob_store_requests_total"
    }


async def new_conversation(client: Client) -> tuple[Conversations, str]:
    conversations = Conversations(client)
    cid = await conversations.start(
        ConversationStart(
            customer="test", settings=ConversationSettings(inline_text_limit_bytes=256), customer_id="cust-edsger"
        ),
        f"test-s3-{uuid.uuid4().hex[:10]}",
    )
    return conversations, cid


async def test_ingested_documents_are_sealed_in_the_bucket(s3_stack: Stack) -> None:
    stored = objects(s3_stack)
    assert stored, "ingesting the knowledge base stored nothing in the bucket"
    assert all(key.endswith(".enc") for key in stored), sorted(stored)
    # A line of every document: none is readable in any object.
    lines = [
        max(path.read_text(errors="ignore").splitlines(), key=len).encode()
        for path in sorted(Path(knowledge_base_dir()).rglob("*.md"))
    ]
    assert lines
    assert not [(key, line[:40]) for key, data in stored.items() for line in lines if line in data]
    # The embedding calls' paid answers are in the bucket too (any pod's retry finds them), sealed;
    # the pod's disk keeps nothing.
    assert [key for key in stored if "paid-answers/" in key], sorted(stored)
    local = [p.relative_to(blob_dir(s3_stack)) for p in blob_dir(s3_stack).rglob("*") if p.is_file()]
    assert local == [], local


async def test_large_message_goes_to_the_bucket_and_back(s3_stack: Stack, client: Client) -> None:
    conversations, cid = await new_conversation(client)
    marker = hashlib.sha256(cid.encode()).hexdigest() * 40  # 2560 characters, unique to this test
    text = f"How long do refunds take? {marker}"
    reply = await conversations.send(cid, text)
    # The model call read the whole message back from the bucket (its answer quotes it).
    assert f'Answer to "How long do refunds take? {marker[:60]}' in reply.text

    user = (await conversations.transcript(cid)).entries[0]
    assert user.ref is not None and user.ref.size == len(text.encode())
    store = blob_store(s3_stack, client)
    assert isinstance(store, S3BlobStore) and store.bucket == s3.BUCKET
    assert await store.get(user.ref) == text.encode()
    stored = objects(s3_stack)
    key = store.key_for(user.ref, sealed=True)
    assert key in stored
    assert not [k for k, data in stored.items() if marker[:64].encode() in data]


async def test_an_outage_of_the_store_holds_the_conversation_up_and_loses_nothing(
    s3_stack: Stack, client: Client
) -> None:
    conversations, cid = await new_conversation(client)
    marker = hashlib.sha256(cid.encode()).hexdigest() * 40
    log = s3_stack.processes.log_path("agent-worker")
    seen = log.read_text(errors="ignore").count("cannot reach the S3 endpoint")
    before = blob_requests(s3_stack)
    stop(s3_stack, s3.NAME, kill=True)
    try:
        sending = asyncio.create_task(conversations.send(cid, f"How long do refunds take? {marker}"))
        # The local activity that stores the message fails with the store's one sentence and is
        # retried by Temporal (not failed for good) ...
        for _ in range(120):
            if log.read_text(errors="ignore").count("cannot reach the S3 endpoint") > seen:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"the agent worker never reported the unreachable store; see {log}")
        await asyncio.sleep(3)
        assert not sending.done(), "the turn finished while its message could not be stored"
    finally:
        start(s3_stack, s3.NAME)
    # ... until the store is back: the same turn then completes with the whole message.
    reply = await asyncio.wait_for(sending, timeout=180)
    assert f'Answer to "How long do refunds take? {marker[:60]}' in reply.text
    user = (await conversations.transcript(cid)).entries[0]
    assert user.ref is not None
    assert await blob_store(s3_stack, client).get(user.ref) == f"How long do refunds take? {marker}".encode()
    # The worker's metrics saw the failed requests and the ones that then stored the message. Which
    # request failed depends on when the store went away: a put asks first whether the object is
    # there (head), so an outage already in place fails the head and the put is never sent.
    after = blob_requests(s3_stack)

    def failed(counts: dict[tuple[str, str], float]) -> float:
        return sum(value for (operation, outcome), value in counts.items() if outcome == "unavailable")

    assert failed(after) > failed(before), after
    for operation, outcome in (("put", "ok"), ("get", "ok")):
        assert after.get((operation, outcome), 0) > before.get((operation, outcome), 0), (operation, outcome, after)


@pytest.mark.parametrize(
    ("setting", "value", "sentence"),
    [
        ("AWS_SECRET_ACCESS_KEY", "wrong-secret-6f1c", f"refused these credentials for the bucket '{s3.BUCKET}'"),
        ("AGENT_BLOB_S3_BUCKET", "no-such-bucket", "the bucket 'no-such-bucket' does not exist"),
    ],
)
def test_worker_refuses_to_start_on_an_unusable_store(
    s3_stack: Stack, tmp_path: Path, setting: str, value: str, sentence: str
) -> None:
    spec = next(s for s in s3_stack.specs() if s.name == "agent-worker")
    health, metrics = free_ports(2)
    env = {**os.environ, **spec.env, setting: value}
    env.update(AGENT_HEALTH_PORT=str(health), AGENT_METRICS_PORT=str(metrics), AGENT_BLOB_DIR=str(tmp_path))
    done = subprocess.run(
        spec.argv, env={k: v for k, v in env.items() if v is not None}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("agent-worker: the blob store is unusable: ") and sentence in last, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "wrong-secret-6f1c" not in done.stdout + done.stderr  # the secret is never printed


@pytest.mark.skipif(
    prometheus.binary() is None, reason="prometheus is not installed and `make prometheus` could not install it"
)
def test_the_dashboard_shows_the_stores_requests(s3_stack: Stack) -> None:
    """The overview dashboard's S3 panels, as the stack's Prometheus answers them after the tests
    above (the default stack's dashboards test cannot: its blobs are in a directory)."""
    wait_for_panel_data(s3_stack, S3_BLOB_PANELS)
