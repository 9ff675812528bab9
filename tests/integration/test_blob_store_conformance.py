"""Every blob store behaves the same: the local directory and an S3 bucket on a real
S3-compatible server (SeaweedFS, `make s3-server`), run through one set of tests.

What the stores promise: blobs sealed by the payload codec (no plaintext at rest), names that
are keyed hashes, an integrity check on every read, write-once puts that concurrent writers of
the same content cannot tear, typed errors for a missing or damaged blob (activities fail for
good) and for a store that cannot be used right now (activities retry), in one sentence that
never holds a secret.

The paid provider answers (agent.paid_calls) live beside the blobs, in the same directory or
bucket, and behave the same in both: sealed, found by any worker of the deployment (a retry on
another pod does not pay again), never given to another request, unreadable ones paid again,
expired ones swept, and a store that cannot answer holds the call up instead of paying again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from harness import free_ports
from support.s3server import SECRET_KEY, S3Server, running_s3_server
from temporalio.api.common.v1 import Payload
from temporalio.testing import ActivityEnvironment

from agent.blobs.s3 import S3BlobStore
from agent.blobs.settings import blob_store_from_env, s3_client
from agent.blobs.store import BlobCorrupted, BlobNotFound, BlobStore, BlobStoreUnavailable, LocalBlobStore
from agent.blobs.types import BlobRef
from agent.llm.activities import ModelActivities
from agent.llm.settings import ModelSettings
from agent.llm.types import ChatMessage, ChatRequest
from agent.paid_calls import ANSWERS_DIR, PaidAnswers, paid_answers_from
from modelserver.testing import SimulatorHandle, running_simulator
from payload_codec import KEY_SIZE, EncryptionCodec, KeyRing


def codec(*keys: str, active: str) -> EncryptionCodec:
    # Each key's material follows from its name: "k1" is the same key in every ring here.
    ring = KeyRing({k: hashlib.sha256(k.encode()).digest()[:KEY_SIZE] for k in keys}, {"agents": active})
    return EncryptionCodec(ring, "agents")


class Backing(Protocol):
    """The bytes a store keeps, seen from outside it: a bucket listing, a backup."""

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes) -> None: ...

    def modified(self, name: str) -> datetime: ...


class Directory:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)

    def modified(self, name: str) -> datetime:
        return datetime.fromtimestamp((self.root / name).stat().st_mtime, UTC)


class Bucket:
    def __init__(self, server: S3Server, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = server.client(), bucket, prefix

    def names(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix)
        return sorted(o["Key"].removeprefix(self.prefix) for o in listing.get("Contents", []))

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def modified(self, name: str) -> datetime:
        return self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)["LastModified"]


MakeStore = Callable[[EncryptionCodec | None], tuple[BlobStore, Backing]]


# One bucket (a SeaweedFS collection grows volumes of its own); each test its own key prefix.
BUCKET = "conformance"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture(params=["local", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> MakeStore:
    """``make_store(codec) -> (store, backing)``: a fresh, empty store of ``kind``, both kinds
    built by the workers' own selector from the settings a deployment would give them."""
    if kind == "local":
        env = {"AGENT_BLOB_STORE": "local", "AGENT_BLOB_DIR": str(tmp_path / "blobs")}
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        env = server.env(BUCKET, prefix=f"{uuid.uuid4().hex[:12]}/blobs")

    def make(with_codec: EncryptionCodec | None) -> tuple[BlobStore, Backing]:
        store = blob_store_from_env(with_codec, env)
        if isinstance(store, LocalBlobStore):
            return store, Directory(store.root)
        assert kind == "s3"
        return store, Bucket(request.getfixturevalue("s3_server"), store.bucket, store.prefix)

    return make


async def test_round_trip_is_sealed_at_rest(make_store: MakeStore) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    text = f"Refund ORD-1005 for card ending 4242, ticket {uuid.uuid4()}. " * 30
    ref = await store.put(text.encode())
    assert ref.size == len(text.encode()) and ref.preview.startswith("Refund ORD-1005")
    assert await store.get(ref) == text.encode()
    [name] = backing.names()
    assert name == f"{ref.digest[:2]}/{ref.digest}.enc"
    stored = backing.read(name)
    assert b"ORD-1005" not in stored and b"4242" not in stored
    payload = Payload.FromString(stored)
    assert payload.metadata["encryption-key-id"] == b"k1"


async def test_a_large_document_round_trips(make_store: MakeStore) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    data = os.urandom(8 * 1024 * 1024)  # a scanned PDF's size: one request, no multipart upload
    ref = await store.put(data, "application/pdf")
    assert ref.size == len(data) and ref.preview == ""
    assert await store.get(ref) == data
    assert len(backing.read(backing.names()[0])) > len(data)  # sealed: nonce, tag and key id added


async def test_names_are_keyed_hashes(make_store: MakeStore) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    data = b"yes"  # short enough to guess: its plain SHA-256 must appear nowhere
    ref = await store.put(data)
    assert ref.uri.startswith("hmac-sha256:k1:")
    assert hashlib.sha256(data).hexdigest() not in ref.uri + " ".join(backing.names())
    other, _ = make_store(codec("k2", active="k2"))
    assert (await other.put(data)).digest != ref.digest


