"""Export one workflow history in plain text, decoded by the codec server.

The history is read raw from Temporal, every encrypted payload goes to the codec server under
the caller's token (the server's audit log records who decoded which ciphertexts), and the
result is written as protobuf JSON, the format ``temporal workflow show --output json`` and the
SDKs' replayers read. Nothing is written unless every payload decoded.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format
from temporalio.client import Client

from keyops import __version__
from keyops._fs import atomic_write
from keyops.codec_client import CodecServerClient
from keyops.history import walk_payloads
from keyops.temporal import fetch_raw_history, resolve_run_id
from payload_codec import is_encrypted, payload_key_id


@dataclass(frozen=True)
class ExportSummary:
    namespace: str
    workflow_id: str
    run_id: str
    events: int
    payloads: int
    decoded: int
    key_ids: list[str]
    output: str
    sha256: str


def audit_user_agent(namespace: str, workflow_id: str, run_id: str) -> str:
    """Names the export in the codec server's audit line (it keeps the User-Agent)."""
    quoted = urllib.parse.quote(workflow_id, safe="-_.:@")
    return f"keyops-export/{__version__} ns={namespace} workflow={quoted} run={run_id}"


async def export_history(
    client: Client,
    workflow_id: str,
    run_id: str | None,
    codec: CodecServerClient,
    output: Path | None,
) -> ExportSummary:
    namespace = client.namespace
    run_id = await resolve_run_id(client, workflow_id, run_id)
    history = await fetch_raw_history(client, workflow_id, run_id)
    found = list(walk_payloads(history))
    encrypted = [f for f in found if is_encrypted(f.payload)]
    key_ids = sorted({payload_key_id(f.payload) or "(none)" for f in encrypted})
    decoded = await asyncio.to_thread(
        codec.decode,
        namespace,
        [f.payload for f in encrypted],
        user_agent=audit_user_agent(namespace, workflow_id, run_id),
    )
    for place, plain in zip(encrypted, decoded, strict=True):
        place.payload.CopyFrom(plain)
    text = json_format.MessageToJson(history, indent=2) + "\n"
    data = text.encode()
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        where = "standard output"
    else:
        # Plain text of a whole history: owner-only, like the keys that protected it.
        atomic_write(output, data)
        where = str(output)
    return ExportSummary(
        namespace,
        workflow_id,
        run_id,
        len(history.events),
        len(found),
        len(encrypted),
        key_ids,
        where,
        hashlib.sha256(data).hexdigest(),
    )
