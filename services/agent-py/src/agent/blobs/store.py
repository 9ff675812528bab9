"""Blob stores: where the bytes behind a :class:`BlobRef` live.

The interface is two async calls, ``put`` and ``get``, so an S3-compatible store (put_object
under ``<prefix>/<aa>/<digest>``, get_object, with the same integrity check) fits behind it
without touching workflows or activities. The local store writes each blob once, atomically
(temporary file + rename), so concurrent writers of the same content cannot tear it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from agent.blobs.types import BlobRef, preview_of
from workerkit import ConfigError

BLOB_DIR_ENV = "AGENT_BLOB_DIR"
DEFAULT_BLOB_DIR = Path(".data") / "agent-blobs"


class BlobNotFound(LookupError):
    """No blob has this digest (the store was wiped, or points at another directory)."""


class BlobCorrupted(ValueError):
    """The stored bytes no longer hash to their name."""


class BlobStore(Protocol):
    async def put(self, data: bytes, media_type: str = ...) -> BlobRef: ...

    async def get(self, ref: BlobRef) -> bytes: ...


def ref_for(data: bytes, media_type: str, preview: str = "") -> BlobRef:
    return BlobRef(
        uri="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data), media_type=media_type, preview=preview
    )


class LocalBlobStore:
    """A directory of content-addressed files, ``<root>/<first 2 hex>/<digest>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, ref: BlobRef) -> Path:
        digest = ref.digest
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            # A reference comes from history; never let it name a path outside the store.
            raise BlobNotFound(f"{ref.uri!r} is not a sha256 blob reference")
        return self.root / digest[:2] / digest

    async def put(self, data: bytes, media_type: str = "text/plain; charset=utf-8") -> BlobRef:
        preview = preview_of(data.decode("utf-8", "replace")) if media_type.startswith("text/") else ""
        ref = ref_for(data, media_type, preview)
        await asyncio.to_thread(self._write, self.path_for(ref), data)
        return ref

    async def get(self, ref: BlobRef) -> bytes:
        return await asyncio.to_thread(self._read, ref)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        if path.exists():
            return  # same name, same bytes: written before
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, ref: BlobRef) -> bytes:
        path = self.path_for(ref)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"blob {ref.uri} is not in {self.root}") from None
        if hashlib.sha256(data).hexdigest() != ref.digest:
            raise BlobCorrupted(f"blob {ref.uri} in {self.root} does not match its hash")
        return data


def blob_store_from_env() -> LocalBlobStore:
    root = Path(os.environ.get(BLOB_DIR_ENV) or DEFAULT_BLOB_DIR).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot use {root} as the blob store: {err.strerror}. Set {BLOB_DIR_ENV} to a writable directory."
        ) from None
    if not os.access(root, os.W_OK):
        raise ConfigError(f"the blob store {root} is not writable. Set {BLOB_DIR_ENV} to a writable directory.")
    return LocalBlobStore(root)