async def test_damaged_blob_is_corrupted_missing_blob_is_not_found(make_store: MakeStore) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    ref = await store.put(b"the original words")
    [name] = backing.names()
    stored = bytearray(backing.read(name))
    stored[-1] ^= 0x01
    backing.write(name, bytes(stored))
    with pytest.raises(BlobCorrupted, match="cannot be decrypted"):
        await store.get(ref)
    # A plain blob whose bytes changed no longer matches its name.
    plain_store, plain_backing = make_store(None)
    plain = await plain_store.put(b"plain words")
    plain_backing.write(f"{plain.digest[:2]}/{plain.digest}", b"other words")
    with pytest.raises(BlobCorrupted, match="does not match its hash"):
        await plain_store.get(plain)

    with pytest.raises(BlobNotFound, match="is not in"):
        await store.get(BlobRef(uri="sha256:" + "a" * 64, size=1))
    with pytest.raises(BlobNotFound, match="is not a blob reference"):
        await store.get(BlobRef(uri="sha256:../../etc/passwd", size=1))


async def test_sealed_blob_without_the_codec_is_not_found(make_store: MakeStore) -> None:
    sealed, _ = make_store(codec("k1", active="k1"))
    ref = await sealed.put(b"sealed words")
    unsealed, _ = make_store(None)
    with pytest.raises(BlobNotFound, match="keyed name|encrypted"):
        await unsealed.get(ref)


async def test_concurrent_puts_of_the_same_content_store_it_once(make_store: MakeStore) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    data = f"the same transcript {uuid.uuid4()}".encode() * 200
    refs = await asyncio.gather(*(store.put(data) for _ in range(8)))
    assert len(set(refs)) == 1
    assert len(backing.names()) == 1
    assert await store.get(refs[0]) == data
    assert await store.put(data) == refs[0]  # again, later: nothing new


async def test_refused_credentials_are_one_clear_sentence(s3_server: S3Server) -> None:
    wrong_secret = "not-the-secret-" + uuid.uuid4().hex
    env = {**s3_server.env(BUCKET), "AWS_SECRET_ACCESS_KEY": wrong_secret}
    store = blob_store_from_env(codec("k1", active="k1"), env)
    assert isinstance(store, S3BlobStore)
    for call in (store.check(), store.put(b"words"), store.get(BlobRef(uri="sha256:" + "b" * 64, size=1))):
        with pytest.raises(BlobStoreUnavailable, match="refused these credentials") as raised:
            await call
        assert wrong_secret not in str(raised.value) and SECRET_KEY not in str(raised.value)


async def test_missing_bucket_is_one_clear_sentence(s3_server: S3Server) -> None:
    store = blob_store_from_env(None, s3_server.env("no-such-bucket"))
    assert isinstance(store, S3BlobStore)
    with pytest.raises(BlobStoreUnavailable, match="bucket 'no-such-bucket' does not exist"):
        await store.check()  # what the worker runs before it starts
    # (A put would not show it here: SeaweedFS creates a missing bucket on the first write.)
    with pytest.raises(BlobStoreUnavailable, match="bucket 'no-such-bucket' does not exist"):
        await store.get(BlobRef(uri="sha256:" + "c" * 64, size=1))


async def test_unreachable_endpoint_is_one_clear_sentence(s3_server: S3Server) -> None:
    [closed] = free_ports(1)
    env = {**s3_server.env("blobs"), "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{closed}"}
    store = S3BlobStore(s3_client(env), "blobs")
    with pytest.raises(BlobStoreUnavailable, match=f"cannot reach the S3 endpoint http://127.0.0.1:{closed}"):
        await store.put(b"words")


# ---- paid answers, beside the blobs ----


def answer_names(backing: Backing) -> list[str]:
    return [name for name in backing.names() if name.startswith(f"{ANSWERS_DIR}/")]


async def test_paid_answers_are_sealed_beside_the_blobs_and_only_for_their_request(make_store: MakeStore) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    answers = paid_answers_from(store)
    await answers.put("wf/run-1/llm-1", "fingerprint-a", "Refunds take 5 days, card 4242")
    [name] = answer_names(backing)
    assert name == f"{ANSWERS_DIR}/{hashlib.sha256(b'wf/run-1/llm-1').hexdigest()}.enc"
    assert b"4242" not in backing.read(name) and b"wf/run-1" not in backing.read(name)
    assert await answers.get("wf/run-1/llm-1", "fingerprint-a", str) == "Refunds take 5 days, card 4242"
    assert await answers.get("wf/run-1/llm-1", "fingerprint-b", str) is None  # another question
    assert await answers.get("wf/run-2/llm-1", "fingerprint-a", str) is None  # another run
    # Read after a rotation to k2 (the key id travels with the answer); not without k1.
    rotated, _ = make_store(codec("k1", "k2", active="k2"))
    assert await paid_answers_from(rotated).get("wf/run-1/llm-1", "fingerprint-a", str) is not None
    without_k1, _ = make_store(codec("k2", active="k2"))
    assert await paid_answers_from(without_k1).get("wf/run-1/llm-1", "fingerprint-a", str) is None


