"""Tool calls as Temporal workflows, named by an idempotency key.

The workflow id is a digest of (caller, tool, key): the caller's own ``idempotency_key`` when it
sent one, else the call's canonical arguments. Two callers never share a workflow; one caller
resending the same call (a timeout, a crashed server, a retrying client) reaches the same one:

- a call with an effect (a refund, a new ticket) starts with reuse policy
  ``ALLOW_DUPLICATE_FAILED_ONLY`` and conflict policy ``USE_EXISTING``: while the first call
  runs, a resend attaches to it; once it has completed, a resend is refused a new run and reads
  the first one's result. Only a run that *failed* (the workflow, not the tool) may run again,
  and then the business service's idempotency key (the same key) still refunds once;
- a read (search, lookups) uses ``ALLOW_DUPLICATE``: concurrent resends share a run, a later
  call reads afresh (an order's status changes).

Waiting for the result sends MCP progress notifications, so a client sees a long call alive.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from agent.queues import AGENT_TASK_QUEUE
from agent.support.types import ConversationSettings
from agent.workflows.tool_call import ToolCallResult, ToolCallWorkflow, ToolInvocation, tool_call_id
from mcpserver.audit import canonical

Progress = Callable[[float, str], Awaitable[None]]
PROGRESS_INTERVAL_S = 1.0
MAX_KEY_CHARS = 200


class CallFailed(Exception):
    """The workflow behind a call failed (not the tool: a tool's refusal is a result)."""


def call_key(subject: str, tool: str, arguments: dict[str, Any], idempotency_key: str | None) -> str:
    """The digest naming one call; see the module's description."""
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_KEY_CHARS):
        raise ValueError(f"idempotency_key must be 1 to {MAX_KEY_CHARS} characters")
    basis = idempotency_key.encode() if idempotency_key is not None else b"args:" + canonical(arguments)
    h = hashlib.sha256()
    for part in (subject.encode(), tool.encode(), basis):
        h.update(len(part).to_bytes(4, "big") + part)
    return h.hexdigest()[:40]


async def waiting(task: asyncio.Future[Any], progress: Progress, what: str) -> Any:
    """``task``'s result; a progress notification every ``PROGRESS_INTERVAL_S`` meanwhile."""
    ticks = 0
    while True:
        done, _ = await asyncio.wait({task}, timeout=PROGRESS_INTERVAL_S)
        if done:
            return task.result()
        ticks += 1
        await progress(ticks, f"{what}: still running after {ticks * PROGRESS_INTERVAL_S:.0f} s")


async def run_tool(
    client: Client,
    invocation: ToolInvocation,
    key: str,
    *,
    effect: bool,
    progress: Progress,
) -> tuple[str, ToolCallResult]:
    """(workflow id, result) of one tool call; see the module's description."""
    workflow_id = tool_call_id(key)
    try:
        handle = await client.start_workflow(
            ToolCallWorkflow.run,
            invocation,
            id=workflow_id,
            task_queue=AGENT_TASK_QUEUE,
            id_reuse_policy=(
                WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY if effect else WorkflowIDReusePolicy.ALLOW_DUPLICATE
            ),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"MCP tool {invocation.tool}",
        )
    except WorkflowAlreadyStartedError:
        # Completed before: this is a resend, and the first call's result is the answer.
        handle = client.get_workflow_handle_for(ToolCallWorkflow.run, workflow_id)
    await progress(0, f"{invocation.tool}: workflow {workflow_id} started")
    try:
        result = await waiting(asyncio.ensure_future(handle.result()), progress, invocation.tool)
    except WorkflowFailureError as err:
        cause = err.cause
        raise CallFailed(f"{invocation.tool} failed: {getattr(cause, 'message', None) or cause or err}") from None
    return workflow_id, result


def settings_for(threshold_cents: int) -> ConversationSettings:
    return ConversationSettings(approval_threshold_cents=threshold_cents)
