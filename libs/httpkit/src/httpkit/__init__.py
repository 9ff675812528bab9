"""How the project's HTTP servers listen and stop.

The codec server and the model server share this: the same command-line options for where to
listen, the same log format, a socket bound *before* uvicorn starts (so "port already in use"
is one sentence naming the setting to change, and clients that connect while uvicorn starts
wait in the backlog instead of being refused), and a clean exit 0 on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import socket
import sys
from collections.abc import Sequence

import uvicorn
from starlette.types import ASGIApp

__all__ = ["BindError", "bind_socket", "parse_server_arguments", "serve"]

DEFAULT_HOST = "127.0.0.1"


class BindError(Exception):
    """The server cannot listen where it was asked to; the message says what to do."""


def parse_server_arguments(
    prog: str, description: str, argv: Sequence[str] | None, *, port_env: str, default_port: int
) -> argparse.Namespace:
    """``--host``, ``--port`` (``None`` when not given: the caller reads ``port_env``) and
    ``--log-level``, parsed; logging is configured before this returns."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port (default: ${port_env} or {default_port}; 0 = any free port)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return args


def bind_socket(host: str, port: int, *, port_env: str, port_flag: str | None = "--port") -> socket.socket:
    """A listening socket on ``host:port``; the error for a taken port names the settings that
    choose another: ``port_flag`` (a process without one passes None) and ``port_env``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BindError(f"cannot resolve host {host!r} ({exc.strerror}); pass an address with --host.") from None
    sock = socket.socket(family, kind, proto)
    # Reuse a port left in TIME_WAIT by a restart; on Linux this never shares a port that
    # another process is listening on.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            settings = f"{port_flag} or {port_env}" if port_flag else port_env
            raise BindError(
                f"port {port} on {host} is already in use; stop the process using it or choose another "
                f"port with {settings}."
            ) from None
        raise BindError(f"cannot listen on {host}:{port} ({exc.strerror}).") from None
    # Listening now, not when uvicorn starts: the address is announced before uvicorn is up,
    # and a client that connects in between must wait in the backlog, not be refused.
    sock.listen(2048)
    return sock


def serve(app: ASGIApp, sock: socket.socket, *, lifespan: bool = False) -> None:
    """Serve until SIGTERM or Ctrl-C, then return (after uvicorn's graceful shutdown).
    ``lifespan``: run the app's startup and shutdown (an MCP server's session manager needs it)."""
    config = uvicorn.Config(
        app,
        log_config=None,
        # Each server writes its own one line per request, careful about what it prints;
        # uvicorn's access log would duplicate it with less care.
        access_log=False,
        lifespan="on" if lifespan else "off",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    # uvicorn shuts down gracefully, then re-raises the signal it caught; routing SIGTERM through
    # KeyboardInterrupt makes both Ctrl-C and SIGTERM end in a clean return instead of a traceback.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
