"""One log line per request (method, path, status, latency) and its count in the metrics.
Never bodies, never headers."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._metrics import Metrics

log = logging.getLogger("modelserver.access")


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.started(scope["path"])
        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.finished(scope["path"])
            # The path only: query strings could carry anything a caller chose to put there.
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, (time.perf_counter() - started) * 1000)
            self.metrics.request(scope["path"], status)
