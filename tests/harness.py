"""Where the test suite gets its Temporal server and stack from: one switch, ``TEST_TEMPORAL``.

- ``dev`` (default): a dev server the harness starts itself, on free ports, with its own data
  directory, so tests never touch a running dev stack and can run twice in a row.
- ``testcontainers``: the server in a container (needs a Docker engine; skipped with the reason
  printed when there is none).
- ``existing``: the cluster named by ``TEMPORAL_ADDRESS`` (namespaces and endpoints are
  created there if missing).

In every mode the harness runs the real worker processes (the built Go binary and the Python
workers) through the same ``devstack`` code that ``make up`` uses.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.browser import CHROMIUM, CHROMIUM_ARGS
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from agent.ingest.command import expand
from agent.ingest.types import OUTCOME_FAILED, IngestInput, IngestResult
from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.ingest import IngestWorkflow
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow
from business.store import SEED_ORDERS
from devstack import s3
from devstack.config import PORTS, StackConfig
from devstack.stack import Stack, knowledge_base_dir
from payload_codec import FileKeySource, data_converter

TEMPORAL_CLI_IMAGE = "temporalio/temporal:1.9.1"


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _ephemeral_start() -> int:
    """The first port the kernel hands out for bind(0) and outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(size: int, *, below: int | None = None, taken: Iterable[int] = ()) -> int:
    """The first port of ``size`` consecutive free loopback ports in [20000, ``below``), none in
    ``taken``. Blocks come from under the kernel's ephemeral range (the default ``below``), so
    that neither a port :func:`free_ports` hands out nor an outgoing connection lands in one."""
    below = _ephemeral_start() if below is None else below
    rng, taken = random.Random(), set(taken)
    for _ in range(200):
        block = range(start := rng.randrange(20000, below - size), start + size)
        if taken.isdisjoint(block) and all(_bindable(port) for port in block):
            return start
    raise RuntimeError(f"no block of {size} free ports found below {below}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def isolated_config(data_dir: Path) -> StackConfig:
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=False))
    # SeaweedFS (BLOBS=s3) takes the S3 port and the ports after it (devstack.s3.service_ports).
    ports["s3"] = free_port_block(len(s3.port_names()))
    return StackConfig(data_dir=data_dir, ports=ports)


def docker_engine_unavailable_reason() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        last_line = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "no output"
        return f"no Docker engine answers `docker info` ({last_line})"
    return None


@contextmanager
def container_server() -> Iterator[str]:
    reason = docker_engine_unavailable_reason()
    if reason:
        pytest.skip(f"TEST_TEMPORAL=testcontainers needs a Docker engine: {reason}")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = (
        DockerContainer(TEMPORAL_CLI_IMAGE)
        .with_command("server start-dev --ip 0.0.0.0 --headless -n agents -n retrieval -n business")
        .with_exposed_ports(7233)
    )
    with container:
        wait_for_logs(container, "Temporal Server", timeout=120)
        yield f"{container.get_container_host_ip()}:{container.get_exposed_port(7233)}"


@contextmanager
def _server(mode: str) -> Iterator[str | None]:
    """The address of an external server, or None when the stack starts its own dev server."""
    if mode == "dev":
        yield None
    elif mode == "existing":
        address = os.environ.get("TEMPORAL_ADDRESS")
        if not address:
            pytest.fail("TEST_TEMPORAL=existing needs TEMPORAL_ADDRESS to name the cluster")
        yield address
    elif mode == "testcontainers":
        with container_server() as address:
            yield address
    else:
        pytest.fail(f"TEST_TEMPORAL must be dev, testcontainers or existing, got {mode!r}")


