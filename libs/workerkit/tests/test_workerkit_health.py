"""The probes: /readyz follows the workers' start, and after it a dependency's own check."""

from __future__ import annotations

import asyncio

import httpx

from workerkit.health import health_app


async def probe(app, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        return await client.get(path)


async def test_readiness_follows_start_up_and_then_the_dependency() -> None:
    ready = asyncio.Event()
    reason: list[str | None] = [None]

    async def unready() -> str | None:
        return reason[0]

    app = health_app("business-worker", ready, unready)
    assert (await probe(app, "/readyz")).status_code == 503
    ready.set()
    assert (await probe(app, "/readyz")).json() == {"status": "ready", "process": "business-worker"}
    reason[0] = "the business database at business@db:5432/business does not answer"
    answer = await probe(app, "/readyz")
    assert answer.status_code == 503 and answer.json()["reason"] == reason[0]
    # Liveness never depends on the database: a restart would not bring it back.
    assert (await probe(app, "/healthz")).status_code == 200
