"""Liveness and readiness endpoints, the ones Kubernetes probes and the dev stack wait on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from httpkit import BindError, bind_socket
from workerkit.errors import ConfigError

# Why the process cannot serve now (None: it can), asked on every /readyz once it is ready:
# a worker whose database does not answer should take no traffic.
UnreadyCheck = Callable[[], Awaitable[str | None]]


def health_app(name: str, ready: asyncio.Event, unready: UnreadyCheck | None = None) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "process": name})

    async def readyz(_: Request) -> JSONResponse:
        if ready.is_set():
            reason = await unready() if unready is not None else None
            if reason is None:
                return JSONResponse({"status": "ready", "process": name})
            return JSONResponse({"status": "unready", "process": name, "reason": reason}, status_code=503)
        return JSONResponse({"status": "starting", "process": name}, status_code=503)

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])


def health_server(name: str, ready: asyncio.Event, unready: UnreadyCheck | None = None) -> uvicorn.Server:
    """The probe server; serve it on a socket bound first (:func:`health_socket`)."""
    return uvicorn.Server(uvicorn.Config(health_app(name, ready, unready), log_level="warning", lifespan="off"))


def health_socket(host: str, port: int, port_env: str) -> socket.socket:
    """Bound before anything connects: a taken port is one sentence naming ``port_env``, at start."""
    try:
        return bind_socket(host, port, port_env=port_env, port_flag=None)
    except BindError as err:
        raise ConfigError(f"cannot serve health probes: {err}") from None
