"""The agent's orchestration cost against a plain workflow, on the dev server and on the
self-hosted cluster, in one run (`make bench-agent`).

What is compared, on stacks of the bench's own (free ports, temporary directories), first the dev
stack (``temporal server start-dev``, SQLite), then the cluster stack (three ``temporal-server``
nodes on PostgreSQL behind the front door, mTLS, JWT; ``make up STACK=cluster``'s code), one after
the other, with the model simulator answering at once (no delay, no faults):

- **agent**: a support conversation (start, one policy question, end). The question makes the
  agent call the model, embed the query, search the knowledge base through Nexus and call the
  model again; the steps it schedules (activities, local activities, Nexus operations) are
  counted from its history.
- **baseline**: ``BenchNoOpChainWorkflow`` (``drills.baseline``) running the same number of
  no-op activities one after another, on a worker this process starts, on the same server.

Per-step latency = wall time of one run / its steps; the ratio agent / baseline is the price of
the agent's orchestration and of its real work per step (model simulator, embedding model,
retrieval). Throughput is runs per second with a stated number of runs in flight. Both sides run
in the same process, back to back, so the ratios mean something where the absolute numbers do
not travel (the machines are noisy). The same measurements on both servers give the cluster's
price against the dev server (``cluster_vs_dev``: cluster / dev, per side and level; the cluster
pays for replication-free but durable PostgreSQL writes, TLS and authorization on every call, and
the front door's hop). Results go to ``bench/results/agent.json`` (with the commit and the load
average before and after each server's runs) and a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.worker import Worker

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the test harness starts isolated stacks

from cluster_support import cluster_unavailable_reason, running_cluster  # noqa: E402
from harness import client_for, running_stack  # noqa: E402

from agent.chat.client import Conversations  # noqa: E402
from agent.support.types import ConversationStart  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from drills.baseline import BASELINE_TASK_QUEUE, NoOpChainWorkflow, noop  # noqa: E402
from drills.bench_report import report_header, source_commit  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "agent.json"
QUESTION = "How long does a refund take?"
STEP_EVENTS = ("activity_task_scheduled", "nexus_operation_scheduled", "marker_recorded")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def agent_run(client: Client) -> tuple[float, int]:
    """(seconds, steps) of one conversation: start, one question, end."""
    conversations = Conversations(client)
    cid = f"bench-agent-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    await conversations.start(ConversationStart(customer="bench", customer_id="cust-ada"), cid)
    await conversations.send(cid, QUESTION)
    await conversations.end(cid)
    await client.get_workflow_handle(cid).result()
    elapsed = time.perf_counter() - started
    history = await client.get_workflow_handle(cid).fetch_history()
    steps = sum(1 for e in history.events if any(e.HasField(f"{kind}_event_attributes") for kind in STEP_EVENTS))
    return elapsed, steps


async def baseline_run(client: Client, steps: int) -> tuple[float, int]:
    started = time.perf_counter()
    await client.execute_workflow(
        NoOpChainWorkflow.run, steps, id=f"bench-baseline-{uuid.uuid4().hex[:10]}", task_queue=BASELINE_TASK_QUEUE
    )
    return time.perf_counter() - started, steps


async def measure(run: Callable[[], Awaitable[tuple[float, int]]], runs: int, concurrency: int) -> dict[str, float]:
    """``runs`` runs with at most ``concurrency`` in flight: latency percentiles and runs/s."""
    gate = asyncio.Semaphore(concurrency)
    results: list[tuple[float, int]] = []

    async def one() -> None:
        async with gate:
            results.append(await run())

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    wall = time.perf_counter() - started
    seconds = [r[0] for r in results]
    per_step = [r[0] / r[1] for r in results]
    return {
        "runs": runs,
        "concurrency": concurrency,
        "steps_per_run": statistics.median(r[1] for r in results),
        "run_p50_ms": _percentile(seconds, 0.5) * 1000,
        "run_p95_ms": _percentile(seconds, 0.95) * 1000,
        "step_p50_ms": _percentile(per_step, 0.5) * 1000,
        "step_p95_ms": _percentile(per_step, 0.95) * 1000,
        "runs_per_s": runs / wall,
    }


SERVERS = ("dev", "cluster")


@contextmanager
def server_stack(server: str) -> Iterator[Stack]:
    if server == "cluster":
        with running_cluster() as stack:
            yield stack
    else:
        with tempfile.TemporaryDirectory(prefix="bench-agent-") as data_dir, running_stack(Path(data_dir)) as stack:
            yield stack


async def bench_server(stack: Stack, runs: int, concurrency: int) -> dict[str, object]:
    """Both sides at 1 and ``concurrency`` in flight on one server."""
    client = await client_for(stack, "agents")
    load_before = os.getloadavg()[0]
    async with Worker(client, task_queue=BASELINE_TASK_QUEUE, workflows=[NoOpChainWorkflow], activities=[noop]):
        _, steps = await agent_run(client)  # warm-up; also fixes the baseline's step count
        await baseline_run(client, steps)
        levels = {}
        for level in (1, concurrency):
            count = runs if level == 1 else max(runs, 3 * level)
            agent = await measure(lambda: agent_run(client), count, level)
            baseline = await measure(lambda: baseline_run(client, steps), count, level)
            levels[str(level)] = {
                "agent": agent,
                "baseline": baseline,
                "step_p50_ratio": agent["step_p50_ms"] / baseline["step_p50_ms"],
                "throughput_ratio": agent["runs_per_s"] / baseline["runs_per_s"],
            }
    return {
        "steps_per_run": steps,
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "levels": levels,
    }


def cluster_vs_dev(dev: dict[str, dict], cluster: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Per level, cluster / dev for each side's runs/s and per-step p50 latency."""
    return {
        level: {
            f"{side}_{what}": cluster[level][side][key] / dev[level][side][key]
            for side in ("baseline", "agent")
            for what, key in (("throughput_ratio", "runs_per_s"), ("step_p50_ratio", "step_p50_ms"))
        }
        for level in dev
    }


