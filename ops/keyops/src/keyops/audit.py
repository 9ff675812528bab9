"""Questions for the codec server's audit log: is it intact, and who saw this workflow?

The audit log records, per request, the first 16 hex characters of SHA-256 of every encrypted
payload's ``data`` (what history stores). Hashing the payloads of a workflow's stored history
the same way and looking for those digests in the log names everyone who asked the codec server
to decode any of them, whatever tool they used (UI, CLI, ``keyops export``), and when.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client

from keyops.errors import KeyOpsError
from keyops.history import walk_payloads
from keyops.temporal import fetch_raw_history, resolve_run_id
from payload_codec import is_encrypted
from payload_codec.auditlog import Verification, verify

DIGEST_HEX_CHARS = 16  # as the codec server writes them (codec_server._audit)


def read_log(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise KeyOpsError(
            f"there is no audit log at {path}; pass the codec server's CODEC_SERVER_AUDIT_LOG file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8"
        raise KeyOpsError(f"cannot read the audit log {path} ({reason})") from None


def read_chain_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise KeyOpsError(f"cannot read the chain key file {path} ({exc.strerror or exc})") from None


def verify_log(path: Path, key: bytes | None = None) -> Verification:
    return verify(read_log(path), key)


@dataclass
class Access:
    ts: str
    subject: str | None
    auth_method: str | None
    client: str | None
    operation: str
    namespace: str | None
    outcome: str
    status: int
    payloads_matched: int
    user_agent: str | None
    seq: int | None

    @property
    def saw_plaintext(self) -> bool:
        return self.outcome == "ok" and self.operation == "decode"

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "saw_plaintext": self.saw_plaintext}


@dataclass
class WhoSaw:
    namespace: str
    workflow_id: str
    run_id: str
    encrypted_payloads: int
    accesses: list[Access] = field(default_factory=list)
    chain: Verification | None = None

    @property
    def subjects(self) -> list[str]:
        return sorted({a.subject or "(unauthenticated)" for a in self.accesses if a.saw_plaintext})

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "encrypted_payloads": self.encrypted_payloads,
            "saw_plaintext": self.subjects,
            "accesses": [a.as_dict() for a in self.accesses],
            "audit_log_chain": None if self.chain is None else self.chain.as_dict(),
        }


def history_digests(history: Any) -> set[str]:
    return {
        hashlib.sha256(found.payload.data).hexdigest()[:DIGEST_HEX_CHARS]
        for found in walk_payloads(history)
        if is_encrypted(found.payload)
    }


def match_accesses(lines: list[str], digests: set[str]) -> list[Access]:
    """Audit entries naming any of ``digests``, oldest first. Lines that are not JSON are skipped
    here (``verify`` reports them)."""
    out: list[Access] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        seen = [d for d in entry.get("payload_sha256") or [] if d in digests]
        if not seen:
            continue
        out.append(
            Access(
                ts=str(entry.get("ts")),
                subject=entry.get("subject"),
                auth_method=entry.get("auth_method"),
                client=entry.get("client"),
                operation=str(entry.get("operation")),
                namespace=entry.get("namespace"),
                outcome=str(entry.get("outcome")),
                status=int(entry.get("status") or 0),
                payloads_matched=len(seen),
                user_agent=entry.get("user_agent"),
                seq=entry.get("seq"),
            )
        )
    return out


async def who_saw(client: Client, workflow_id: str, run_id: str | None, log: Path, key: bytes | None = None) -> WhoSaw:
    run_id = await resolve_run_id(client, workflow_id, run_id)
    history = await fetch_raw_history(client, workflow_id, run_id)
    digests = history_digests(history)
    lines = read_log(log)
    accesses = match_accesses(lines, digests)
    return WhoSaw(client.namespace, workflow_id, run_id, len(digests), accesses, verify(lines, key))
