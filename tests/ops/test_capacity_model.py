"""`make bench-capacity`'s model and bookkeeping (no stack): the sizing arithmetic the chart
README's capacity guide quotes, the chart limits it reads, the payload walk and the /proc reading."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import HistoryEvent

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("capacity_bench", REPO / "ops" / "bench" / "capacity_bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench
spec.loader.exec_module(bench)


def figures(per_turn_ms: dict[str, float], idle: float = 0.0) -> dict:
    return {
        "cpu_ms_per_turn": per_turn_ms,
        "idle_cores": dict.fromkeys(per_turn_ms, idle),
        "tasks_per_turn": {
            "workflow tasks (agent)": 5.0,
            "activities (llm)": 2.0,
            "activities (embed)": 0.5,
            "nexus operations (retrieval)": 0.5,
            "nexus operations (business)": 0.5,
        },
    }


PER_TURN = {
    "temporal-server": 100.0,
    "agent-worker": 50.0,
    "llm-worker": 20.0,
    "embed-worker": 5.0,
    "retrieval-worker": 1.0,
    "business-worker": 1.0,
    "codec-server": 0.0,
}


def test_replicas_follow_cpu_per_turn_and_the_chart_limits() -> None:
    limits = bench.replica_cores()
    assert limits["agent-worker"] == 1.0 and limits["llm-worker"] == 0.5  # values.yaml: "1", 500m
    model = bench.size(figures(PER_TURN))
    plan = model["plans"]["50"]
    # 50 turns/s x 50 ms = 2.5 cores of agent workflows, at 70% of 1 core each: 4 replicas.
    assert plan["agent-worker"] == {"cores": 2.5, "replicas": math.ceil(2.5 / 0.7)}
    # 50 x 20 ms = 1 core of model calls at 70% of 0.5 core: 3 replicas.
    assert plan["llm-worker"]["replicas"] == math.ceil(1.0 / 0.35)
    assert model["turns_per_s_per_replica"]["temporal-server"] == 0.7 / 0.1
    assert model["first_bottleneck"] == "temporal-server"
    # The codec server is not on a turn's path: it is never the bottleneck.
    assert "codec-server" not in model["turns_per_s_per_replica"]


def test_idle_cost_counts_against_a_replica_and_keda_targets_follow_the_task_cost() -> None:
    model = bench.size(figures(PER_TURN, idle=0.1))
    assert math.isclose(model["turns_per_s_per_replica"]["agent-worker"], (0.7 - 0.1) / 0.05)
    agent = model["keda"]["agent-worker"]
    assert math.isclose(agent["cpu_ms_per_task"], 10.0)  # 50 ms over 5 workflow tasks
    assert agent["targetQueueSize"] == math.floor(0.7 / 0.010 * bench.MAX_QUEUE_WAIT_S)
    # A pool with no measurable CPU gets no target rather than an infinite one.
    idle_pool = bench.size(figures({**PER_TURN, "retrieval-worker": 0.0}))["keda"]["retrieval-worker"]
    assert idle_pool["targetQueueSize"] is None


def test_payloads_are_found_wherever_an_event_holds_them() -> None:
    event = HistoryEvent()
    attrs = event.workflow_execution_started_event_attributes
    attrs.input.CopyFrom(Payloads(payloads=[Payload(data=b"a"), Payload(data=b"b")]))
    attrs.memo.fields["note"].CopyFrom(Payload(data=b"c"))
    attrs.header.fields["trace"].CopyFrom(Payload(data=b"d"))
    assert sorted(p.data for p in bench._payloads(event)) == [b"a", b"b", b"c", b"d"]


def test_cpu_seconds_read_this_process_from_proc() -> None:
    pid = os.getpid()
    before, own = bench.cpu_seconds({"me": pid})["me"], os.times()
    # Burn 0.2 s of this process's own CPU time (however long the loaded machine takes to give it).
    while (now := os.times()).user + now.system - own.user - own.system < 0.2:
        json.dumps(list(range(1000)))
    after = bench.cpu_seconds({"me": pid})["me"]
    assert after - before >= 0.2 - 0.02  # /proc counts in clock ticks (10 ms)
    assert bench.memory_mib({"me": pid})["me"]["VmRSS"] > 10


def test_a_process_trees_memory_counts_its_children() -> None:
    # A child holding 64 MiB: its own PSS shows them, and so does this process's tree.
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; held = bytearray(64 << 20); print(flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"\n"
        memory = bench.memory_mib({"child": child.pid, "me": os.getpid()})
        assert memory["child"]["PssTree"] >= 60
        assert memory["me"]["PssTree"] >= memory["child"]["PssTree"] + 10
    finally:
        child.kill()
        child.wait()
