"""A small external MCP server for the agent's tests: ``python -m mcpserver.testing --port N``.

What the agent, as an MCP client, must cope with, from a real server over streamable HTTP:

- ``track_parcel``: answers, and appends each call to the ledger (``MCP_TEST_LEDGER``), so a
  test counts how often the tool really ran (a replay must not run it again);
- ``weigh_parcel``: the tool's own error (``isError``), an answer and not a failure to retry;
- a bearer token (``MCP_TEST_TOKEN``): any other token gets 401.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl

from httpkit import bind_socket, parse_server_arguments, serve

PORT_ENV = "MCP_TEST_PORT"


class OneToken(TokenVerifier):
    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token, self._token):
            return None
        return AccessToken(token=token, client_id="agent", scopes=[])


def build(ledger: Path, token: str, url: str) -> MCPServer:
    server = MCPServer(
        "parcels",
        token_verifier=OneToken(token),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(url.rsplit("/mcp", 1)[0]),
            resource_server_url=AnyHttpUrl(url),
            validate_token_resource=False,
        ),
    )

    @server.tool(description="Where a parcel is, by its tracking id (like PCL-1).")
    def track_parcel(tracking_id: str) -> dict[str, str]:
        with ledger.open("a") as out:
            out.write(json.dumps({"tool": "track_parcel", "tracking_id": tracking_id}) + "\n")
        return {"tracking_id": tracking_id, "status": "in transit", "depot": "Leeds"}

    @server.tool(description="The weight of a parcel, by its tracking id.")
    def weigh_parcel(tracking_id: str) -> str:
        raise ToolError(f"the scale at the depot is broken; no weight for {tracking_id}")

    return server


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_server_arguments("mcpserver.testing", __doc__ or "", argv, port_env=PORT_ENV, default_port=0)
    sock = bind_socket(args.host, args.port or 0, port_env=PORT_ENV)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}/mcp"
    server = build(Path(os.environ["MCP_TEST_LEDGER"]), os.environ["MCP_TEST_TOKEN"], url)
    print(url, file=sys.stderr, flush=True)
    app = server.streamable_http_app(stateless_http=True, host=args.host)
    serve(app, sock, lifespan=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
