"""CORS for the configured UI origins only.

Written here rather than taken from Starlette because Starlette's middleware adds
``Access-Control-Allow-Credentials: true`` to every response to a cross-origin request, allowed
origin or not. A grant of any kind belongs to the configured origins alone: everyone else gets
no CORS header at all, and a preflight from them is answered 400.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = "POST"
ALLOWED_HEADERS = frozenset({"authorization", "content-type", "x-namespace"})
PREFLIGHT_MAX_AGE = "600"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(headers, origin if allowed else None)(scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_grant(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = str(origin)
                out["Access-Control-Allow-Credentials"] = "true"
                out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_grant)

    @staticmethod
    def _preflight(headers: Headers, origin: str | None) -> PlainTextResponse:
        requested = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")}
        requested.discard("")
        if origin is None:
            return PlainTextResponse("origin not allowed", status_code=400, headers={"Vary": "Origin"})
        if headers["access-control-request-method"] != "POST" or not requested <= ALLOWED_HEADERS:
            return PlainTextResponse(
                "only POST with Authorization, Content-Type and X-Namespace headers is allowed",
                status_code=400,
                headers={"Vary": "Origin"},
            )
        return PlainTextResponse(
            "OK",
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                "Vary": "Origin",
            },
        )
