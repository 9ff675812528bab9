"""The benchmark's baseline: a workflow that runs N no-op activities one after another.

It is what the agent's orchestration costs are measured against (`make bench-agent`): the same
server, the same client and the same number of steps, with none of the agent's work in them.
Kept in an importable module because the Python sandbox loads workflows by module.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BASELINE_TASK_QUEUE = "bench-baseline"


@activity.defn(name="bench_noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="BenchNoOpChainWorkflow")
class NoOpChainWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        return steps
