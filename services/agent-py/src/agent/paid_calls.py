"""What keeps a paid provider call from being paid twice after it returns.

Temporal records an activity's result once the worker reports it. Between the provider's answer
and that report, two things can lose a paid answer: the worker dies, or the Temporal server does
not answer the completion (the SDK's core reports a completion once: on a network error it logs
"Network error while completing activity" and drops it, measured here with a 60 s outage).
Either way the next attempt would call the provider again. So the model and embedding
activities keep every answer here, sealed by the payload codec, *before* they report it, and a
later attempt of the same call returns the kept answer instead of calling the provider; and they
report it themselves (:class:`PatientCompletion`), retrying through a server outage.

- **Key**: ``<workflow id>/<run id>/<activity id>[/<part>]``. Activity retries stay within one
  run, so the run id keeps a conversation replaced under the same workflow id (``agent demo``)
  from reading the old run's answers. A fingerprint of the request is stored beside the answer
  and must match, so a reused key never returns an answer to a different question.
- **Where**: beside the blobs, so they follow the blob store (:func:`paid_answers_from`): with the
  directory store in ``<AGENT_BLOB_DIR>/paid-answers/<sha256 of key>[.enc]``; with S3 in the same
  bucket as ``<blob prefix>paid-answers/<sha256 of key>[.enc]``, so a retry that lands on another
  pod after a crash finds the answer too. :class:`AnswerShelf` is the seam between the two.
- **Sealing**: each answer is an encoded Payload under the namespace's active key, like the blob
  store's; a key the process no longer has, or bytes that do not decrypt, count as no answer
  kept (the call is made again) and are logged, never fatal.
- **A store that cannot be used right now** (S3 unreachable, credentials refused, a volume that
  cannot be read: :class:`~agent.blobs.store.BlobStoreUnavailable`): on a lookup the activity
  fails with that retryable error *before* calling the provider, so an outage never turns into
  paying again silently; Temporal retries and the answer is found once the store is back. On
  keeping an answer it is logged, counted (``agent_paid_answers_unkept_total``, alert
  ``PaidAnswersNotKept``) and the answer is reported anyway: the provider is already paid, and
  failing the attempt would make the next one certainly pay again, while reporting it pays again
  only if the completion is lost too.
- **Retention**: answers are only needed while their activity may still retry, so answers older
  than ``AGENT_PAID_ANSWER_RETENTION_S`` (default 24 h) are deleted by a sweep that runs at most
  every ten minutes, started by a write and run beside it (in a bucket: one listing page of
  ``SWEEP_LIMIT`` objects a sweep, the next sweep the next page, expired by their LastModified;
  a lifecycle rule on the prefix is the better tool in production).

What stays open: a worker killed after the provider answered and before the answer is kept
(milliseconds; one PUT with S3), and a call in flight when its worker dies (the provider
finishes a request nobody reads). Both are paid again; ``make drill-crash`` counts them.

:func:`kept_alive` heartbeats while a provider call runs, so a worker that dies mid-call is
noticed after the activity's heartbeat timeout (seconds), not its start-to-close timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from google.protobuf.message import DecodeError as ProtobufDecodeError
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.service import RPCError, RPCStatusCode

from agent.blobs.s3 import S3BlobStore
from agent.blobs.store import SEALED_SUFFIX, BlobStoreUnavailable, LocalBlobStore, write_once
from agent.metrics import record_paid_answer_unkept
from payload_codec import DecodeError, UnknownKeyError
from workerkit.settings import seconds_setting

log = logging.getLogger(__name__)

T = TypeVar("T")

RETENTION_ENV = "AGENT_PAID_ANSWER_RETENTION_S"
COMPLETION_PATIENCE_ENV = "AGENT_COMPLETION_PATIENCE_S"
DEFAULT_COMPLETION_PATIENCE_S = 180.0
DEFAULT_RETENTION = timedelta(hours=24)
SWEEP_EVERY = timedelta(minutes=10)
SWEEP_LIMIT = 1000
ANSWERS_DIR = "paid-answers"
_KEY = "paid-answer-key"
_FINGERPRINT = "paid-answer-fingerprint"
_converter = DataConverter.default.payload_converter


def call_key(part: str | None = None) -> str:
    """The key of the running activity's call (``part``: one of several provider requests)."""
    info = activity.info()
    key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
    return f"{key}/{part}" if part is not None else key


def fingerprint(request: Any) -> str:
    """A digest of what was asked, as the payload converter writes it."""
    return hashlib.sha256(_converter.to_payload(request).data).hexdigest()


