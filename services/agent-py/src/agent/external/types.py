"""Workflow-safe types and names of the external-tool activities (no I/O imports).

A conversation names the external MCP servers it may use (``ConversationSettings.mcp_servers``);
where they are and how to authenticate is the worker's configuration
(:mod:`agent.external.config`), so no address or credential enters a history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.queues import MCP_TASK_QUEUE  # noqa: F401  (re-exported for the workflow)
from agent.tools import Tool

DISCOVER_TOOLS_ACTIVITY = "discover_mcp_tools"
CALL_TOOL_ACTIVITY = "call_mcp_tool"

MAX_RESULT_CHARS = 8000
"""An external tool's answer as the model reads it is cut here: it goes into history."""
MAX_TOOLS_PER_SERVER = 32
SEPARATOR = "__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class McpErrorType:
    """``ApplicationError.type`` of a failed external call, by what a retry can do about it."""

    TRANSPORT = "McpTransportError"
    """The server could not be reached or broke the connection (refused, reset, 5xx, a timeout):
    retried with backoff; in the end the model is told the tool is unavailable."""
    AUTH = "McpAuthError"
    """The server refused our credentials (401, 403): a retry cannot fix it."""
    UNKNOWN_SERVER = "McpUnknownServer"
    """The conversation names a server this worker has no configuration for."""
    PROTOCOL = "McpProtocolError"
    """The server answered with a protocol error (unknown tool, invalid arguments)."""


NON_RETRYABLE_MCP_ERRORS = [McpErrorType.AUTH, McpErrorType.UNKNOWN_SERVER, McpErrorType.PROTOCOL]


@dataclass
class ExternalTool:
    """One tool of an external server, as discovered (and so recorded in history)."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        """The name the model sees: server and tool, never one of the agent's own names."""
        return _UNSAFE.sub("_", f"{self.server}{SEPARATOR}{self.name}")[:64]

    def as_tool(self) -> Tool:
        schema = self.input_schema if self.input_schema.get("type") == "object" else {}
        return Tool(
            self.qualified,
            f"[{self.server}] {self.description}"[:1000],
            dict(schema.get("properties") or {}),
            tuple(schema.get("required") or ()),
        )


@dataclass
class DiscoverRequest:
    servers: list[str]


@dataclass
class Discovered:
    tools: list[ExternalTool] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    """Server -> why its tools are missing this run (unreachable, refused): the conversation
    goes on with the others."""


@dataclass
class ExternalCall:
    server: str
    tool: str
    arguments: dict[str, Any]
    idempotency_key: str
    """The conversation's step key, sent as the call's ``idempotency_key`` argument where the
    tool's schema takes one, so a server that honours it acts once across our retries."""


@dataclass
class ExternalResult:
    text: str
    is_error: bool = False
    """The tool ran and answered with an error (its own words in ``text``): not retried."""
    structured: dict[str, Any] | None = None
