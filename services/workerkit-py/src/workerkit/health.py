"""Liveness and readiness endpoints, the ones Kubernetes probes and the dev stack wait on."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def health_app(name: str, ready: asyncio.Event) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "process": name})

    async def readyz(_: Request) -> JSONResponse:
        if ready.is_set():
            return JSONResponse({"status": "ready", "process": name})
        return JSONResponse({"status": "starting", "process": name}, status_code=503)

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])


def health_server(name: str, ready: asyncio.Event, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        health_app(name, ready), host=host, port=port, log_level="warning", lifespan="off"
    )
    return uvicorn.Server(config)
