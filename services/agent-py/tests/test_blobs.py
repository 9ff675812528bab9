"""The local blob store: content addressing, atomic writes, integrity, sealing with the payload
codec, clear configuration errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from agent.blobs.s3 import S3BlobStore
from agent.blobs.settings import blob_store_from_env
from agent.blobs.store import BlobCorrupted, BlobNotFound, LocalBlobStore
from agent.blobs.types import BlobRef, preview_of
from payload_codec import KEY_SIZE, EncryptionCodec, KeyRing, UnknownKeyError
from workerkit import ConfigError


async def test_put_names_bytes_by_their_hash_and_get_returns_them(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    text = "Refunds are issued within 5 business days. " * 20
    ref = await store.put(text.encode())
    assert ref.uri == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert ref.size == len(text.encode()) and ref.preview.startswith("Refunds are issued")
    assert len(ref.preview) <= 160
    assert await store.get(ref) == text.encode()
    # Same content, same name, one file.
    assert await store.put(text.encode()) == ref
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [ref.digest]


async def test_missing_corrupted_and_foreign_references(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobNotFound, match="is not in"):
        await store.get(BlobRef(uri="sha256:" + "a" * 64, size=1))
    with pytest.raises(BlobNotFound, match="is not a blob reference"):
        await store.get(BlobRef(uri="sha256:../../etc/passwd", size=1))
    ref = await store.put(b"original")
    store.path_for(ref).write_bytes(b"tampered")
    with pytest.raises(BlobCorrupted, match="does not match its hash"):
        await store.get(ref)


def test_store_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_BLOB_DIR", str(tmp_path / "blobs"))
    local = blob_store_from_env()
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "blobs"
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("AGENT_BLOB_DIR", str(blocker / "blobs"))
    with pytest.raises(ConfigError, match="Set AGENT_BLOB_DIR to a writable directory"):
        blob_store_from_env()


def test_store_kind_and_bucket_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AGENT_BLOB_STORE must be one of local, s3, got 'gcs'"):
        blob_store_from_env(None, {"AGENT_BLOB_STORE": "gcs"})
    with pytest.raises(ConfigError, match="AGENT_BLOB_STORE=s3 needs the bucket's name in AGENT_BLOB_S3_BUCKET"):
        blob_store_from_env(None, {"AGENT_BLOB_STORE": "s3"})
    env = {
        "AGENT_BLOB_STORE": "s3",
        "AGENT_BLOB_S3_BUCKET": "blobs",
        "AGENT_BLOB_S3_PREFIX": "/tenant-a/agents/",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_REGION": "eu-west-1",
    }
    store = blob_store_from_env(None, env)
    assert isinstance(store, S3BlobStore)
    assert str(store) == "s3://blobs/tenant-a/agents/ at http://127.0.0.1:9"
    digest = "ab" + "0" * 62
    assert store.key_for(BlobRef(uri="sha256:" + digest, size=1), sealed=True) == f"tenant-a/agents/ab/{digest}.enc"
    # A service other than AWS S3: buckets by path, in the region given.
    assert store.client.meta.config.s3 == {"addressing_style": "path"}
    assert store.client.meta.region_name == "eu-west-1"
    # Without an endpoint: AWS S3 itself, the SDK's defaults.
    aws = blob_store_from_env(None, {**env, "AWS_ENDPOINT_URL_S3": ""})
    assert isinstance(aws, S3BlobStore) and aws.client.meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"


def test_preview_is_short_and_flat() -> None:
    assert preview_of("a\n\n b") == "a b"
    assert preview_of("x" * 500, 10) == "x" * 9 + "…"


def _codec(*keys: str, active: str) -> EncryptionCodec:
    ring = KeyRing({k: bytes([i + 1]) * KEY_SIZE for i, k in enumerate(keys)}, {"agents": active})
    return EncryptionCodec(ring, "agents")


async def test_with_a_codec_blobs_are_sealed_on_disk_and_read_back(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, _codec("k1", active="k1"))
    secret = b"card 4111 1111 1111 1111, refund to Ada Lovelace " * 10
    ref = await store.put(secret)
    # Named by a keyed hash: the name does not let anyone confirm a guess of the content.
    assert ref.uri.startswith("hmac-sha256:k1:") and len(ref.digest) == 64
    assert hashlib.sha256(secret).hexdigest() not in ref.uri
    [stored] = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert stored == store.sealed_path_for(ref)
    assert b"4111" not in stored.read_bytes() and b"Lovelace" not in stored.read_bytes()
    assert await store.get(ref) == secret
    assert await store.put(secret) == ref and len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


async def test_sealed_blobs_survive_a_key_rotation_and_need_their_key(tmp_path: Path) -> None:
    ref = await LocalBlobStore(tmp_path, _codec("k1", active="k1")).put(b"written under k1")
    rotated = LocalBlobStore(tmp_path, _codec("k1", "k2", active="k2"))
    assert await rotated.get(ref) == b"written under k1"
    with pytest.raises(UnknownKeyError, match="k1"):
        await LocalBlobStore(tmp_path, _codec("k2", active="k2")).get(ref)
    with pytest.raises(BlobNotFound, match="encrypted and this process has no payload codec"):
        await LocalBlobStore(tmp_path).get(ref)


async def test_tampered_sealed_blob_and_plain_blobs_from_before_encryption(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, _codec("k1", active="k1"))
    ref = await store.put(b"sealed")
    path = store.sealed_path_for(ref)
    sealed = bytearray(path.read_bytes())
    sealed[-1] ^= 0xFF
    path.write_bytes(bytes(sealed))
    with pytest.raises(BlobCorrupted, match="cannot be decrypted"):
        await store.get(ref)
    path.write_bytes(b"\xff not a payload")
    with pytest.raises(BlobCorrupted, match="cannot be decrypted"):
        await store.get(ref)
    # A store that ran without encryption before: its plain files stay readable.
    legacy = await LocalBlobStore(tmp_path).put(b"written in plain text")
    assert await store.get(legacy) == b"written in plain text"


async def test_keyed_names_across_a_rotation_and_blobs_named_before(tmp_path: Path) -> None:
    old = LocalBlobStore(tmp_path, _codec("k1", active="k1"))
    text = b"the same document, before and after a rotation"
    ref1 = await old.put(text)
    rotated = LocalBlobStore(tmp_path, _codec("k1", "k2", active="k2"))
    ref2 = await rotated.put(text)
    assert ref2.uri.startswith("hmac-sha256:k2:") and ref2.digest != ref1.digest
    assert await rotated.get(ref1) == text == await rotated.get(ref2)
    # A sealed blob named by its SHA-256 (as stores wrote them before names were keyed).
    legacy = BlobRef(uri="sha256:" + hashlib.sha256(b"named the old way").hexdigest(), size=17)
    codec = rotated.codec
    assert codec is not None
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"binary/plain"}, data=b"named the old way")])
    rotated.sealed_path_for(legacy).parent.mkdir(parents=True, exist_ok=True)
    rotated.sealed_path_for(legacy).write_bytes(sealed.SerializeToString())
    assert await rotated.get(legacy) == b"named the old way"
    # Valid ciphertext of other bytes under a keyed name: refused.
    other = await rotated.put(b"something else entirely")
    rotated.sealed_path_for(ref2).write_bytes(rotated.sealed_path_for(other).read_bytes())
    with pytest.raises(BlobCorrupted, match="does not match its hash"):
        await rotated.get(ref2)
    with pytest.raises(BlobNotFound, match="encrypted and this process has no payload codec"):
        await LocalBlobStore(tmp_path).get(ref1)
