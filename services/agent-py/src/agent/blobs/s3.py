"""The blob store in a bucket of an S3-compatible service (AWS S3, SeaweedFS, Ceph, R2, ...).

Same names, sealing and integrity checks as :class:`~agent.blobs.store.LocalBlobStore`: a blob
is the object ``<prefix><first 2 hex>/<digest>[.enc]``, sealed by the worker's payload codec
before it leaves the process, so the bucket (and whoever lists or backs it up) sees keyed
hashes and ciphertext only. Objects are written once: a put whose name exists does nothing
(equal names mean equal bytes), and two concurrent puts of the same content each write a
complete object that opens to those bytes, so the last one standing is as good as the first.

boto3 is synchronous; each call runs in a thread (its clients are thread-safe). Failures of the
service, not of the blob (unreachable, credentials refused, no such bucket), are
:class:`~agent.blobs.store.BlobStoreUnavailable`, one sentence and never a secret: activities
let them through and Temporal retries them. Every request is counted and timed
(``agent_blob_store_requests_total``, ``agent_blob_store_request_duration_seconds``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from temporalio.converter import PayloadCodec

from agent.blobs.store import (
    BlobNotFound,
    BlobStoreUnavailable,
    check_name,
    new_ref,
    relative_name,
    seal,
    unseal,
)
from agent.blobs.types import BlobRef
from agent.metrics import record_blob_store_request

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

T = TypeVar("T")

_MISSING = ("NoSuchKey", "404", "NotFound")
_REFUSED = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken", "ExpiredToken")


class S3BlobStore:
    """Blobs as objects under ``prefix`` in ``bucket``, through ``client`` (a boto3 S3 client)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", codec: PayloadCodec | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.codec = codec

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.client.meta.endpoint_url}"

    def key_for(self, ref: BlobRef, sealed: bool) -> str:
        return self.prefix + relative_name(ref, sealed)

    async def check(self) -> None:
        """Raise :class:`BlobStoreUnavailable` unless the bucket answers to these credentials."""
        await self._call("check", lambda: self.client.head_bucket(Bucket=self.bucket), "")

    async def put(self, data: bytes, media_type: str = "text/plain; charset=utf-8") -> BlobRef:
        ref = new_ref(data, media_type, self.codec)
        key = self.key_for(ref, sealed=self.codec is not None)
        if not await self._exists(key):  # same name, same bytes: stored before (under some key)
            body = data if self.codec is None else await seal(self.codec, data)
            await self.write_object(key, body)
        return ref

    async def get(self, ref: BlobRef) -> bytes:
        where = f"s3://{self.bucket}/{self.prefix}"
        sealed_key, plain_key = self.key_for(ref, sealed=True), self.key_for(ref, sealed=False)
        stored = await self.read_object(sealed_key) if self.codec is not None else None
        if stored is not None:
            assert self.codec is not None
            data = await unseal(self.codec, ref, stored, where)
        elif (plain := await self.read_object(plain_key)) is not None:  # written before sealing was on
            data = plain
        elif self.codec is None and await self._exists(sealed_key):
            raise BlobNotFound(f"blob {ref.uri} in {where} is encrypted and this process has no payload codec")
        else:
            raise BlobNotFound(f"blob {ref.uri} is not in {where}")
        return check_name(self.codec, ref, data, where)

    async def _exists(self, key: str) -> bool:
        try:
            await self._call("head", lambda: self.client.head_object(Bucket=self.bucket, Key=key), key)
        except BlobNotFound:
            return False
        return True

    async def read_object(self, key: str) -> bytes | None:
        """The object's bytes, None if there is no such object (other failures: unavailable)."""
        try:
            return await self._call(
                "get", lambda: self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read(), key
            )
        except BlobNotFound:
            return None

    async def write_object(self, key: str, body: bytes) -> None:
        """One PUT of ``body`` (no metadata: it would be readable in clear)."""
        await self._call("put", lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body), key)

    async def delete_older_than(self, prefix: str, cutoff: datetime, limit: int, after: str = "") -> tuple[int, str]:
        """Look at one listing page of at most ``limit`` objects under ``prefix`` (those after the
        key ``after``) and delete the ones last modified before ``cutoff``. Returns how many, and
        where the next call goes on ("" once the listing is through): a large prefix is swept a
        page at a time, never in one long step."""

        def listed() -> ListObjectsV2OutputTypeDef:
            if after:
                return self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=limit, StartAfter=after)
            return self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=limit)

        page = await self._call("list", listed, prefix)
        entries = page.get("Contents", [])
        expired = [entry["Key"] for entry in entries if entry["LastModified"] < cutoff]
        for key in expired:  # one DELETE each: not every S3-compatible service takes DeleteObjects
            await self._call("delete", partial(self.client.delete_object, Bucket=self.bucket, Key=key), key)
        return len(expired), entries[-1]["Key"] if page.get("IsTruncated") and entries else ""

    async def _call(self, operation: str, call: Callable[[], T], key: str) -> T:
        """``call`` in a thread, counted and timed by ``operation`` and outcome."""
        started, outcome = time.monotonic(), "unavailable"
        try:
            result = await asyncio.to_thread(self._translated, call, key)
            outcome = "ok"
            return result
        except BlobNotFound:
            outcome = "not_found"
            raise
        finally:
            record_blob_store_request(operation, outcome, timedelta(seconds=time.monotonic() - started))

    def _translated(self, call: Callable[[], T], key: str) -> T:
        """``call``, its failures as this module's errors (see the module's doc)."""
        try:
            return call()
        except ClientError as err:
            raise self._client_error(err, key) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise BlobStoreUnavailable(
                f"no usable AWS credentials for s3://{self.bucket}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or give the pod an IAM role (IRSA)"
            ) from None
        except BotoConnectionError as err:
            raise BlobStoreUnavailable(
                f"cannot reach the S3 endpoint {self.client.meta.endpoint_url} ({type(err).__name__})"
            ) from None
        except BotoCoreError as err:
            raise BlobStoreUnavailable(f"S3 call for s3://{self.bucket}/{key} failed ({type(err).__name__})") from None

    def _client_error(self, err: ClientError, key: str) -> Exception:
        code = str(err.response.get("Error", {}).get("Code", ""))
        endpoint = self.client.meta.endpoint_url
        if code == "NoSuchBucket" or (not key and code in _MISSING):  # head_bucket: 404, no code
            return BlobStoreUnavailable(f"the bucket {self.bucket!r} does not exist at {endpoint}; create it first")
        if code in _MISSING:
            return BlobNotFound(f"s3://{self.bucket}/{key} does not exist")
        if code in _REFUSED:
            return BlobStoreUnavailable(
                f"{endpoint} refused these credentials for the bucket {self.bucket!r} ({code}): check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the IAM role's policy"
            )
        return BlobStoreUnavailable(f"S3 call for s3://{self.bucket}/{key} at {endpoint} failed ({code or err})")
