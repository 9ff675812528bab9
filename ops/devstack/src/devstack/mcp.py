"""The MCP server as a process of the dev stack: its spec, its address, its tokens."""

from __future__ import annotations

import sys

from devstack.config import StackConfig
from devstack.processes import ProcessSpec, http_ok
from devstack.secrets import McpTokens, ensure_mcp_tokens

NAME = "mcp-server"


def url(config: StackConfig) -> str:
    """The streamable HTTP endpoint an MCP client connects to."""
    return f"http://{config.host}:{config.ports['mcp_server']}/mcp"


def tokens(config: StackConfig) -> McpTokens:
    return ensure_mcp_tokens(config.data_dir)


def spec(config: StackConfig, temporal_env: dict[str, str | None]) -> ProcessSpec:
    """``temporal_env``: the Temporal client settings and key ring a process of the stack gets
    (the MCP server is a client of the agents namespace, and encrypts what it sends)."""
    host, port = config.host, config.ports["mcp_server"]
    return ProcessSpec(
        name=NAME,
        argv=[sys.executable, "-m", "mcpserver", "--host", host, "--port", str(port)],
        ports=[port],
        ready=http_ok(f"http://{host}:{port}/readyz"),
        env={
            **temporal_env,
            "MCP_TOKENS_FILE": str(tokens(config).tokens_file),
            "MCP_AUDIT_LOG": str(config.log_dir / "mcp-audit.jsonl"),
            "MCP_PUBLIC_URL": url(config),
            "MCP_OIDC_ISSUER": None,
            "MCP_OIDC_AUDIENCE": None,
            "MCP_OIDC_JWKS_URL": None,
        },
    )


def client_config(config: StackConfig, temporal_env: dict[str, str]) -> dict[str, object]:
    """An MCP client configuration (the ``mcpServers`` shape most clients read) for this stack:
    ``durable-support`` starts the server over stdio with the support lead's token file (the
    client never holds the token), ``durable-support-http`` is the stack's own HTTP server,
    whose bearer token the client must be given (``mcp-token-*`` in the data directory)."""
    found = tokens(config)
    return {
        "mcpServers": {
            "durable-support": {
                "command": sys.executable,
                "args": ["-m", "mcpserver", "--stdio"],
                "env": {
                    **temporal_env,
                    "TEMPORAL_NAMESPACE": "agents",
                    "MCP_TOKENS_FILE": str(found.tokens_file),
                    "MCP_TOKEN_FILE": str(found.operator_token_file),
                    "MCP_AUDIT_LOG": str(config.log_dir / "mcp-audit-stdio.jsonl"),
                },
            },
            "durable-support-http": {"type": "http", "url": url(config)},
        }
    }
