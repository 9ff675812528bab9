"""The ASGI application: routes, the request pipeline, and the JSON error shape."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload

from payload_codec import (
    CodecError,
    DecodeError,
    EncodeError,
    EncryptionCodec,
    KeyRing,
    is_encrypted,
    payload_key_id,
)

from ._audit import DIGEST_HEX_CHARS, AuditLog, AuditRecord
from ._auth import Authenticator, AuthError, Operation, authorize
from ._metrics import Metrics
from ._openapi import openapi_document
from ._settings import Settings, valid_namespace
from ._wire import WireError, parse_payloads, render_payloads

log = logging.getLogger("codec_server")

NAMESPACE_HEADER = "x-namespace"
DEFAULT_MAX_PAYLOADS = 10_000


class RequestError(Exception):
    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@dataclass
class CodecService:
    keyring: KeyRing
    auth: Authenticator
    metrics: Metrics
    audit: AuditLog
    max_body_bytes: int
    max_payloads: int = DEFAULT_MAX_PAYLOADS

    async def handle(self, request: Request, operation: Operation) -> Response:
        started = time.perf_counter()
        record = AuditRecord(
            operation=operation,
            client=request.client.host if request.client else None,
            path=request.url.path,
            user_agent=(request.headers.get("user-agent") or "")[:200] or None,
            origin=(request.headers.get("origin") or "")[:200] or None,
        )
        namespace_error: RequestError | None = None
        try:
            namespace = self._namespace(request)
            record.namespace = namespace
        except RequestError as exc:
            namespace, namespace_error = None, exc
        bytes_in = bytes_out = 0
        try:
            principal = await self.auth.authenticate(request.headers.get("authorization"))
            record.subject, record.auth_method = principal.subject, principal.method
            if namespace_error is not None:
                raise namespace_error
            assert namespace is not None
            authorize(principal, namespace, operation)
            body = await self._read_body(request)
            try:
                payloads = parse_payloads(body)
            except WireError as exc:
                raise RequestError(400, "bad_request", str(exc)) from None
            record.payload_count = len(payloads)
            if len(payloads) > self.max_payloads:
                raise RequestError(413, "too_large", f"at most {self.max_payloads} payloads per request")
            bytes_in = sum(len(p.data) for p in payloads)
            codec = EncryptionCodec(self.keyring, namespace, observer=self.metrics.codec)
            if operation == "decode":
                self._note_ciphertexts(record, payloads)
                result = await anyio.to_thread.run_sync(codec.decode_sync, payloads)
            else:
                result = await anyio.to_thread.run_sync(codec.encode_sync, payloads)
                self._note_ciphertexts(record, result)
            bytes_out = sum(len(p.data) for p in result)
            response: Response = Response(render_payloads(result), media_type="application/json")
            record.outcome, record.status = "ok", 200
            self.metrics.payloads.labels(operation, self.metrics.namespace_label(namespace)).inc(len(result))
        except AuthError as exc:
            self.metrics.auth_failures.labels(exc.reason).inc()
            record.subject = record.subject or exc.subject
            record.auth_method = record.auth_method or exc.method
            outcome = {401: "unauthenticated", 403: "forbidden"}.get(exc.status, "unavailable")
            record.outcome, record.status, record.reason, record.error = (
                outcome,
                exc.status,
                exc.reason,
                exc.message,
            )
            headers = {"WWW-Authenticate": 'Bearer realm="codec"'} if exc.status == 401 else None
            response = error_response(exc.status, exc.message, headers)
        except RequestError as exc:
            record.outcome, record.status, record.error = exc.outcome, exc.status, exc.message
            response = error_response(exc.status, exc.message)
        except DecodeError as exc:
            # The codec's messages name key ids only (payload_codec guarantees it).
            record.outcome, record.status, record.error = "codec_error", 422, str(exc)
            if exc.key_id:
                record.key_ids = sorted(set(record.key_ids) | {exc.key_id})
            response = error_response(422, str(exc))
        except (EncodeError, CodecError) as exc:
            record.outcome, record.status, record.error = "codec_error", 422, str(exc)
            response = error_response(422, str(exc))
        except ClientDisconnect:
            record.outcome, record.status, record.error = "client_disconnected", 499, "client went away"
            response = Response(status_code=499)
        except Exception as exc:
            # Type only: a traceback's text could quote request content.
            log.error("unexpected error while serving %s (%s)", operation, type(exc).__name__)
            record.outcome, record.status, record.error = "error", 500, "internal error"
            response = error_response(500, "internal error; see the codec server log")
        finally:
            elapsed = time.perf_counter() - started
            record.latency_ms = elapsed * 1000
            ns_label = self.metrics.namespace_label(namespace)
            self.metrics.requests.labels(operation, ns_label, record.outcome).inc()
            self.metrics.latency.labels(operation).observe(elapsed)
            if bytes_in:
                self.metrics.bytes.labels(operation, ns_label, "in").inc(bytes_in)
            if bytes_out:
                self.metrics.bytes.labels(operation, ns_label, "out").inc(bytes_out)
            self.audit.write(record)
        return response

    @staticmethod
    def _note_ciphertexts(record: AuditRecord, payloads: list[Payload]) -> None:
        digests: list[str | None] = []
        key_ids: set[str] = set(record.key_ids)
        for p in payloads:
            if is_encrypted(p):
                digests.append(hashlib.sha256(p.data).hexdigest()[:DIGEST_HEX_CHARS])
                key_id = payload_key_id(p)
                if key_id:
                    key_ids.add(key_id)
            else:
                digests.append(None)
        record.payload_sha256 = digests
        record.key_ids = sorted(key_ids)

    @staticmethod
    def _namespace(request: Request) -> str:
        from_path = request.path_params.get("namespace")
        from_header = request.headers.get(NAMESPACE_HEADER)
        for value, where in ((from_path, "the path"), (from_header, "the X-Namespace header")):
            if value is not None and not valid_namespace(value):
                raise RequestError(
                    400, "bad_request", f"the namespace in {where} is not a valid namespace name"
                )
        if from_path and from_header and from_path != from_header:
            raise RequestError(
                400, "bad_request", "the namespace in the path and the X-Namespace header disagree"
            )
        namespace = from_path or from_header
        if not namespace:
            raise RequestError(
                400,
                "bad_request",
                "no namespace: send the X-Namespace header or use /{namespace}/"
                + request.url.path.rsplit("/", 1)[-1],
            )
        return namespace

    async def _read_body(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        too_large = RequestError(413, "too_large", f"request body is larger than {limit} bytes")
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise RequestError(400, "bad_request", "the Content-Length header is not a number")
            if int(declared) > limit:
                raise too_large
        chunks: list[bytes] = []
        size = 0
        stream = request.stream()
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                # Read and drop a bounded remainder so a client that is still sending gets to
                # read the 413 instead of a connection reset.
                async for rest in stream:
                    size += len(rest)
                    if size > 4 * limit:
                        break
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)


def create_app(
    settings: Settings,
    keyring: KeyRing,
    auth: Authenticator,
    audit: AuditLog,
    metrics: Metrics | None = None,
) -> Starlette:
    metrics = metrics or Metrics(settings.metric_namespaces | {ns for ns in keyring.active if ns != "*"})
    service = CodecService(keyring, auth, metrics, audit, settings.max_body_bytes)
    document = openapi_document(settings.max_body_bytes)

    def endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            return await service.handle(request, operation)

        return run

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "keys": len(keyring)})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        messages = {404: "no such endpoint; use POST /decode or /encode", 405: "method not allowed; use POST"}
        return error_response(
            exc.status_code, messages.get(exc.status_code, exc.detail or "request refused"), exc.headers
        )

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/decode", endpoint("decode"), methods=["POST"]),
        Route("/encode", endpoint("encode"), methods=["POST"]),
        Route("/{namespace}/decode", endpoint("decode"), methods=["POST"]),
        Route("/{namespace}/encode", endpoint("encode"), methods=["POST"]),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=True,
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            max_age=600,
        )
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app
