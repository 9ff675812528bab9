"""Helpers for tests and drills that drive support conversations against a running stack.

They read the model simulator's call ledger (``GET /ledger``), restart or kill a stack process
the way an outage would, and find the blob store the agent worker writes to. Nothing here is
used by the product itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from temporalio.client import Client

from agent.blobs.s3 import S3BlobStore
from agent.blobs.settings import BLOB_DIR_ENV, DEFAULT_BLOB_DIR, blob_store_from_env
from agent.blobs.store import LocalBlobStore


class _Processes(Protocol):
    def running(self, name: str) -> Any: ...

    def stop(self, name: str, timeout_s: float = ...) -> bool: ...

    def start_all(self, specs: list[Any]) -> list[Any]: ...


class StackLike(Protocol):
    """What these helpers need of ``devstack.stack.Stack``."""

    processes: _Processes

    def specs(self) -> list[Any]: ...


def ledger(model_server_url: str) -> list[dict[str, Any]]:
    """Every call the simulator recorded; ``model_server_url`` without the ``/v1``."""
    with urllib.request.urlopen(f"{model_server_url}/ledger", timeout=5) as response:
        calls: list[dict[str, Any]] = json.load(response)["calls"]
    return calls


def calls_of(
    entries: list[dict[str, Any]], workflow_id: str, endpoint: str = "chat.completions"
) -> list[dict[str, Any]]:
    """The ledger entries of one conversation (its request keys start with the workflow id), of
    one endpoint: model calls by default. Knowledge searches embed the query under the same
    workflow id (``endpoint="embeddings"``, keys ``<workflow>/<activity>/<attempt>/<batch>``)."""
    return [
        e
        for e in entries
        if (e.get("request_key") or "").startswith(f"{workflow_id}/")
        and e.get("endpoint", "chat.completions") == endpoint
    ]


def attempt_of(entry: dict[str, Any]) -> tuple[str, int]:
    """(activity id, attempt) from a ledger entry's ``<workflow id>/<activity id>/<attempt>`` key."""
    _, activity_id, attempt = str(entry["request_key"]).rsplit("/", 2)
    return activity_id, int(attempt)


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00"))


def began(entry: dict[str, Any]) -> datetime:
    """When a call began: the ledger stamps it when answered, ``latency_ms`` after its start."""
    return at(entry) - timedelta(milliseconds=float(entry.get("latency_ms") or 0))


def chat_calls_in_flight(model_server_url: str) -> float:
    """Chat completions the simulator is answering right now (its in-flight gauge)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{model_server_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "modelserver_requests_in_flight":
            return sum(s.value for s in family.samples if s.labels.get("endpoint") == "chat.completions")
    return 0.0


def paid_twice(entries: list[dict[str, Any]]) -> list[str]:
    """Activity ids whose model call was answered successfully more than once."""
    counts = Counter(attempt_of(e)[0] for e in entries if e["outcome"] == "ok")
    return sorted(activity_id for activity_id, n in counts.items() if n > 1)


def _spec(stack: StackLike, name: str) -> Any:
    return next(s for s in stack.specs() if s.name == name)


def restart(stack: StackLike, name: str, *, kill: bool = False) -> None:
    """Stop a stack process (SIGTERM, or SIGKILL when ``kill``: a crash) and start it again."""
    stop(stack, name, kill=kill)
    stack.processes.start_all([_spec(stack, name)])


def stop(stack: StackLike, name: str, *, kill: bool = False) -> None:
    running = stack.processes.running(name)
    if kill and running is not None:
        os.killpg(running.pid, signal.SIGKILL)
        try:
            os.waitpid(running.pid, 0)  # our child: reap it so it stops looking alive
        except ChildProcessError:
            pass
    stack.processes.stop(name)


def start(stack: StackLike, name: str) -> None:
    stack.processes.start_all([_spec(stack, name)])


def blob_dir(stack: StackLike) -> Path:
    """Where the stack's agent worker keeps blobs: its own setting, else the inherited one,
    else the default relative to the working directory it was started from."""
    env = _spec(stack, "agent-worker").env
    raw = env.get(BLOB_DIR_ENV) or os.environ.get(BLOB_DIR_ENV)
    return Path(raw) if raw else Path.cwd() / DEFAULT_BLOB_DIR


def blob_store(stack: StackLike, client: Client) -> LocalBlobStore | S3BlobStore:
    """The stack's blob store, chosen and read the way its agent worker does (its settings over
    the inherited ones): sealed blobs are opened with ``client``'s payload codec (the namespace's keys)."""
    env = {**os.environ, **_spec(stack, "agent-worker").env}
    settings = {k: v for k, v in env.items() if v is not None}
    return blob_store_from_env(client.data_converter.payload_codec, settings)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)
