"""Every blob store behaves the same: the local directory and an S3 bucket on a real
S3-compatible server (SeaweedFS, `make s3-server`), run through one set of tests.

What the stores promise: blobs sealed by the payload codec (no plaintext at rest), names that
are keyed hashes, an integrity check on every read, write-once puts that concurrent writers of
the same content cannot tear, typed errors for a missing or damaged blob (activities fail for
good) and for a store that cannot be used right now (activities retry), in one sentence that
never holds a secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from harness import free_ports
from support.s3server import SECRET_KEY, S3Server, running_s3_server
from temporalio.api.common.v1 import Payload

from agent.blobs.s3 import S3BlobStore
from agent.blobs.settings import blob_store_from_env, s3_client
from agent.blobs.store import BlobCorrupted, BlobNotFound, BlobStore, BlobStoreUnavailable, LocalBlobStore
from agent.blobs.types import BlobRef
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


class Directory:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)


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
