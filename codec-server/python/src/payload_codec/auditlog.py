"""The codec server's audit log as a hash chain, so that edits, deletions and reordering show.

Format (codec-server/README.md, "Audit log"): one JSON object per line. Every line begins
with ``"seq"`` (1, 2, 3, ... per file) and ``"prev"`` (the previous line's ``chain``, 64 zeros
for the first line) and ends with ``"chain"``, the last member::

    {"seq":7,"prev":"<64 hex>", ...the record..., "chain":"<64 hex>"}

``chain`` is SHA-256 (or HMAC-SHA256 under a chain key) of the line's *body*: the exact bytes
of the line with the trailing ``,"chain":"<64 hex>"}`` replaced by ``}``. Hashing the bytes as
written, not a re-serialization, keeps the check independent of any JSON library.

Without a key, anyone who can write the file can rewrite it from some line on and recompute
every hash after it; the chain then proves order and completeness only up to a head
(``seq``, ``chain``) copied elsewhere. With a key (kept away from whoever administers the log
files) an edit cannot be re-chained at all.

This module lives in ``payload_codec`` because both the writer (the codec server) and the
verifier (``keyops audit verify``) depend on it and on nothing else they share.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
_TAIL = re.compile(r',"chain":"([0-9a-f]{64})"\}$')


def chain_hash(body: bytes, key: bytes | None = None) -> str:
    if key is not None:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def chained_line(record: dict[str, Any], seq: int, prev: str, key: bytes | None = None) -> tuple[str, str]:
    """The line (without newline) for ``record`` at position ``seq`` after ``prev``, and its chain."""
    fields = {"seq": seq, "prev": prev, **{k: v for k, v in record.items() if k not in ("seq", "prev", "chain")}}
    body = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    chain = chain_hash(body.encode(), key)
    return f'{body[:-1]},"chain":"{chain}"}}', chain


def head_of(line: str) -> tuple[int, str] | None:
    """``(seq, chain)`` of a chained line, or None for anything else."""
    match = _TAIL.search(line)
    if match is None:
        return None
    try:
        seq = json.loads(line).get("seq")
    except ValueError:
        return None
    return (seq, match.group(1)) if isinstance(seq, int) else None


@dataclass(frozen=True)
class Problem:
    line: int
    """1-based line number in the file."""
    seq: int | None
    kind: str
    """``altered``, ``removed`` or ``reordered``."""
    message: str


@dataclass(frozen=True)
class Verification:
    entries: int
    legacy_lines: int
    """Lines before the first chained one (written before the log was chained)."""
    head_seq: int
    head: str
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "legacy_lines": self.legacy_lines,
            "head_seq": self.head_seq,
            "head": self.head,
            "problem": None if self.problem is None else self.problem.__dict__,
        }


def verify(lines: Iterable[str], key: bytes | None = None) -> Verification:
    """Check a whole log; report the first altered, removed or reordered entry."""
    text = [line.rstrip("\n") for line in lines]
    parsed: list[tuple[int, str, str, int | None]] = []  # line number, body, stated chain, seq
    legacy = 0
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        match = _TAIL.search(line)
        if match is None:
            if not parsed:
                legacy += 1
                continue
            return _fail(parsed, legacy, number, None, "altered", f"line {number} is not a chained audit entry")
        try:
            seq = json.loads(line).get("seq")
        except ValueError:
            return _fail(parsed, legacy, number, None, "altered", f"line {number} is not valid JSON")
        parsed.append((number, line[: match.start()] + "}", match.group(1), seq if isinstance(seq, int) else None))
    present = {seq: number for number, _, _, seq in parsed if seq is not None}
    prev_chain, prev_seq = GENESIS, 0
    for index, (number, body, chain, seq) in enumerate(parsed):
        where = f"line {number}" + (f" (seq {seq})" if seq is not None else "")
        if seq is None or chain_hash(body.encode(), key) != chain:
            message = f"{where} was altered: its content does not match its hash"
            return _fail(parsed[:index], legacy, number, seq, "altered", message)
        if seq != prev_seq + 1:
            missing = prev_seq + 1
            if seq <= prev_seq or missing in present:
                later = present.get(missing)
                return _fail(
                    parsed[:index],
                    legacy,
                    number,
                    seq,
                    "reordered",
                    f"{where} is out of order: seq {missing} should come first"
                    + (f" (it is at line {later})" if later and seq > prev_seq else ""),
                )
            gap = f"seq {missing}" if seq == missing + 1 else f"seq {missing} to {seq - 1}"
            return _fail(parsed[:index], legacy, number, seq, "removed", f"{gap} removed before {where}")
        if json.loads(body).get("prev") != prev_chain:
            return _fail(
                parsed[:index],
                legacy,
                number,
                seq,
                "altered",
                f"{where} does not chain to the entry before it: that entry (or one before it) was rewritten",
            )
        prev_chain, prev_seq = chain, seq
    return Verification(len(parsed), legacy, prev_seq, prev_chain, None)


def _fail(
    good: list[tuple[int, str, str, int | None]], legacy: int, line: int, seq: int | None, kind: str, message: str
) -> Verification:
    head_seq, head = (good[-1][3] or 0, good[-1][2]) if good else (0, GENESIS)
    return Verification(len(good), legacy, head_seq, head, Problem(line, seq, kind, message))