async def bench(runs: int, concurrency: int, servers: tuple[str, ...]) -> dict[str, object]:
    measured = {}
    for server in servers:
        with server_stack(server) as stack:
            measured[server] = await bench_server(stack, runs, concurrency)
    steps = measured[servers[0]]["steps_per_run"]
    result: dict[str, object] = {
        **report_header(__doc__),
        "commit": source_commit(),
        "agent_run": (
            f"start, send {QUESTION!r}, end; steps = activities, local activities and Nexus operations scheduled"
        ),
        "baseline_run": (f"BenchNoOpChainWorkflow: the same number of no-op activities ({steps}), one after another"),
        "steps_per_run": steps,
        "servers": measured,
    }
    if set(SERVERS) <= set(measured):
        dev, cluster = (measured[s]["levels"] for s in SERVERS)
        assert isinstance(dev, dict) and isinstance(cluster, dict)
        result["cluster_vs_dev"] = cluster_vs_dev(dev, cluster)
    return result


def render(result: dict[str, object], console: Console) -> None:
    servers = result["servers"]
    assert isinstance(servers, dict)
    for server, measured in servers.items():
        table = Table(
            title=f"{server} server: agent vs plain workflow, {measured['steps_per_run']} steps per run, same run"
        )
        for column in (
            "in flight",
            "side",
            "runs",
            "run p50 ms",
            "run p95 ms",
            "step p50 ms",
            "runs/s",
            "agent/baseline",
        ):
            table.add_column(column, justify="right")
        for level, sides in measured["levels"].items():
            for side in ("agent", "baseline"):
                m = sides[side]
                ratio = (
                    f"step x{sides['step_p50_ratio']:.2f}, runs/s x{sides['throughput_ratio']:.2f}"
                    if side == "agent"
                    else ""
                )
                table.add_row(
                    level,
                    side,
                    str(m["runs"]),
                    f"{m['run_p50_ms']:.0f}",
                    f"{m['run_p95_ms']:.0f}",
                    f"{m['step_p50_ms']:.1f}",
                    f"{m['runs_per_s']:.2f}",
                    ratio,
                )
        console.print(table)
    if ratios := result.get("cluster_vs_dev"):
        assert isinstance(ratios, dict)
        table = Table(title="cluster / dev server, same run")
        for column in ("in flight", "baseline runs/s", "baseline step p50", "agent runs/s", "agent step p50"):
            table.add_column(column, justify="right")
        for level, r in ratios.items():
            table.add_row(
                level,
                *(
                    f"x{r[f'{side}_{what}']:.2f}"
                    for side in ("baseline", "agent")
                    for what in ("throughput_ratio", "step_p50_ratio")
                ),
            )
        console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per side at concurrency 1 (default: %(default)s)")
    parser.add_argument(
        "--concurrency", type=int, default=10, help="runs in flight for the throughput level (default: %(default)s)"
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="which Temporal servers to measure, in order (default: %(default)s; cluster needs `make temporal-server`)",
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    servers = tuple(args.servers.split(","))
    if args.runs < 1 or args.concurrency < 2:
        parser.error("--runs must be at least 1 and --concurrency at least 2")
    if not servers or set(servers) - set(SERVERS):
        parser.error(f"--servers takes a comma-separated list of {', '.join(SERVERS)}")
    if "cluster" in servers and (reason := cluster_unavailable_reason()):
        parser.error(f"cannot measure the cluster: {reason}")
    result = asyncio.run(bench(args.runs, args.concurrency, servers))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    render(result, Console(width=130))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    from workerkit.process import exit_without_finalizing

    exit_without_finalizing(main())
