"""The portal's audit log: one hash-chained JSON line per login and decision (and per listing:
who was shown which approvals), in the codec server's format (``payload_codec.auditlog``), so
``keyops audit verify`` checks it the same way.

Records hold identities, ids, decisions and outcomes, never plaintext: no note, no reason, no
message the agent wrote (a note's length is kept, to tell an empty one from a written one).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from payload_codec.auditlog import GENESIS, chained_line, head_of


class AuditLog:
    def __init__(self, path: Path | None = None, stream: IO[str] | None = None) -> None:
        """Appends to ``path`` (continuing its chain), else writes to ``stream`` (stdout)."""
        self._lock = threading.Lock()
        self._seq, self._prev = 0, GENESIS
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if (head := head_of(line)) is not None:
                        self._seq, self._prev = head
            self._out: IO[str] = open(path, "a", encoding="utf-8")  # closed by close()
            self._owned = True
        else:
            self._out, self._owned = stream or sys.stdout, False

    def write(self, event: str, **fields: Any) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
        with self._lock:
            self._seq += 1
            line, self._prev = chained_line(record, self._seq, self._prev)
            self._out.write(line + "\n")
            self._out.flush()

    def close(self) -> None:
        if self._owned:
            self._out.close()
