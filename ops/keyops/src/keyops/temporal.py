"""A Temporal client that sees histories exactly as the server stores them.

No payload codec, on purpose: the point is to read ciphertext and its key ids, not plaintext.
Connection settings come from Temporal's env config (``TEMPORAL_ADDRESS``, ``TEMPORAL_API_KEY``,
TLS variables, TOML profiles), as in every other process of the project.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from keyops.errors import KeyOpsError, NotFoundError
from workerkit.connect import DEFAULT_ADDRESS as DEFAULT_ADDRESS  # re-exported: the CLIs name it in --help
from workerkit.connect import connect_without_codec
from workerkit.errors import TemporalUnreachable


async def connect_raw(namespace: str, address: str | None = None) -> Client:
    # No codec: the payloads stay as the server stores them, and that is the point.
    try:
        return await connect_without_codec(namespace, address)
    except TemporalUnreachable as err:
        raise KeyOpsError(str(err)) from None


def in_namespace(client: Client, namespace: str) -> Client:
    """The same connection, another namespace."""
    return Client(client.service_client, namespace=namespace)


def rpc_failure(err: RPCError, what: str, not_found: str = "not found on the server") -> KeyOpsError:
    hints = {
        RPCStatusCode.NOT_FOUND: not_found,
        RPCStatusCode.PERMISSION_DENIED: "permission denied; use credentials that may read this namespace",
        RPCStatusCode.UNAUTHENTICATED: "not authenticated; set TEMPORAL_API_KEY or the TLS client certificate",
        RPCStatusCode.UNAVAILABLE: "the server is unavailable; check TEMPORAL_ADDRESS",
        RPCStatusCode.INVALID_ARGUMENT: f"the server rejected the request ({err.message})",
    }
    kind = NotFoundError if err.status == RPCStatusCode.NOT_FOUND else KeyOpsError
    return kind(f"cannot {what}: {hints.get(err.status, err.message)}")


@dataclass(frozen=True)
class ExecutionRef:
    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    close_time: datetime | None

    @property
    def open(self) -> bool:
        return self.status == WorkflowExecutionStatus.RUNNING.name


async def list_executions(client: Client, query: str | None) -> AsyncIterator[ExecutionRef]:
    try:
        async for execution in client.list_workflows(query):
            yield ExecutionRef(
                execution.id,
                execution.run_id,
                execution.workflow_type,
                execution.status.name if execution.status else "UNKNOWN",
                execution.close_time,
            )
    except RPCError as err:
        raise rpc_failure(err, f"list workflows in namespace {client.namespace!r}") from None


async def fetch_raw_history(client: Client, workflow_id: str, run_id: str = "") -> History:
    """Every event of one run, paged, payloads untouched."""
    history = History()
    token = b""
    while True:
        request = GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            next_page_token=token,
        )
        try:
            response = await client.workflow_service.get_workflow_execution_history(request)
        except RPCError as err:
            raise rpc_failure(
                err,
                f"read the history of workflow {workflow_id!r} in namespace {client.namespace!r}",
                "no such run (wrong id, or deleted at the end of retention)",
            ) from None
        history.events.extend(response.history.events)
        token = response.next_page_token
        if not token:
            return history


async def resolve_run_id(client: Client, workflow_id: str, run_id: str | None) -> str:
    """The run id to export: the one given, else the latest run's."""
    try:
        described = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id or ""),
            )
        )
    except RPCError as err:
        raise rpc_failure(
            err,
            f"find workflow {workflow_id!r} in namespace {client.namespace!r}",
            "no such workflow (wrong id or run id, or deleted at the end of retention)",
        ) from None
    return described.workflow_execution_info.execution.run_id


async def retention(client: Client, namespace: str) -> timedelta | None:
    try:
        described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    except RPCError as err:
        raise rpc_failure(err, f"describe namespace {namespace!r}", "no such namespace on this server") from None
    ttl = described.config.workflow_execution_retention_ttl
    return ttl.ToTimedelta() if ttl.seconds or ttl.nanos else None
