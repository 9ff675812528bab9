"""The audit trail: one JSON line per codec request, for proving who saw what.

A line holds identities, counts, digests and outcomes. It never holds payload plaintext, bearer
tokens or key material; digests are of the encrypted form only, because a short hash of a
low-entropy plaintext ("true", an account number) can be reversed by guessing.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

DIGEST_HEX_CHARS = 16


@dataclass
class AuditRecord:
    ts: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
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
    def __init__(self, path: Path | None = None, stream: IO[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._owned = False
        if path is not None:
            # Line-buffered append: each record reaches the file whole and at once, and several
            # replicas can share one file on a node.
            self._stream: IO[str] = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._stream = stream or sys.stdout

    def write(self, record: AuditRecord) -> None:
        line = json.dumps(_clean(asdict(record)), separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    record["latency_ms"] = round(record["latency_ms"], 3)
    return record
