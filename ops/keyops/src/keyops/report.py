"""Which encryption keys the stored histories reference, per namespace.

This is the evidence for retiring a key: a key may leave the key ring only when no history that
anyone may still read names it, in any namespace. Closed histories leave the server at the end
of the namespace's retention period, so for a key that no open workflow references the report
also says when its last reference will be gone.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from keyops.errors import KeyOpsError, NotFoundError
from keyops.history import walk_payloads
from keyops.temporal import ExecutionRef, fetch_raw_history, in_namespace, list_executions, retention
from payload_codec import is_encrypted, payload_key_id

UNENCRYPTED = "unencrypted"
NO_KEY_ID = "(encrypted, no key id)"
DEFAULT_CONCURRENCY = 8


def classify(payload: Payload) -> str:
    """The row a payload is counted in: its key id, or ``unencrypted``."""
    if not is_encrypted(payload):
        return UNENCRYPTED
    return payload_key_id(payload) or NO_KEY_ID


@dataclass(frozen=True)
class HistoryTally:
    payloads: Counter[str]
    """Label (key id or ``unencrypted``) -> payload count."""
    unencrypted_locations: Counter[str]
    """Field path (indices elided) -> count of unencrypted payloads there."""


def tally_history(history: Message | Iterable[Message]) -> HistoryTally:
    payloads: Counter[str] = Counter()
    locations: Counter[str] = Counter()
    for found in walk_payloads(history):
        if found.sdk_bookkeeping:
            continue
        label = classify(found.payload)
        payloads[label] += 1
        if label == UNENCRYPTED:
            locations[found.location] += 1
    return HistoryTally(payloads, locations)


@dataclass
class KeyUsage:
    payloads: int = 0
    workflows: int = 0
    open_workflows: int = 0
    last_close_time: datetime | None = None


@dataclass
class NamespaceReport:
    namespace: str
    retention: timedelta | None = None
    workflows: int = 0
    keys: dict[str, KeyUsage] = field(default_factory=dict)
    unencrypted_locations: Counter[str] = field(default_factory=Counter)
    vanished: int = 0
    """Listed, but deleted before its history could be read."""

    def add(self, execution: ExecutionRef, tally: HistoryTally) -> None:
        self.workflows += 1
        for label, count in tally.payloads.items():
            usage = self.keys.setdefault(label, KeyUsage())
            usage.payloads += count
            usage.workflows += 1
            if execution.open:
                usage.open_workflows += 1
            elif execution.close_time is not None and (
                usage.last_close_time is None or execution.close_time > usage.last_close_time
            ):
                usage.last_close_time = execution.close_time
        self.unencrypted_locations.update(tally.unencrypted_locations)

    def references_end_by(self, label: str) -> datetime | None:
        """When retention will have removed the last history naming ``label``; None while an open
        workflow names it (or retention is unknown)."""
        usage = self.keys.get(label)
        if usage is None or usage.open_workflows or self.retention is None or usage.last_close_time is None:
            return None
        return usage.last_close_time + self.retention

    def as_dict(self) -> dict[str, Any]:
        return {
            "retention_seconds": int(self.retention.total_seconds()) if self.retention else None,
            "workflows": self.workflows,
            "vanished": self.vanished,
            "keys": {
                label: {
                    "payloads": usage.payloads,
                    "workflows": usage.workflows,
                    "open_workflows": usage.open_workflows,
                    "last_close_time": _iso(usage.last_close_time),
                    "references_end_by": _iso(self.references_end_by(label)),
                }
                for label, usage in sorted(self.keys.items())
            },
            "unencrypted_locations": dict(sorted(self.unencrypted_locations.items())),
        }


@dataclass
class Report:
    address: str
    query: str | None
    namespaces: list[NamespaceReport]
    keyring_ids: frozenset[str] | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def totals(self) -> dict[str, KeyUsage]:
        out: dict[str, KeyUsage] = {}
        for ns in self.namespaces:
            for label, usage in ns.keys.items():
                total = out.setdefault(label, KeyUsage())
                total.payloads += usage.payloads
                total.workflows += usage.workflows
                total.open_workflows += usage.open_workflows
        return out

    def unreferenced_keys(self) -> list[str]:
        """Key ring ids that no history in the scanned namespaces names."""
        if self.keyring_ids is None:
            return []
        referenced = set(self.totals())
        return sorted(self.keyring_ids - referenced)

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "generated_at": _iso(self.generated_at),
            "address": self.address,
            "query": self.query,
            "namespaces": {ns.namespace: ns.as_dict() for ns in self.namespaces},
            "totals": {
                label: {"payloads": u.payloads, "workflows": u.workflows, "open_workflows": u.open_workflows}
                for label, u in sorted(self.totals().items())
            },
        }
        if self.keyring_ids is not None:
            document["keyring"] = {
                "key_ids": sorted(self.keyring_ids),
                "unreferenced": self.unreferenced_keys(),
            }
        return document


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


async def scan_namespace(
    client: Client, namespace: str, query: str | None, concurrency: int = DEFAULT_CONCURRENCY
) -> NamespaceReport:
    ns_client = in_namespace(client, namespace)
    report = NamespaceReport(namespace, retention=await retention(client, namespace))
    # A bounded pool: one history in memory per slot, however many workflows there are.
    queue: asyncio.Queue[ExecutionRef | None] = asyncio.Queue(maxsize=concurrency * 4)

    async def worker() -> None:
        while (execution := await queue.get()) is not None:
            try:
                history = await fetch_raw_history(ns_client, execution.workflow_id, execution.run_id)
            except NotFoundError:
                # Deleted by retention between listing and reading: nothing left to reference a key.
                report.vanished += 1
                continue
            report.add(execution, tally_history(history))

    async def producer() -> None:
        async for execution in list_executions(ns_client, query):
            await queue.put(execution)
        for _ in range(concurrency):
            await queue.put(None)

    try:
        # A failing task cancels the others, so a dead reader never leaves the lister blocked.
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
            group.create_task(producer())
    except ExceptionGroup as group_error:
        first = group_error.exceptions[0]
        raise first if isinstance(first, KeyOpsError) else group_error from None
    return report


async def build_report(
    client: Client,
    address: str,
    namespaces: list[str],
    query: str | None,
    keyring_ids: frozenset[str] | None = None,
) -> Report:
    scanned = [await scan_namespace(client, ns, query) for ns in namespaces]
    return Report(address, query, scanned, keyring_ids)
