"""The audit trail: one JSON line per tool call, for proving who did what.

A line names the caller, the tool, the workflow that ran it and the outcome. It never holds the
arguments or the result (an order id, a customer's message, an amount): only the SHA-256 of the
canonical arguments, salted with the workflow id so that a guess of a short argument ("ORD-1001")
cannot be confirmed from the log alone, and never a bearer token.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


def canonical(arguments: dict[str, Any]) -> bytes:
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def arguments_digest(arguments: dict[str, Any], salt: str) -> str:
    return hashlib.sha256(salt.encode() + b"\0" + canonical(arguments)).hexdigest()[:32]


@dataclass
class AuditRecord:
    tool: str
    subject: str | None
    auth_method: str | None
    transport: str
    outcome: str = "error"
    """``ok``, ``tool_error`` (the tool answered with an error), ``refused`` (auth), ``error``."""
    reason: str | None = None
    workflow_id: str | None = None
    arguments_sha256: str | None = None
    ts: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    latency_ms: float = 0.0
    _started: float = field(default_factory=time.monotonic, repr=False)


class AuditLog:
    """Appends one line per record to ``path`` (or stderr), under a lock: calls run concurrently."""

    def __init__(self, path: Path | None = None, stream: IO[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._path = path
        self._stream = stream

    def write(self, record: AuditRecord) -> None:
        record.latency_ms = round((time.monotonic() - record._started) * 1000, 1)
        entry = {k: v for k, v in asdict(record).items() if not k.startswith("_")}
        line = json.dumps({"event": "mcp_tool_call", **entry}, separators=(",", ":")) + "\n"
        with self._lock:
            if self._path is not None:
                with self._path.open("a", encoding="utf-8") as out:
                    out.write(line)
            else:
                (self._stream or sys.stderr).write(line)
