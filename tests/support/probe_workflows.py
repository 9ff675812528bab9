"""Test-only workflows that probe the Nexus wiring (kept importable for the workflow sandbox)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn
class CallMissingOperationWorkflow:
    """Calls an operation the retrieval service does not have; must fail fast with a typed error."""

    @workflow.run
    async def run(self, endpoint: str) -> str:
        client = workflow.create_nexus_client(service="retrieval", endpoint=endpoint)
        return await client.execute_operation(
            "no_such_operation", {"query": "x"}, schedule_to_close_timeout=timedelta(seconds=30)
        )