async def test_an_unreadable_paid_answer_counts_as_none_and_is_logged(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    answers = paid_answers_from(store)
    await answers.put("wf/run-1/llm-1", "fp", "kept")
    [name] = answer_names(backing)
    backing.write(name, backing.read(name)[:-3] + b"xyz")
    with caplog.at_level(logging.WARNING, logger="agent.paid_calls"):
        assert await answers.get("wf/run-1/llm-1", "fp", str) is None
    assert "unreadable, the call will be made again" in caplog.text


async def test_the_sweep_deletes_only_expired_answers_and_never_blobs(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, backing = make_store(codec("k1", active="k1"))
    answers = PaidAnswers(paid_answers_from(store).shelf, store.codec, retention=timedelta(hours=1))
    blob = await store.put(b"a blob is not an answer")
    for n in range(3):
        await answers.put(f"wf/run-1/old-{n}", "fp", "old")
    time.sleep(2.1)  # S3 keeps LastModified to the second
    await answers.put("wf/run-1/fresh", "fp", "fresh")
    names = answer_names(backing)
    fresh = f"{ANSWERS_DIR}/{hashlib.sha256(b'wf/run-1/fresh').hexdigest()}.enc"
    oldest = max(backing.modified(name) for name in names if name != fresh)
    assert backing.modified(fresh) > oldest
    await answers.settled()  # the first put's own sweep (nothing was past the retention then)
    assert len(answer_names(backing)) == 4
    # An hour after the old ones were written: only they are past the retention. Bounded: a sweep
    # deletes at most two here (and in a bucket looks at two objects), so a backlog takes several.
    now = oldest + timedelta(hours=1, milliseconds=500)
    monkeypatch.setattr("agent.paid_calls.SWEEP_LIMIT", 2)
    removed = [await answers.sweep(now) for _ in range(4)]
    assert sum(removed) == 3 and max(removed) <= 2, removed
    assert answer_names(backing) == [fresh]
    assert await answers.get("wf/run-1/fresh", "fp", str) == "fresh"
    # Long after: every answer goes, the blob stays.
    assert await answers.sweep(now + timedelta(days=1)) == 1
    assert answer_names(backing) == [] and await store.get(blob) == b"a blob is not an answer"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator() as handle:
        yield handle


def model_pod(sim: SimulatorHandle, env: dict[str, str]) -> ModelActivities:
    """The model activities of one worker pod, built from its settings as the worker builds them."""
    blobs = blob_store_from_env(codec("k1", active="k1"), env)
    settings = ModelSettings(base_url=sim.base_url, api_key="sim", model="sim-gpt", timeout_s=10)
    return ModelActivities(settings, blobs, paid_answers_from(blobs))


def attempt(n: int) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, workflow_id="wf-pods", workflow_run_id="run-1", activity_id="llm-1", attempt=n
    )
    return environment


def ask(text: str) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="user", content=text)])


async def test_a_retry_on_another_pod_returns_the_answer_without_paying_again(
    s3_server: S3Server, sim: SimulatorHandle, tmp_path: Path
) -> None:
    """Why paid answers live in the bucket: the pod that paid died before reporting, and the retry
    ran on another pod, with a disk of its own."""
    sim.reset()
    shared = s3_server.env(BUCKET, prefix=f"{uuid.uuid4().hex[:12]}/blobs")
    pod_a = model_pod(sim, {**shared, "AGENT_BLOB_DIR": str(tmp_path / "pod-a")})
    pod_b = model_pod(sim, {**shared, "AGENT_BLOB_DIR": str(tmp_path / "pod-b")})
    first = await attempt(1).run(pod_a.chat_completion, ask("Please remember the word pelican"))
    again = await attempt(2).run(pod_b.chat_completion, ask("Please remember the word pelican"))
    assert again == first and again.attempt == 1
    assert [c["request_key"] for c in sim.ledger()] == ["wf-pods/llm-1/1"]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing on either pod's disk


async def test_a_store_that_cannot_answer_holds_the_call_up_instead_of_paying(
    s3_server: S3Server, sim: SimulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim.reset()
    [closed] = free_ports(1)
    env = {**s3_server.env(BUCKET), "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{closed}"}
    pod = model_pod(sim, env)
    # The kept answer cannot be looked up: the attempt fails with the retryable error, unpaid.
    with pytest.raises(BlobStoreUnavailable, match="cannot reach the S3 endpoint"):
        await attempt(2).run(pod.chat_completion, ask("Hello"))
    assert sim.ledger() == []
    # An answer already paid that cannot be kept is logged, not lost: the attempt still reports it.
    assert pod.answers is not None
    with caplog.at_level(logging.WARNING, logger="agent.paid_calls"):
        await pod.answers.put("wf-pods/run-1/llm-1", "fp", "paid")
    assert "could not be kept" in caplog.text and "reporting it anyway" in caplog.text
