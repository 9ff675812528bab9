"""``python -m mcpserver``: serve the platform's tools over streamable HTTP (default) or stdio.

Over HTTP every request carries a bearer token; over stdio (a client that starts this process)
the token comes from ``MCP_TOKEN`` or the file ``MCP_TOKEN_FILE``, checked once at start.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from httpkit import BindError, bind_socket, parse_server_arguments, serve
from mcpserver.app import PlatformTools, TemporalClient, Verifier, build_server, http_app
from mcpserver.audit import AuditLog
from mcpserver.auth import AuthError
from mcpserver.metrics import Metrics
from mcpserver.settings import DEFAULT_PORT, PORT_ENV, Settings, SettingsError
from workerkit import TemporalUnreachable, connect

log = logging.getLogger("mcpserver")


def _stdio_token() -> str:
    token = os.environ.get("MCP_TOKEN", "")
    if not token and (path := os.environ.get("MCP_TOKEN_FILE")):
        try:
            token = Path(path).read_text()
        except OSError as err:
            raise SettingsError(f"cannot read MCP_TOKEN_FILE={path} ({err.strerror})") from None
    if not token.strip():
        raise SettingsError("over stdio the caller's token comes from MCP_TOKEN or MCP_TOKEN_FILE; set one")
    return token


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stdio = "--stdio" in argv
    if stdio:
        argv.remove("--stdio")
    args = parse_server_arguments(
        "mcpserver",
        "The platform's tools over MCP; every call a Temporal workflow. --stdio: serve one client on stdin/stdout.",
        argv,
        port_env=PORT_ENV,
        default_port=DEFAULT_PORT,
    )
    port = args.port if args.port is not None else int(os.environ.get(PORT_ENV, DEFAULT_PORT))
    try:
        settings = Settings.from_env(args.host, port)
        authenticator = settings.authenticator()
        audit = AuditLog(settings.audit_log)
        temporal = TemporalClient(lambda: connect("agents", patience_s=30))
        if stdio:
            caller = authenticator.authenticate(_stdio_token())
            server = build_server(PlatformTools(settings, temporal, audit, Metrics(), stdio_caller=caller), None)
            anyio.run(server.run_stdio_async)
            return 0
        sock = bind_socket(args.host, port, port_env=PORT_ENV)
        metrics = Metrics()
        server = build_server(PlatformTools(settings, temporal, audit, metrics), Verifier(authenticator, audit))
        app = http_app(server, settings, temporal, metrics)
    except (SettingsError, BindError, AuthError, TemporalUnreachable) as err:
        print(f"mcpserver: {getattr(err, 'message', None) or err}", file=sys.stderr)
        return 2
    host, bound = sock.getsockname()[:2]
    print(f"mcpserver listening on http://{host}:{bound}/mcp", file=sys.stderr, flush=True)
    serve(app, sock, lifespan=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