@contextmanager
def _stopped_cleanly_on_sigterm() -> Iterator[None]:
    """SIGTERM (a `kill`, a CI timeout) raises SystemExit, so the stack's ``finally`` stops its
    processes: without it the interpreter dies at once and leaves a server and every worker
    running. Signal handlers can only be set from the main thread; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on_sigterm(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def running_stack(
    data_dir: Path, *, db: str = "embedded", blobs: str = "local", business_replicas: int | None = None
) -> Iterator[Stack]:
    """``db="postgres"``: the workers on PostgreSQL (``make up DB=postgres``); ``blobs="s3"``: the
    agent's blobs in the stack's own SeaweedFS (``make up BLOBS=s3``)."""
    with _server(os.environ.get("TEST_TEMPORAL", "dev")) as external:
        config = dataclasses.replace(isolated_config(data_dir), db=db, blobs=blobs)
        with brought_up(Stack(config, external_temporal=external, business_replicas=business_replicas)) as stack:
            yield stack


@contextmanager
def brought_up(stack: Stack) -> Iterator[Stack]:
    """``stack`` up with the demo knowledge base ingested; down after, whatever happened (a
    SIGTERM included)."""
    with _stopped_cleanly_on_sigterm():
        try:
            stack.up(log=lambda line: None)
            ingest_knowledge_base(stack)
            yield stack
        finally:
            stack.down(log=lambda line: None)


def ingest_knowledge_base(stack: Stack) -> IngestResult:
    """The demo knowledge base, ingested as `make demo` does (the real IngestWorkflow), so every
    test that searches or asks a policy question finds it."""

    async def ingest() -> IngestResult:
        client = await client_for(stack, "agents")
        return await client.execute_workflow(
            IngestWorkflow.run,
            IngestInput(paths=expand([str(knowledge_base_dir())])),
            id="ingest-knowledge-base",
            task_queue=AGENT_TASK_QUEUE,
        )

    # Its own thread and event loop: the caller may be inside a running loop (async tests).
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, ingest()).result()
    if failed := [d for d in result.documents if d.outcome == OUTCOME_FAILED]:
        raise RuntimeError(f"the knowledge base did not ingest: {failed}")
    return result


async def client_for(stack: Stack, namespace: str) -> Client:
    """A client with the stack's key ring, as every real client of the system has, connected
    through Temporal's environment configuration as the stack's operator (on a cluster: its
    client certificate and token; on the dev server: just the address)."""
    ring = FileKeySource(stack.config.keyring_path).load()
    config = ClientConfig.load_client_connect_config(
        disable_file=True, override_env_vars={**stack.client_env(), "TEMPORAL_NAMESPACE": namespace}
    )
    return await Client.connect(**config, data_converter=data_converter(ring, namespace))


def customer_of(text: str) -> str:
    """The seeded owner of the order a text names (``ORD-1001`` or a message about it): the
    customer a test conversation about that order acts for."""
    order_id = re.search(r"ORD-\d+", text)
    assert order_id, f"no order id in {text!r}"
    return next(o.customer_id for o in SEED_ORDERS if o.order_id == order_id.group())


def business_rows(stack: Stack, sql: str, *args: object) -> list[tuple]:
    """Rows of the stack's business database (orders, refunds, tickets, access_refusals)."""
    with sqlite3.connect(stack.config.data_dir / "business.sqlite3") as conn:
        return conn.execute(sql, args).fetchall()


def refunds_of(stack: Stack, cid: str, column: str = "idempotency_key") -> list[object]:
    """One column of each refund a conversation made (its keys start with its id)."""
    # ``column`` is a literal of the calling test, never input.
    return [
        value
        for (value,) in business_rows(stack, f"SELECT {column} FROM refunds WHERE idempotency_key LIKE ?", f"{cid}/%")
    ]


def guardrail_counts(stack: Stack) -> dict[str, float]:
    """``agent_guardrail_refusals_total`` by rule, as the agent worker's /metrics has it now."""
    url = f"http://{stack.config.host}:{stack.config.ports['agent_metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        s.labels["rule"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "agent_guardrail_refusals"
        for s in family.samples
        if s.name == "agent_guardrail_refusals_total"
    }


def counted_since(stack: Stack, before: dict[str, float]) -> dict[str, float]:
    """The guardrail refusals counted since ``before`` (from :func:`guardrail_counts`), by rule."""
    after = guardrail_counts(stack)
    return {rule: n - before.get(rule, 0) for rule, n in after.items() if n != before.get(rule, 0)}


def codec_server_decode(stack: Stack, namespace: str, payloads: list[Payload]) -> tuple[int, bytes]:
    """POST the payloads to the stack's codec server as its local auditor, as the UI and CLI
    send them: the HTTP status and the body."""
    body = [
        {
            "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
            "data": base64.b64encode(p.data).decode(),
        }
        for p in payloads
    ]
    token = stack.codec_tokens.auditor_token_file.read_text().strip()
    request = urllib.request.Request(
        f"{stack.config.codec_server_url}/{namespace}/decode",
        data=json.dumps({"payloads": body}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def page_showing(url: str, text: str, screenshot: Path) -> tuple[str, list[str]]:
    """Open ``url`` in headless Chromium and wait until ``text`` shows (the Web UI keeps polling:
    wait for content, never for network idle); the page's HTML and every codec ``/decode`` call
    the page made. A full-page screenshot goes to ``screenshot``."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1800})
            decode_calls: list[str] = []
            page.on("request", lambda r: decode_calls.append(r.url) if "/decode" in r.url else None)
            await page.goto(url)
            await page.get_by_text(text).first.wait_for(timeout=60_000)
            screenshot.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(screenshot), full_page=True)
            return await page.content(), decode_calls
        finally:
            await browser.close()


async def run_system_check(client: Client, question: str, workflow_id: str) -> None:
    """One system check (every hop: model, search, order, refund) asking ``question``: a history
    whose payloads hold a text the caller knows."""
    await client.execute_workflow(
        SystemCheckWorkflow.run,
        SystemCheckInput(question=question, order_id="ORD-1006", refund_cents=100),
        id=workflow_id,
        task_queue=AGENT_TASK_QUEUE,
    )


def agent(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `agent` CLI as a person runs it (a subprocess with the stack's client settings)."""
    done = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **stack.client_env(), "COLUMNS": "200", **(env or {})},
        timeout=120,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