class AnswerShelf(Protocol):
    """Where :class:`PaidAnswers` keeps its sealed answers, by name."""

    async def read(self, name: str) -> bytes | None:
        """The stored bytes, None if there are none; a store that cannot answer raises
        :class:`~agent.blobs.store.BlobStoreUnavailable`."""
        ...

    async def write(self, name: str, data: bytes) -> None: ...

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Delete answers last written before ``cutoff``, at most ``SWEEP_LIMIT`` a call; how many."""
        ...


class DirectoryShelf:
    """Answers as files ``<root>/<name>``, written atomically and fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return f"directory {self.root}"

    async def read(self, name: str) -> bytes | None:
        path = self.root / name
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as err:
            # A volume that is there but cannot be read (I/O error, permissions, a stray
            # directory) is this store's outage, as an unreachable endpoint is S3's.
            raise BlobStoreUnavailable(f"cannot read the paid answer {path}: {err.strerror or err}") from err

    async def write(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(write_once, self.root / name, data)

    async def delete_older_than(self, cutoff: datetime) -> int:
        return await asyncio.to_thread(self._delete_older_than, cutoff.timestamp())

    def _delete_older_than(self, cutoff: float) -> int:
        removed = 0
        for path in self.root.glob("*"):
            if removed == SWEEP_LIMIT:
                break
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed


class BucketShelf:
    """Answers as objects ``<blob prefix>paid-answers/<name>`` in the blob store's bucket, through
    its client, settings and errors. A sweep looks at one listing page (``SWEEP_LIMIT`` objects),
    the next sweep at the next page, round the prefix."""

    def __init__(self, blobs: S3BlobStore) -> None:
        self.blobs = blobs
        self.prefix = f"{blobs.prefix}{ANSWERS_DIR}/"
        self._after = ""  # where the next sweep goes on listing

    def __str__(self) -> str:
        return f"s3://{self.blobs.bucket}/{self.prefix}"

    async def read(self, name: str) -> bytes | None:
        return await self.blobs.read_object(self.prefix + name)

    async def write(self, name: str, data: bytes) -> None:
        await self.blobs.write_object(self.prefix + name, data)

    async def delete_older_than(self, cutoff: datetime) -> int:
        removed, self._after = await self.blobs.delete_older_than(self.prefix, cutoff, SWEEP_LIMIT, self._after)
        return removed


class PaidAnswers:
    """Answers kept on ``shelf`` as ``<sha256 of key>[.enc]``."""

    def __init__(
        self, shelf: AnswerShelf, codec: PayloadCodec | None, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self.shelf = shelf
        self.codec = codec
        self.retention = retention
        self._last_sweep = float("-inf")
        self._sweeps: set[asyncio.Task[int]] = set()

    def name_for(self, key: str) -> str:
        name = hashlib.sha256(key.encode()).hexdigest()
        return name + SEALED_SUFFIX if self.codec else name

    async def get(self, key: str, request_fingerprint: str, type_hint: type[T]) -> T | None:
        """The kept answer to this call, or None (never kept, expired, or unreadable). A store
        that cannot answer raises :class:`~agent.blobs.store.BlobStoreUnavailable` (retryable):
        calling the provider instead could pay for an answer that is kept."""
        name = self.name_for(key)
        stored = await self.shelf.read(name)
        if stored is None:
            return None
        try:
            payload = Payload.FromString(stored)
            if self.codec is not None:
                [payload] = await self.codec.decode([payload])
        except (UnknownKeyError, DecodeError, ProtobufDecodeError) as err:
            log.warning("paid answer %s unreadable, the call will be made again: %s", name, err)
            return None
        meta = payload.metadata
        if meta.get(_KEY) != key.encode() or meta.get(_FINGERPRINT) != request_fingerprint.encode():
            log.warning("paid answer %s belongs to another request; the call will be made again", name)
            return None
        value: T = _converter.from_payload(payload, type_hint)
        return value

    async def put(self, key: str, request_fingerprint: str, answer: Any) -> None:
        """Keep ``answer`` durably before the activity reports it. If the store fails, log it and
        return: the answer is paid for, and reporting it beats failing (see the module's doc)."""
        payload = _converter.to_payload(answer)
        payload.metadata[_KEY] = key.encode()
        payload.metadata[_FINGERPRINT] = request_fingerprint.encode()
        if self.codec is not None:
            [payload] = await self.codec.encode([payload])
        name = self.name_for(key)
        try:
            await self.shelf.write(name, payload.SerializeToString())
        except OSError as err:  # BlobStoreUnavailable too
            log.warning("paid answer %s could not be kept in %s (%s); reporting it anyway", name, self.shelf, err)
            record_paid_answer_unkept()
            return
        if time.monotonic() - self._last_sweep >= SWEEP_EVERY.total_seconds():
            self._last_sweep = time.monotonic()
            # In the background: the answer's report does not wait for the store's listing.
            sweeping = asyncio.create_task(self.sweep())
            self._sweeps.add(sweeping)
            sweeping.add_done_callback(self._sweeps.discard)

    async def settled(self) -> None:
        """Wait for the sweeps :meth:`put` started."""
        await asyncio.gather(*self._sweeps)

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete answers past their retention; returns how many. A failing store is logged: the
        next sweep tries again."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        try:
            removed = await self.shelf.delete_older_than(cutoff)
        except OSError as err:
            log.warning("paid answers: the sweep of %s failed (%s); the next one tries again", self.shelf, err)
            return 0
        if removed:
            log.info("paid answers: %d past their %s retention deleted from %s", removed, self.retention, self.shelf)
        return removed


def paid_answers_from(blobs: LocalBlobStore | S3BlobStore) -> PaidAnswers:
    """Paid answers beside the blob store :func:`~agent.blobs.settings.blob_store_from_env` chose
    (same directory or bucket, same sealing)."""
    seconds = seconds_setting(RETENTION_ENV, DEFAULT_RETENTION.total_seconds())
    shelf: AnswerShelf
    if isinstance(blobs, S3BlobStore):
        shelf = BucketShelf(blobs)
    else:
        root = blobs.root / ANSWERS_DIR
        root.mkdir(parents=True, exist_ok=True)
        shelf = DirectoryShelf(root)
    return PaidAnswers(shelf, blobs.codec, timedelta(seconds=seconds))


@contextlib.asynccontextmanager
async def kept_alive(what: str) -> AsyncIterator[None]:
    """Heartbeat while the body runs, three times per heartbeat timeout (none set: nothing)."""
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield
        return
    interval = max(timeout.total_seconds() / 3, 0.2)

    async def beat() -> None:
        while True:
            activity.heartbeat(what)
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# Refusals no retry changes (the result itself is wrong, or this worker may not report it).
_FINAL = (
    RPCStatusCode.INVALID_ARGUMENT,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.FAILED_PRECONDITION,
)


class PatientCompletion:
    """Reports an activity's result with its own retries, for minutes, instead of the SDK's one try.

    :meth:`report` hands the result to a background task and ends the activity function
    (``activity.raise_complete_async``); the task completes the activity through the worker's
    client, retrying while the server is unreachable for ``patience_s``
    (``AGENT_COMPLETION_PATIENCE_S``, 180 s). If the attempt has meanwhile timed out (its heartbeat
    stopped with the outage), the server refuses the late report, and the next attempt returns
    the kept answer: either way the provider is not paid again.
    """

    def __init__(self, client: Client, patience_s: float | None = None) -> None:
        self.client = client
        if patience_s is None:
            patience_s = seconds_setting(COMPLETION_PATIENCE_ENV, DEFAULT_COMPLETION_PATIENCE_S)
        self.patience_s = patience_s
        self._pending: set[asyncio.Task[None]] = set()

    def report(self, result: Any) -> None:
        """Complete the running activity with ``result`` from a background task; never returns."""
        task = asyncio.create_task(self._deliver(activity.info().task_token, result))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        activity.raise_complete_async()

    async def _deliver(self, task_token: bytes, result: Any) -> None:
        handle = self.client.get_async_activity_handle(task_token=task_token)
        deadline = time.monotonic() + self.patience_s
        delay = 0.2
        while True:
            try:
                await handle.complete(result)
                return
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    log.info(
                        "a late completion was refused (the attempt timed out); the next attempt "
                        "returns the kept answer"
                    )
                    return
                if err.status in _FINAL or time.monotonic() + delay >= deadline:
                    log.warning(
                        "could not report a completed activity within %.0f s: %s; the next attempt "
                        "returns the kept answer",
                        self.patience_s,
                        err.message,
                    )
                    return
                await asyncio.sleep(delay)
                # At most a second apart: a restarted server soon times out an attempt whose
                # heartbeats stopped with the outage, and the report must come before that.
                delay = min(delay * 2, 1.0)
