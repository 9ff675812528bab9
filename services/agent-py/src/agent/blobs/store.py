"""Blob stores: where the bytes behind a :class:`BlobRef` live.

The interface is two async calls, ``put`` and ``get``. Two stores implement it with the same
names, sealing and integrity checks: :class:`LocalBlobStore` (a directory, one volume shared by
the workers) and :class:`agent.blobs.s3.S3BlobStore` (a bucket of an S3-compatible service);
:mod:`agent.blobs.settings` picks one from the environment. The local store writes each blob
once, atomically (temporary file + rename), so concurrent writers of the same content cannot
tear it.

Blobs hold what the payload codec keeps off the Temporal server in clear (user messages,
documents, archived transcripts), so they are sealed by the same codec: given the worker's
payload codec, the store writes each blob as an encoded Payload (``<digest>.enc``) under the
namespace's active key, and a key rotation needs nothing new here (the key id travels with each
file, as it does in history). Without a codec (``PAYLOAD_ENCRYPTION=off``) blobs are plain files.

Names. With the encrypting codec a blob is named by a keyed hash of its bytes
(``hmac-sha256:<key id>:<hex>``, ``EncryptionCodec.content_name``), not by their SHA-256: file
and object names are seen by whoever can list the store (backups, bucket listings) and travel
into the retrieval index as content hashes, and a plain hash of a short text can be confirmed by
guessing. Equal bytes under one key share a name; after a key rotation new blobs get names
under the new key (an unchanged document is then stored and indexed once more) and old names
stay checkable while the key ring holds their key. Blobs named ``sha256:`` before this stay
readable.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from google.protobuf.message import DecodeError as ProtobufDecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from agent.blobs.types import BlobRef, preview_of
from payload_codec import DecodeError, EncryptionCodec, UnknownKeyError

SEALED_SUFFIX = ".enc"
# The blob's bytes are opaque to the codec: binary/plain keeps them out of any JSON handling.
_BLOB_ENCODING = {"encoding": b"binary/plain"}


class BlobNotFound(LookupError):
    """No blob has this digest (the store was wiped, or points at another directory)."""


class BlobCorrupted(ValueError):
    """The stored bytes no longer hash to their name, or a sealed blob does not decrypt."""


class BlobStoreUnavailable(ConnectionError):
    """The store cannot be used right now: unreachable, credentials refused, bucket missing.

    Unlike :class:`BlobNotFound` and :class:`BlobCorrupted` (the blob itself is wrong; activities
    fail for good) an operator can fix this, so activities let it through and Temporal retries.
    """


class BlobStore(Protocol):
    async def put(self, data: bytes, media_type: str = ...) -> BlobRef: ...

    async def get(self, ref: BlobRef) -> bytes: ...


def ref_for(data: bytes, media_type: str, preview: str = "", codec: PayloadCodec | None = None) -> BlobRef:
    if isinstance(codec, EncryptionCodec):
        uri = codec.content_name(data)
    else:
        uri = "sha256:" + hashlib.sha256(data).hexdigest()
    return BlobRef(uri=uri, size=len(data), media_type=media_type, preview=preview)


def new_ref(data: bytes, media_type: str, codec: PayloadCodec | None) -> BlobRef:
    """The reference ``put`` returns: the name, and a preview of text."""
    preview = preview_of(data.decode("utf-8", "replace")) if media_type.startswith("text/") else ""
    return ref_for(data, media_type, preview, codec)


def relative_name(ref: BlobRef, sealed: bool) -> str:
    """``<first 2 hex>/<digest>[.enc]``: where every store keeps ``ref`` under its root."""
    digest = ref.digest
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        # A reference comes from history; never let it name a path outside the store.
        raise BlobNotFound(f"{ref.uri!r} is not a blob reference (sha256: or hmac-sha256:)")
    return f"{digest[:2]}/{digest}{SEALED_SUFFIX if sealed else ''}"


async def seal(codec: PayloadCodec, data: bytes) -> bytes:
    """``data`` as the stored bytes of a sealed blob: an encoded Payload, key id included."""
    [sealed] = await codec.encode([Payload(metadata=_BLOB_ENCODING, data=data)])
    return sealed.SerializeToString()


async def unseal(codec: PayloadCodec, ref: BlobRef, stored: bytes, where: str) -> bytes:
    try:
        [payload] = await codec.decode([Payload.FromString(stored)])
    except UnknownKeyError:
        raise  # an operator can supply the key: worth retrying, and the message names it
    except (DecodeError, ProtobufDecodeError) as err:
        raise BlobCorrupted(f"blob {ref.uri} in {where} cannot be decrypted: {err}") from None
    return payload.data


def check_name(codec: PayloadCodec | None, ref: BlobRef, data: bytes, where: str) -> bytes:
    """``data`` if it is what ``ref`` names, else :class:`BlobCorrupted`."""
    if ref.uri.startswith("sha256:"):
        named = hashlib.sha256(data).hexdigest() == ref.digest
    elif not isinstance(codec, EncryptionCodec):
        raise BlobNotFound(f"blob {ref.uri} has a keyed name; this process has no payload codec to check it")
    else:
        named = codec.check_content_name(ref.uri, data)
    if not named:
        raise BlobCorrupted(f"blob {ref.uri} in {where} does not match its hash")
    return data


class LocalBlobStore:
    """A directory of content-addressed files, ``<root>/<first 2 hex>/<digest>[.enc]``.

    With ``codec``, new blobs are sealed; plain files written before encryption was turned on
    stay readable, so turning it on loses nothing.
    """

    def __init__(self, root: Path, codec: PayloadCodec | None = None) -> None:
        self.root = root
        self.codec = codec

    def __str__(self) -> str:
        return f"directory {self.root}"

    def path_for(self, ref: BlobRef) -> Path:
        return self.root / relative_name(ref, sealed=False)

    def sealed_path_for(self, ref: BlobRef) -> Path:
        return self.root / relative_name(ref, sealed=True)

    async def put(self, data: bytes, media_type: str = "text/plain; charset=utf-8") -> BlobRef:
        ref = new_ref(data, media_type, self.codec)
        if self.codec is None:
            await asyncio.to_thread(write_once, self.path_for(ref), data)
            return ref
        path = self.sealed_path_for(ref)
        if not path.exists():  # same name, same bytes: sealed before (under some key)
            await asyncio.to_thread(write_once, path, await seal(self.codec, data))
        return ref

    async def get(self, ref: BlobRef) -> bytes:
        sealed = self.sealed_path_for(ref)
        if self.codec is not None and sealed.exists():
            stored = await asyncio.to_thread(sealed.read_bytes)
            data = await unseal(self.codec, ref, stored, str(self.root))
        else:
            data = await asyncio.to_thread(self._read_plain, ref)
        return check_name(self.codec, ref, data, str(self.root))

    def _read_plain(self, ref: BlobRef) -> bytes:
        path = self.path_for(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if self.sealed_path_for(ref).exists():
                raise BlobNotFound(
                    f"blob {ref.uri} in {self.root} is encrypted and this process has no payload codec"
                ) from None
            raise BlobNotFound(f"blob {ref.uri} is not in {self.root}") from None


def write_once(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (temporary file, fsync, rename) unless it exists: a name that
    is already there was written by an earlier, equal write."""
    if path.exists():
        return
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
