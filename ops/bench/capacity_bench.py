"""What one conversation turn costs each part of the fleet, and a sizing model built from it
(`make bench-capacity` -> bench/results/capacity.json; the chart README's capacity guide).

How it is measured, on one stack of the bench's own (free ports, temporary directory, the model
simulator answering at once): the stack's one agent worker is replaced by the chart's three pools
as separate processes (``AGENT_WORKER_QUEUES=agent``, ``llm``, ``embed``), beside the Go retrieval
worker, the business worker, the codec server, the model server and the Temporal server: the dev
server (``--stack dev``, ``capacity.json``), or the self-hosted cluster of ``make up
STACK=cluster`` (``--stack cluster``, ``capacity-cluster.json``): three server nodes, whose CPU
adds up to the part ``temporal-server``, on PostgreSQL (``postgresql``) behind the HAProxy front
door (``front-door``), with mTLS and JWT, the workers unchanged. A turn is one customer message
answered (a policy question: model, embedding, retrieval over Nexus, model; or an order question:
model, business lookup over Nexus, model); a conversation is start, two turns, end, so start and
end are shared by two turns.

1. **Idle**: every process's CPU seconds (utime + stime of the process and its children, from
   /proc) over a window with no conversation: what a replica costs doing nothing (polling).
2. **Calibration batch**: conversations with a few in flight; each process's CPU seconds
   before/after, less its idle cost over the batch's wall time, per turn. Memory: each
   process's resident set (VmRSS) after the batch and its peak (VmHWM). Task counts per turn
   (workflow tasks, activities per task queue, Nexus operations per endpoint) from the histories.
   The codec's share: the turn's payloads (from the histories, as stored: sealed) decoded and
   encoded again in this process, timed with process_time.
3. **Check point**: an open-loop rate (a new conversation every 1/rate seconds, about half the
   calibration rate) over a window; the model's prediction (idle + rate x per-turn) of each
   process's cores against what /proc says it used.

The model server's CPU is kept apart: a real provider replaces it, and what sizes the ``llm``
pool then is the provider's latency and rate limit, not CPU. The machine is shared: the load
average before and after is recorded, and per-turn CPU seconds are what to compare between runs
(wall-clock rates move with the neighbours' load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the test harness starts isolated stacks

from cluster_support import cluster_unavailable_reason, running_cluster  # noqa: E402
from harness import client_for, free_ports, running_stack  # noqa: E402

from agent.chat.client import Conversations  # noqa: E402
from agent.support.types import ConversationStart  # noqa: E402
from devstack import cluster, frontdoor  # noqa: E402
from devstack.processes import ProcessSpec, http_ok  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from drills.bench_report import report_header  # noqa: E402
from payload_codec import EncryptionCodec, FileKeySource  # noqa: E402

OUTPUTS = {
    "dev": REPO_ROOT / "bench" / "results" / "capacity.json",
    "cluster": REPO_ROOT / "bench" / "results" / "capacity-cluster.json",
}
CUSTOMER = ConversationStart(customer="Katherine Johnson", customer_id="cust-katherine")
TURNS = ("How long do refunds take?", "What is the status of my order ORD-1004?")
POOLS = ("agent", "llm", "embed")
# Process -> the part of the fleet it stands for (the chart's Deployments, and the server).
ROLES = {
    "temporal": "temporal-server",
    "agent-pool-agent": "agent-worker",
    "agent-pool-llm": "llm-worker",
    "agent-pool-embed": "embed-worker",
    "retrieval-worker": "retrieval-worker",
    "business-worker": "business-worker",
    "codec-server": "codec-server",
    "model-server": "model-server",
}
# The cluster's server processes (--stack cluster); its nodes together are the Temporal server.
CLUSTER_ROLES = {
    **{cluster.node_name(node): "temporal-server" for node in range(cluster.NODES)},
    "postgres": "postgresql",
    frontdoor.NAME: "front-door",
}
TICKS = os.sysconf("SC_CLK_TCK")
# Sizing assumptions the guide states: a replica is sized to one core (a Python worker is one
# core at most), run at 70% of it; queued work should wait at most two seconds.
TARGET_UTILISATION = 0.7
MAX_QUEUE_WAIT_S = 2.0
TARGETS = (1, 10, 50)
CHART_VALUES = REPO_ROOT / "deploy" / "helm" / "durable-agents" / "values.yaml"
VALUES_KEYS = {
    "agent-worker": "agentWorker",
    "llm-worker": "llmWorker",
    "embed-worker": "embedWorker",
    "retrieval-worker": "retrievalWorker",
    "business-worker": "businessWorker",
    "codec-server": "codecServer",
}
SINGLE_REPLICA = ("retrieval-worker", "business-worker")  # StatefulSets of one pod (chart README)


# -- /proc ----------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(pid: int, tree: dict[int, list[int]]) -> Iterator[int]:
    yield pid
    for child in tree.get(pid, []):
        yield from _tree(child, tree)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """utime + stime of each process and its live descendants (and their reaped children)."""
    tree, found = _children(), {}
    for name, pid in pids.items():
        total = 0
        for member in _tree(pid, tree):
            try:
                fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        found[name] = total / TICKS
    return found


MEMORY_KEYS = ("VmRSS", "VmHWM", "PssTree")


def memory_mib(pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """The process's resident set and its peak, and the proportional set size (shared pages
    split between their sharers) of the process and its descendants: what a process that forks
    workers (PostgreSQL's backends) holds, without counting shared memory once per child."""
    tree, found = _children(), {}
    for name, pid in pids.items():
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        found[name] = {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}
        found[name]["PssTree"] = sum(_pss_kib(member) for member in _tree(pid, tree)) / 1024
    return found


def _pss_kib(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:  # gone since the tree was read
        return 0
    return next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# -- the stack ------------------------------------------------------------------------------------


@contextmanager
def split_agent_pools(stack: Stack) -> Iterator[list[str]]:
    """The stack's all-queues agent worker replaced by one process per pool, as the chart runs them;
    the pools stopped after (the stack's own ``down`` knows only its own processes: runs left the
    three pool workers running before)."""
    [spec] = [s for s in stack.specs() if s.name == "agent-worker"]
    stack.processes.stop("agent-worker")
    names: list[str] = []
    try:
        for pool in POOLS:
            names.append(f"agent-pool-{pool}")  # before it starts: a start that fails midway is stopped too
            stack.processes.start(_pool_spec(stack, spec, pool, names[-1]))
        yield names
    finally:
        for name in names:
            stack.processes.stop(name)


def _pool_spec(stack: Stack, spec: ProcessSpec, pool: str, name: str) -> ProcessSpec:
    """The agent worker's spec for one pool, on free health and metrics ports."""
    health, metrics = free_ports(2)
    return ProcessSpec(
        name=name,
        argv=spec.argv,
        ports=[health, metrics],
        ready=http_ok(f"http://{stack.config.host}:{health}/readyz"),
        env={
            **spec.env,
            "AGENT_WORKER_QUEUES": pool,
            "AGENT_HEALTH_PORT": str(health),
            "AGENT_METRICS_PORT": str(metrics),
        },
    )


def roles_of(stack: Stack, pools: list[str]) -> dict[str, str]:
    """Process name -> the part of the fleet it is (several processes may be one part)."""
    known = {**ROLES, **CLUSTER_ROLES} if stack.cluster else ROLES
    return {name: known[name] for name in [*stack.process_names(), *pools] if name in known}


def pids_of(stack: Stack, names: Iterable[str]) -> dict[str, int]:
    found = {}
    for name in names:
        running = stack.processes.running(name)
        assert running is not None, f"{name} is not running"
        found[name] = running.pid
    return found


def by_role(per_process: dict[str, float], roles: dict[str, str]) -> dict[str, float]:
    summed: dict[str, float] = {}
    for name, value in per_process.items():
        summed[roles[name]] = summed.get(roles[name], 0.0) + value
    return summed


def fleet(roles: Iterable[str]) -> list[str]:
    """The parts a deployment sizes: all but the model server (a real provider replaces it)."""
    return [role for role in roles if role != "model-server"]


def turn_path(roles: Iterable[str]) -> list[str]:
    """What a turn passes through (the codec server answers auditors and the UI, not conversations)."""
    return [role for role in fleet(roles) if role != "codec-server"]


# -- load -----------------------------------------------------------------------------------------


async def conversation(client: Client) -> tuple[str, float]:
    conversations = Conversations(client)
    cid = f"bench-capacity-{uuid.uuid4().hex[:10]}"
    started = time.perf_counter()
    await conversations.start(CUSTOMER, cid)
    for text in TURNS:
        await conversations.send(cid, text)
    await conversations.end(cid)
    await client.get_workflow_handle(cid).result()
    return cid, time.perf_counter() - started


async def closed_loop(client: Client, count: int, in_flight: int) -> tuple[list[str], float]:
    gate = asyncio.Semaphore(in_flight)

    async def one() -> tuple[str, float]:
        async with gate:
            return await conversation(client)

    started = time.perf_counter()
    done = await asyncio.gather(*(one() for _ in range(count)))
    return [cid for cid, _ in done], time.perf_counter() - started


async def open_loop(client: Client, rate_turns: float, seconds: float) -> tuple[list[str], float]:
    """A new conversation every len(TURNS)/rate seconds for ``seconds``; waits for all to end."""
    interval = len(TURNS) / rate_turns
    tasks = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        tasks.append(asyncio.create_task(conversation(client)))
        await asyncio.sleep(interval - (time.perf_counter() - started) % interval)
    done = await asyncio.gather(*tasks)
    return [cid for cid, _ in done], time.perf_counter() - started


def per_second(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {name: (after[name] - before[name]) / seconds for name in before}


# -- histories ------------------------------------------------------------------------------------


def _payloads(message: Message) -> Iterator[Payload]:
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values()) if field.message_type.fields_by_name["value"].message_type else []
        else:
            items = [value] if isinstance(value, Message) else list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from _payloads(item)


async def history_costs(client: Client, cids: list[str], codec: EncryptionCodec) -> dict[str, object]:
    """Per conversation: tasks by kind and queue, and the payloads as stored (sealed)."""
    tasks: Counter[str] = Counter()
    sealed: list[Payload] = []
    for cid in cids:
        history = await client.get_workflow_handle(cid).fetch_history()
        for event in history.events:
            if event.HasField("workflow_task_scheduled_event_attributes"):
                tasks["workflow tasks (agent)"] += 1
            elif event.HasField("activity_task_scheduled_event_attributes"):
                tasks[f"activities ({event.activity_task_scheduled_event_attributes.task_queue.name})"] += 1
            elif event.HasField("nexus_operation_scheduled_event_attributes"):
                tasks[f"nexus operations ({event.nexus_operation_scheduled_event_attributes.endpoint})"] += 1
            elif event.HasField("marker_recorded_event_attributes"):
                tasks["local activities (agent)"] += 1
            sealed += _payloads(event)
    # The codec's CPU per payload as it travels once: sealed by its writer, opened by its reader.
    rounds = 5
    started = time.process_time()
    for _ in range(rounds):
        codec.encode_sync(codec.decode_sync(sealed))
    codec_s = (time.process_time() - started) / rounds
    turns = len(cids) * len(TURNS)
    return {
        "tasks_per_turn": {kind: n / turns for kind, n in sorted(tasks.items())},
        "payloads_per_turn": len(sealed) / turns,
        "payload_bytes_per_turn": sum(p.ByteSize() for p in sealed) / turns,
        "codec_cpu_ms_per_turn": codec_s / turns * 1000,
    }


# -- the model ------------------------------------------------------------------------------------


def replica_cores() -> dict[str, float]:
    """Each pool's CPU limit in the chart's values: what one replica may use."""
    values = yaml.safe_load(CHART_VALUES.read_text())
    found = {}
    for role, key in VALUES_KEYS.items():
        cpu = str(values[key]["resources"]["limits"]["cpu"])
        found[role] = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return found


def size(result: dict) -> dict[str, object]:
    """The sizing model from a result's figures: replicas and server cores per target rate, the
    KEDA targets, and which part reaches its ceiling first."""
    per_turn = {role: ms / 1000 for role, ms in result["cpu_ms_per_turn"].items()}
    idle, tasks, cores = result["idle_cores"], result["tasks_per_turn"], replica_cores()
    pool_tasks = {
        "agent-worker": tasks.get("workflow tasks (agent)", 0.0),
        "llm-worker": tasks.get("activities (llm)", 0.0),
        "embed-worker": tasks.get("activities (embed)", 0.0),
        "retrieval-worker": tasks.get("nexus operations (retrieval)", 0.0),
        "business-worker": tasks.get("nexus operations (business)", 0.0),
    }
    keda = {}
    for pool, count in pool_tasks.items():
        cpu_per_task = per_turn[pool] / count if count else 0.0
        tasks_per_s = TARGET_UTILISATION * cores[pool] / cpu_per_task if cpu_per_task else None
        keda[pool] = {
            "tasks_per_turn": count,
            "cpu_ms_per_task": cpu_per_task * 1000,
            "tasks_per_s_per_replica": tasks_per_s,
            "targetQueueSize": max(1, math.floor(tasks_per_s * MAX_QUEUE_WAIT_S)) if tasks_per_s else None,
            "activationTargetQueueSize": 0,
        }
    # A replica's ceiling: the rate at which it reaches the target utilisation of its CPU limit;
    # the Temporal server's, per core.
    ceilings = {
        role: (TARGET_UTILISATION * cores.get(role, 1.0) - idle[role]) / per_turn[role]
        for role in turn_path(per_turn)
        if per_turn[role] > 0
    }
    plans = {}
    for target in TARGETS:
        plan: dict[str, dict[str, float]] = {}
        for role in fleet(per_turn):
            used = idle[role] + target * per_turn[role]
            plan[role] = {
                "cores": used,
                "replicas": max(1, math.ceil(used / (TARGET_UTILISATION * cores.get(role, 1.0)))),
            }
        plans[str(target)] = plan
    # Single-writer StatefulSets cannot add replicas: their ceiling is the fleet's.
    single = {role: ceilings[role] for role in SINGLE_REPLICA if role in ceilings}
    return {
        "assumptions": {
            "replica_cores": cores,
            "temporal_server_cores_per_replica": 1.0,
            "target_utilisation": TARGET_UTILISATION,
            "max_queue_wait_s": MAX_QUEUE_WAIT_S,
        },
        "turns_per_s_per_replica": ceilings,
        "first_bottleneck": min(ceilings, key=lambda role: ceilings[role]),
        "single_replica_ceiling_turns_per_s": single,
        "keda": keda,
        "plans": plans,
    }


@contextmanager
def bench_stack(kind: str) -> Iterator[Stack]:
    if kind == "cluster":
        if reason := cluster_unavailable_reason():
            raise SystemExit(f"bench-capacity: no cluster can run here: {reason}")
        with running_cluster() as stack:
            yield stack
        return
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as data_dir, running_stack(Path(data_dir)) as stack:
        yield stack


def role_memory(per_process: dict[str, dict[str, float]], roles: dict[str, str]) -> dict[str, dict[str, float]]:
    """MiB per part: a part of several processes adds theirs up (the sum of peaks, an upper
    bound of the part's peak)."""
    summed: dict[str, dict[str, float]] = {}
    for name, memory in per_process.items():
        part = summed.setdefault(roles[name], dict.fromkeys(MEMORY_KEYS, 0.0))
        for key in MEMORY_KEYS:
            part[key] += memory[key]
    return summed


async def bench(kind: str, conversations: int, in_flight: int, idle_s: float, check_s: float) -> dict[str, object]:
    load_before = load_average()
    with bench_stack(kind) as stack, split_agent_pools(stack) as pools:
        roles = roles_of(stack, pools)
        pids = pids_of(stack, roles)

        def cpu() -> dict[str, float]:
            return by_role(cpu_seconds(pids), roles)

        client = await client_for(stack, "agents")
        codec = EncryptionCodec(FileKeySource(stack.config.keyring_path).load(), "agents")
        await closed_loop(client, in_flight, in_flight)  # warm-up: imports, caches, connections

        before, started = cpu(), time.perf_counter()
        await asyncio.sleep(idle_s)
        idle = per_second(before, cpu(), time.perf_counter() - started)

        before = cpu()
        cids, wall = await closed_loop(client, conversations, in_flight)
        used = per_second(before, cpu(), 1)  # CPU seconds over the batch
        turns = conversations * len(TURNS)
        per_turn = {role: max(0.0, used[role] - idle[role] * wall) / turns for role in used}
        memory = role_memory(memory_mib(pids), roles)
        history = await history_costs(client, cids, codec)

        rate = 0.5 * turns / wall
        before = cpu()
        check_cids, check_wall = await open_loop(client, rate, check_s)
        measured = per_second(before, cpu(), check_wall)
        achieved = len(check_cids) * len(TURNS) / check_wall
    predicted = {role: idle[role] + achieved * per_turn[role] for role in per_turn}
    fleet_measured = sum(measured[r] for r in fleet(per_turn))
    fleet_predicted = sum(predicted[r] for r in fleet(per_turn))
    return {
        **report_header(__doc__),
        "stack": kind,
        "processes": roles,
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
        ).stdout.strip(),
        "load_average": {"before": load_before, "after": load_average(), "cpus": os.cpu_count()},
        "turn": list(TURNS),
        "calibration": {
            "conversations": conversations,
            "turns": turns,
            "in_flight": in_flight,
            "wall_s": wall,
            "turns_per_s": turns / wall,
        },
        "idle_cores": idle,
        "cpu_ms_per_turn": {role: s * 1000 for role, s in per_turn.items()},
        "fleet_cpu_ms_per_turn": sum(per_turn[r] for r in fleet(per_turn)) * 1000,
        "memory_mib": memory,
        **history,
        "check": {
            "offered_turns_per_s": rate,
            "achieved_turns_per_s": achieved,
            "wall_s": check_wall,
            "measured_cores": measured,
            "predicted_cores": predicted,
            "fleet_measured_cores": fleet_measured,
            "fleet_predicted_cores": fleet_predicted,
            "fleet_error": fleet_predicted / fleet_measured - 1,
        },
    }


def render(result: dict, console: Console) -> None:
    table = Table(title=f"CPU per turn, idle cores, memory (calibration {result['calibration']['turns']} turns)")
    for column in (
        *("part", "cpu ms/turn", "idle cores", "RSS MiB", "peak MiB", "PSS tree MiB"),
        *("check: measured", "predicted"),
    ):
        table.add_column(column, justify="right")
    check = result["check"]
    for role, ms in result["cpu_ms_per_turn"].items():
        memory = result["memory_mib"][role]
        table.add_row(
            role, f"{ms:.1f}", f"{result['idle_cores'][role]:.3f}", f"{memory['VmRSS']:.0f}", f"{memory['VmHWM']:.0f}",
            f"{memory['PssTree']:.0f}" if "PssTree" in memory else "",
            f"{check['measured_cores'][role]:.3f}", f"{check['predicted_cores'][role]:.3f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"fleet (without the model server): {result['fleet_cpu_ms_per_turn']:.1f} ms/turn; check at "
        f"{check['achieved_turns_per_s']:.2f} turns/s: {check['fleet_measured_cores']:.3f} cores measured, "
        f"{check['fleet_predicted_cores']:.3f} predicted ({check['fleet_error']:+.1%}); "
        f"codec {result['codec_cpu_ms_per_turn']:.2f} ms/turn; first bottleneck {result['model']['first_bottleneck']}; "
        f"load average {result['load_average']['before']} -> {result['load_average']['after']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--conversations", type=int, default=40, help="calibration batch (default: %(default)s)")
    parser.add_argument("--in-flight", type=int, default=4, help="conversations in flight (default: %(default)s)")
    parser.add_argument("--idle-seconds", type=float, default=20, help="idle window (default: %(default)s)")
    parser.add_argument("--check-seconds", type=float, default=60, help="check point window (default: %(default)s)")
    parser.add_argument(
        "--stack",
        choices=sorted(OUTPUTS),
        default="dev",
        help="the Temporal dev server or the self-hosted cluster (default: %(default)s)",
    )
    parser.add_argument("-o", "--output", type=Path, help="default: bench/results/capacity[-cluster].json")
    parser.add_argument(
        "--resize",
        action="store_true",
        help="recompute only the model of OUTPUT's figures (after a chart limit changes)",
    )
    args = parser.parse_args()
    args.output = args.output or OUTPUTS[args.stack]
    if args.resize:
        result = json.loads(args.output.read_text())
    else:
        result = asyncio.run(
            bench(args.stack, args.conversations, args.in_flight, args.idle_seconds, args.check_seconds)
        )
    result["model"] = size(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    render(result, Console(width=140))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    from workerkit.process import exit_without_finalizing

    exit_without_finalizing(main())
