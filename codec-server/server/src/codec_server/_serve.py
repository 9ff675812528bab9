"""Bind the listening socket ourselves, then hand it to uvicorn.

Binding first turns "port already in use" into one clear sentence instead of uvicorn's
log-and-exit.
"""

from __future__ import annotations

import errno
import logging
import socket

import uvicorn
from starlette.types import ASGIApp


class BindError(Exception):
    """The server cannot listen where it was asked to; the message says what to do."""


def bind_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BindError(
            f"cannot resolve host {host!r} ({exc.strerror}); pass an address with --host."
        ) from None
    sock = socket.socket(family, kind, proto)
    # Reuse a port left in TIME_WAIT by a restart; on Linux this never shares a port that
    # another process is listening on.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"port {port} on {host} is already in use; stop the process using it or choose another "
                "port with --port or CODEC_SERVER_PORT."
            ) from None
        raise BindError(f"cannot listen on {host}:{port} ({exc.strerror}).") from None
    # Listening now, not when uvicorn starts: the address is announced before uvicorn is up,
    # and a client that connects in between must wait in the backlog, not be refused.
    sock.listen(2048)
    return sock


def serve(app: ASGIApp, sock: socket.socket) -> None:
    config = uvicorn.Config(
        app,
        log_config=None,
        # The audit log is the one line per request; uvicorn's access log would duplicate it
        # with less care about what it prints.
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    uvicorn.Server(config).run(sockets=[sock])
