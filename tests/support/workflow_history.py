"""What a workflow's history says about where it ran, for the rollout tests."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client


async def build_ids_of_history(client: Client, workflow_id: str) -> set[str]:
    """Every build id that completed a workflow task of the run: where it actually ran."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return {
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }
