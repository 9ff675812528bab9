"""The local blob store: content addressing, atomic writes, integrity, clear configuration errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.blobs.store import BlobCorrupted, BlobNotFound, LocalBlobStore, blob_store_from_env
from agent.blobs.types import BlobRef, preview_of
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
    with pytest.raises(BlobNotFound, match="not a sha256 blob reference"):
        await store.get(BlobRef(uri="sha256:../../etc/passwd", size=1))
    ref = await store.put(b"original")
    store.path_for(ref).write_bytes(b"tampered")
    with pytest.raises(BlobCorrupted, match="does not match its hash"):
        await store.get(ref)


def test_store_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_BLOB_DIR", str(tmp_path / "blobs"))
    assert blob_store_from_env().root == tmp_path / "blobs"
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("AGENT_BLOB_DIR", str(blocker / "blobs"))
    with pytest.raises(ConfigError, match="Set AGENT_BLOB_DIR to a writable directory"):
        blob_store_from_env()


def test_preview_is_short_and_flat() -> None:
    assert preview_of("a\n\n b") == "a b"
    assert preview_of("x" * 500, 10) == "x" * 9 + "…"
