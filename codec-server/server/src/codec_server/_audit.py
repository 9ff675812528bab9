"""The audit trail: one JSON line per codec request, for proving who saw what.

A line holds identities, counts, digests and outcomes. It never holds payload plaintext, bearer
tokens or key material; digests are of the encrypted form only, because a short hash of a
low-entropy plaintext ("true", an account number) can be reversed by guessing.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from payload_codec.auditlog import GENESIS, chained_line, head_of

DIGEST_HEX_CHARS = 16
# Most audit lines are well under this; longer ones are read back in larger steps.
_TAIL_BYTES = 64 * 1024


@dataclass
class AuditRecord:
    ts: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    event: str = "codec_request"
    subject: str | None = None
    auth_method: str | None = None
    client: str | None = None
    namespace: str | None = None
    operation: str = ""
    path: str = ""
    payload_count: int | None = None
    # SHA-256 (first 16 hex chars) of each encrypted payload's data, in request order: the
    # input for decode, the output for encode. null for a payload that was not encrypted.
    payload_sha256: list[str | None] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)
    outcome: str = "error"
    status: int = 500
    reason: str | None = None
    error: str | None = None
    latency_ms: float = 0.0
    user_agent: str | None = None
    origin: str | None = None


class AuditLog:
    """Appends hash-chained lines (payload_codec.auditlog): each names the previous line's hash,
    so an edited, removed or reordered entry breaks the chain (``keyops audit verify``)."""

    def __init__(self, path: Path | None = None, stream: IO[str] | None = None, chain_key: bytes | None = None) -> None:
        self._lock = threading.Lock()
        self._key = chain_key
        self._seq, self._head = 0, GENESIS
        self._end = -1  # file size after our last write; -1: read the tail first
        # Several replicas may share one file on a node: every append happens under an exclusive
        # flock, after re-reading the last line if someone else wrote since (O_APPEND writes land
        # at the end whatever the position).
        self._file: IO[bytes] | None = open(path, "ab+") if path is not None else None
        self._stream = stream or sys.stdout

    def write(self, record: AuditRecord) -> None:
        fields = _clean(asdict(record))
        with self._lock:
            if self._file is None:
                line = self._next(fields)
                self._stream.write(line + "\n")
                self._stream.flush()
                return
            fd = self._file.fileno()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size != self._end:
                    self._seq, self._head = _tail_head(self._file, size)
                self._file.write((self._next(fields) + "\n").encode())
                self._file.flush()
                self._end = os.fstat(fd).st_size
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _next(self, fields: dict[str, Any]) -> str:
        line, chain = chained_line(fields, self._seq + 1, self._head, self._key)
        self._seq, self._head = self._seq + 1, chain
        return line

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _tail_head(file: IO[bytes], size: int) -> tuple[int, str]:
    """``(seq, chain)`` of the file's last line; a file that ends otherwise starts a new chain
    (an empty file, or a log written before chaining). Reads back from the end until the whole
    last line is in hand: a request of 10 000 payloads writes a line of about 200 KB."""
    want = _TAIL_BYTES
    while True:
        start = max(0, size - want)
        file.seek(start)
        text = file.read(size - start).rstrip(b"\n")
        newline = text.rfind(b"\n")
        if newline >= 0 or start == 0:
            return head_of(text[newline + 1 :].decode("utf-8", errors="replace")) or (0, GENESIS)
        want *= 4


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    record["latency_ms"] = round(record["latency_ms"], 3)
    return record
