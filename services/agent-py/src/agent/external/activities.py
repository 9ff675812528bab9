"""The external-tool activities: discover a server's tools, call one tool.

Each runs one MCP session over streamable HTTP with the official ``mcp`` client. Failures are
classified for the workflow's retry policy (:class:`agent.external.types.McpErrorType`): an
unreachable or failing server is retried, refused credentials and protocol errors are not, and a
tool that answers with an error has *answered* (``ExternalResult.is_error``), which is recorded
and shown to the model like any tool's failure.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent
from temporalio import activity
from temporalio.exceptions import ApplicationError

from agent.external.config import ServerConfig, load_servers
from agent.external.types import (
    CALL_TOOL_ACTIVITY,
    DISCOVER_TOOLS_ACTIVITY,
    MAX_RESULT_CHARS,
    MAX_TOOLS_PER_SERVER,
    Discovered,
    DiscoverRequest,
    ExternalCall,
    ExternalResult,
    ExternalTool,
    McpErrorType,
)
from workerkit.errors import ConfigError, root_cause

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0


def classify(server: str, err: BaseException, refused: int | None = None) -> ApplicationError:
    """One failed session, as the error type its retry policy acts on; ``refused``: the HTTP
    status (401, 403) with which the server refused a request of the session, if it did (the
    client library reports that as a generic error)."""
    if refused is not None:
        return ApplicationError(
            f"MCP server {server} refused our credentials (HTTP {refused})", type=McpErrorType.AUTH, non_retryable=True
        )
    # The transport reports through task groups: look at what actually went wrong.
    leaves: list[BaseException] = [err]
    while any(isinstance(e, BaseExceptionGroup) for e in leaves):
        leaves = [x for e in leaves for x in (e.exceptions if isinstance(e, BaseExceptionGroup) else (e,))]
    for leaf in leaves:
        cause = root_cause(leaf)
        if isinstance(cause, MCPError):
            return ApplicationError(
                f"MCP server {server} answered with a protocol error: {cause}",
                type=McpErrorType.PROTOCOL,
                non_retryable=True,
            )
    detail = type(root_cause(leaves[0])).__name__
    return ApplicationError(f"MCP server {server} is unavailable ({detail})", type=McpErrorType.TRANSPORT)


class ExternalToolActivities:
    def __init__(self, servers: dict[str, ServerConfig] | None = None) -> None:
        self._servers = load_servers() if servers is None else servers

    def _server(self, name: str) -> ServerConfig:
        try:
            return self._servers[name]
        except KeyError:
            raise ApplicationError(
                f"this worker has no MCP server named {name!r} (AGENT_MCP_SERVERS_FILE)",
                type=McpErrorType.UNKNOWN_SERVER,
                non_retryable=True,
            ) from None

    @asynccontextmanager
    async def _session(self, server: ServerConfig) -> AsyncIterator[ClientSession]:
        """One MCP session; any failure leaves as a classified ApplicationError."""
        try:
            headers = server.headers()
        except ConfigError as err:
            raise ApplicationError(str(err), type=McpErrorType.AUTH, non_retryable=True) from None
        refused: list[int] = []

        async def note_refusal(response: httpx2.Response) -> None:
            if response.status_code in (401, 403):
                refused.append(response.status_code)

        timeout = httpx2.Timeout(CONNECT_TIMEOUT_S, read=None)
        try:
            async with httpx2.AsyncClient(
                headers=headers, timeout=timeout, event_hooks={"response": [note_refusal]}
            ) as http:
                async with streamable_http_client(server.url, http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        yield session
        except ApplicationError:
            raise
        except Exception as err:
            raise classify(server.name, err, refused[0] if refused else None) from None

    @activity.defn(name=DISCOVER_TOOLS_ACTIVITY)
    async def discover(self, request: DiscoverRequest) -> Discovered:
        """Every named server's tools; a server that cannot be had is reported, not fatal."""
        found = Discovered()
        for name in request.servers:
            try:
                server = self._server(name)
                async with self._session(server) as session:
                    listed = await session.list_tools()
            except ApplicationError as err:
                found.unavailable[name] = err.message
                continue
            except Exception as err:
                found.unavailable[name] = classify(name, err).message
                continue
            for tool in listed.tools[:MAX_TOOLS_PER_SERVER]:
                found.tools.append(ExternalTool(name, tool.name, tool.description or "", dict(tool.input_schema)))
        return found

    @activity.defn(name=CALL_TOOL_ACTIVITY)
    async def call(self, request: ExternalCall) -> ExternalResult:
        server = self._server(request.server)
        try:
            async with self._session(server) as session:
                result = await session.call_tool(request.tool, request.arguments)
        except ApplicationError:
            raise
        except Exception as err:
            raise classify(request.server, err) from None
        return _result(result)


def _result(result: CallToolResult) -> ExternalResult:
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
    structured = dict(result.structured_content) if result.structured_content is not None else None
    return ExternalResult(text[:MAX_RESULT_CHARS], bool(result.is_error), structured)
