"""The call ledger: one entry per chat-completions or embeddings request, served or failed.

Tests use it to prove that an agent did not pay twice for a model call, so it must also survive
a server restart: with a path configured, every entry is appended as one JSON line and the file
is read back at start-up.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("modelserver")


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    timestamp: str
    model: str | None
    request_digest: str
    request_key: str | None
    outcome: str
    status: int
    usage: dict[str, Any] | None
    latency_ms: float
    fault: str | None
    finish_reason: str | None
    tool_calls: list[str]
    stream: bool
    endpoint: str = "chat.completions"
    """``chat.completions`` or ``embeddings`` (entries written before this field existed are chat)."""
    inputs: int | None = None
    """Embeddings: how many texts the request carried."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def utc_timestamp(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Ledger:
    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = path
        self._entries: list[dict[str, Any]] = []
        if path is not None:
            self._entries = _load(path)
        self._next_seq = max((int(e.get("seq", 0)) for e in self._entries), default=0) + 1

    @property
    def path(self) -> Path | None:
        return self._path

    def reserve(self) -> int:
        """A sequence number, taken when the request arrives so responses can quote it early."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def record(self, entry: LedgerEntry) -> None:
        line = entry.to_json()
        with self._lock:
            self._entries.append(line)
            if self._path is not None:
                with self._path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
                    # flush() hands the line to the kernel, so a killed server loses nothing.
                    handle.flush()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget every entry, in memory and on disk, and restart numbering at 1."""
        with self._lock:
            self._entries = []
            self._next_seq = 1
            if self._path is not None:
                self._path.write_text("", encoding="utf-8")


def _load(path: Path) -> list[dict[str, Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch()
        return []
    raw = path.read_text(encoding="utf-8", errors="replace")
    if raw and not raw.endswith("\n"):
        # A crash mid-write leaves a torn last line; terminate it so the next entry starts clean.
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n")
    entries: list[dict[str, Any]] = []
    skipped = 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(value, dict):
            entries.append(value)
        else:
            skipped += 1
    if skipped:
        log.warning("ledger %s: skipped %d unreadable line(s)", path, skipped)
    return entries
