"""The ASGI application: routes, the request pipeline, and the JSON error shape."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from temporalio.api.common.v1 import Payload

from payload_codec import (
    CodecError,
    DecodeError,
    DecompressionLimitError,
    EncodeError,
    EncryptionCodec,
    KeyRing,
    is_encrypted,
    payload_key_id,
)

from ._audit import DIGEST_HEX_CHARS, AuditLog, AuditRecord
from ._auth import Authenticator, AuthError, Operation, authorize
from ._cors import CorsMiddleware
from ._metrics import Metrics
from ._openapi import openapi_document
from ._settings import Settings, valid_namespace
from ._wire import TooManyPayloads, WireError, parse_payloads, render_chunks, render_payloads

log = logging.getLogger("codec_server")

NAMESPACE_HEADER = "x-namespace"
DEFAULT_MAX_PAYLOADS = 10_000
# Requests decoding or encoding at the same time. Each may hold up to max_decoded_bytes of
# plaintext, so this bounds the server's memory however many requests arrive at once; the rest
# wait their turn.
CODEC_CONCURRENCY = 2
# Responses up to this size (payload bytes) are rendered whole; larger ones are streamed.
_RENDER_WHOLE_BYTES = 1024 * 1024
# Encode codecs kept per namespace; namespaces come from callers, so the cache is bounded.
_MAX_CACHED_CODECS = 64


class RequestError(Exception):
    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class BudgetExceeded(Exception):
    def __init__(self, index: int, budget: int) -> None:
        super().__init__(
            f"the payloads decode to more than {budget} bytes in total (reached at payloads[{index}]); "
            "request fewer payloads at a time"
        )


def host_name(header: str | None) -> str:
    """The name in a Host header, without port: "[::1]:8404" -> "::1"."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass
class _Traffic:
    """Payload bytes in and out of one request, as far as it got (metrics count them either way)."""

    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class CodecService:
    keyring: KeyRing
    auth: Authenticator
    metrics: Metrics
    audit: AuditLog
    settings: Settings
    max_payloads: int = DEFAULT_MAX_PAYLOADS

    def __post_init__(self) -> None:
        # One codec for every decode (decoding picks the key by the payload's id, whatever the
        # namespace) and one per namespace for encode: their AES contexts are made once.
        self._decoder = EncryptionCodec(self.keyring, "*", observer=self.metrics.codec)
        self._encoders: dict[str, EncryptionCodec] = {}
        self._slots: anyio.CapacityLimiter | None = None

    @property
    def max_body_bytes(self) -> int:
        return self.settings.max_body_bytes

    def _encoder(self, namespace: str) -> EncryptionCodec:
        codec = self._encoders.get(namespace)
        if codec is None:
            if len(self._encoders) >= _MAX_CACHED_CODECS:
                self._encoders.clear()
            codec = self._encoders[namespace] = EncryptionCodec(self.keyring, namespace, observer=self.metrics.codec)
        return codec

    def _may_hold(self, namespace: str) -> frozenset[str]:
        """Namespaces whose keys this namespace's histories hold: its own, and, for a Nexus
        caller, the endpoints' targets (their operation results and failures are encrypted by
        the handler's worker, under the target namespace's key, and recorded in the caller's
        history as they are)."""
        if namespace in self.settings.nexus_callers:
            return self.settings.nexus_targets | {namespace}
        return frozenset({namespace})

    def _check_key_scope(self, namespace: str, payloads: list[Payload]) -> None:
        may_hold = self._may_hold(namespace)
        for i, p in enumerate(payloads):
            if not is_encrypted(p):
                continue
            key_id = p.metadata.get("encryption-key-id", b"").decode("utf-8", errors="replace")
            if key_id not in self.keyring:
                continue  # the codec answers 422 for it, naming the id
            owners = self.keyring.namespaces_of(key_id)
            if "*" in owners or owners & may_hold:
                continue
            raise AuthError(
                403,
                "key_not_in_namespace",
                f'payloads[{i}] is encrypted under key id "{payload_key_id(p)}" of namespace(s) '
                f"{', '.join(sorted(owners))}, which histories of {namespace!r} do not hold; "
                "decode it through its own namespace",
            )

    def _decode(self, payloads: list[Payload]) -> list[Payload]:
        """Decode in order within the request's decoded-bytes budget; a codec error names the
        index of the payload that failed."""
        budget = self.settings.max_decoded_bytes
        used = 0
        out: list[Payload] = []
        for i, p in enumerate(payloads):
            remaining = budget - used
            try:
                decoded = self._decoder.decode_one(p, max_inflated_bytes=max(remaining, 0))
            except DecompressionLimitError as exc:
                if exc.limit < self._decoder.max_inflated_bytes:
                    raise BudgetExceeded(i, budget) from None
                raise _indexed(exc, i) from None
            except DecodeError as exc:
                raise _indexed(exc, i) from None
            # Not ByteSize(): upb computes it by serializing, which costs more than the copy here.
            used += len(decoded.data) + sum(len(k) + len(v) for k, v in decoded.metadata.items())
            if used > budget:
                raise BudgetExceeded(i, budget)
            out.append(decoded)
        return out

    async def _run_codec(self, fn: Callable[[list[Payload]], list[Payload]], payloads: list[Payload]) -> list[Payload]:
        if self._slots is None:
            self._slots = anyio.CapacityLimiter(CODEC_CONCURRENCY)
        return await anyio.to_thread.run_sync(fn, payloads, limiter=self._slots)

    async def handle(self, request: Request, operation: Operation) -> Response:
        """Serve one /encode or /decode request; every request, refused or not, is counted and audited."""
        started = time.perf_counter()
        record = AuditRecord(
            operation=operation,
            client=request.client.host if request.client else None,
            path=request.url.path,
            user_agent=(request.headers.get("user-agent") or "")[:200] or None,
            origin=(request.headers.get("origin") or "")[:200] or None,
        )
        # A bad namespace is reported only after authentication: an anonymous caller learns nothing.
        namespace_error: RequestError | None = None
        try:
            namespace: str | None = self._namespace(request)
            record.namespace = namespace
        except RequestError as exc:
            namespace, namespace_error = None, exc
        traffic = _Traffic()
        try:
            response = await self._serve(request, operation, record, namespace, namespace_error, traffic)
        except Exception as exc:
            response = self._refusal(exc, operation, record)
        finally:
            self._account(operation, namespace, record, traffic, time.perf_counter() - started)
        return response

    async def _serve(
        self,
        request: Request,
        operation: Operation,
        record: AuditRecord,
        namespace: str | None,
        namespace_error: RequestError | None,
        traffic: _Traffic,
    ) -> Response:
        """The request's checks in order (host, token, namespace, role, content type, size), then the codec."""
        self._check_host(request)
        principal = await self.auth.authenticate(request.headers.get("authorization"))
        record.subject, record.auth_method = principal.subject, principal.method
        if namespace_error is not None:
            raise namespace_error
        assert namespace is not None
        authorize(principal, namespace, operation)
        self._check_content_type(request)
        body = await self._read_body(request)
        try:
            payloads = parse_payloads(body, self.max_payloads)
        except TooManyPayloads as exc:
            raise RequestError(413, "too_large", str(exc)) from None
        except WireError as exc:
            raise RequestError(400, "bad_request", str(exc)) from None
        del body
        record.payload_count = len(payloads)
        traffic.bytes_in = sum(len(p.data) for p in payloads)
        if operation == "decode":
            self._note_ciphertexts(record, payloads)
            self._check_key_scope(namespace, payloads)
            try:
                result = await self._run_codec(self._decode, payloads)
            except BudgetExceeded as exc:
                raise RequestError(413, "too_large", str(exc)) from None
        else:
            result = await self._run_codec(self._encoder(namespace).encode_sync, payloads)
            self._note_ciphertexts(record, result)
        traffic.bytes_out = sum(len(p.data) for p in result)
        response: Response
        if traffic.bytes_out <= _RENDER_WHOLE_BYTES:
            rendered = await anyio.to_thread.run_sync(render_payloads, result)
            response = Response(rendered, media_type="application/json")
        else:
            # Large: written a piece at a time, never held whole beside the payloads.
            response = StreamingResponse(iterate_in_threadpool(render_chunks(result)), media_type="application/json")
        record.outcome, record.status = "ok", 200
        self.metrics.payloads.labels(operation, self.metrics.namespace_label(namespace)).inc(len(result))
        return response

    def _refusal(self, exc: Exception, operation: Operation, record: AuditRecord) -> Response:
        """The answer to a request that failed, recorded in ``record``; never the request's content."""
        if isinstance(exc, AuthError):
            self.metrics.auth_failures.labels(exc.reason).inc()
            record.subject = record.subject or exc.subject
            record.auth_method = record.auth_method or exc.method
            outcome = {401: "unauthenticated", 403: "forbidden"}.get(exc.status, "unavailable")
            record.outcome, record.status, record.reason, record.error = outcome, exc.status, exc.reason, exc.message
            headers = {"WWW-Authenticate": 'Bearer realm="codec"'} if exc.status == 401 else None
            return error_response(exc.status, exc.message, headers)
        if isinstance(exc, RequestError):
            record.outcome, record.status, record.error = exc.outcome, exc.status, exc.message
            return error_response(exc.status, exc.message)
        if isinstance(exc, IndexedDecodeError):
            # The codec's messages name key ids only (payload_codec guarantees it).
            record.outcome, record.status, record.error = "codec_error", 422, str(exc)
            if exc.key_id:
                record.key_ids = sorted(set(record.key_ids) | {exc.key_id})
            return error_response(422, str(exc))
        if isinstance(exc, EncodeError | CodecError):
            record.outcome, record.status, record.error = "codec_error", 422, str(exc)
            return error_response(422, str(exc))
        if isinstance(exc, ClientDisconnect):
            record.outcome, record.status, record.error = "client_disconnected", 499, "client went away"
            return Response(status_code=499)
        # Type only: a traceback's text could quote request content.
        log.error("unexpected error while serving %s (%s)", operation, type(exc).__name__)
        record.outcome, record.status, record.error = "error", 500, "internal error"
        return error_response(500, "internal error; see the codec server log")

    def _account(
        self, operation: Operation, namespace: str | None, record: AuditRecord, traffic: _Traffic, elapsed: float
    ) -> None:
        record.latency_ms = elapsed * 1000
        ns_label = self.metrics.namespace_label(namespace)
        self.metrics.requests.labels(operation, ns_label, record.outcome).inc()
        self.metrics.latency.labels(operation).observe(elapsed)
        if traffic.bytes_in:
            self.metrics.bytes.labels(operation, ns_label, "in").inc(traffic.bytes_in)
        if traffic.bytes_out:
            self.metrics.bytes.labels(operation, ns_label, "out").inc(traffic.bytes_out)
        self.audit.write(record)

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

    def _check_host(self, request: Request) -> None:
        # Without tokens, the only thing between a web page and plaintext is the browser's
        # same-origin rule, which DNS rebinding defeats (the attacker's name resolves to
        # 127.0.0.1, so the page is same-origin with this server). The page's requests still
        # carry the attacker's name as Host, so serve configured names only.
        if not (self.settings.auth_disabled or self.settings.anonymous_role):
            return
        name = host_name(request.headers.get("host"))
        if name not in self.settings.allowed_hosts:
            raise RequestError(
                421,
                "misdirected",
                f"this codec server answers to {', '.join(sorted(self.settings.allowed_hosts))} only while it "
                "serves callers without a token; add the name to CODEC_SERVER_ALLOWED_HOSTS if it is yours",
            )

    @staticmethod
    def _check_content_type(request: Request) -> None:
        # JSON only: a cross-site form or a no-CORS fetch can send text/plain or form bodies
        # without a preflight; application/json always needs one (and so the CORS grant).
        media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            raise RequestError(
                415,
                "unsupported_media_type",
                "send the body as Content-Type: application/json (protobuf JSON of Payloads)",
            )

    @staticmethod
    def _namespace(request: Request) -> str:
        from_path = request.path_params.get("namespace")
        from_header = request.headers.get(NAMESPACE_HEADER)
        for value, where in ((from_path, "the path"), (from_header, "the X-Namespace header")):
            if value is not None and not valid_namespace(value):
                raise RequestError(400, "bad_request", f"the namespace in {where} is not a valid namespace name")
        if from_path and from_header and from_path != from_header:
            raise RequestError(400, "bad_request", "the namespace in the path and the X-Namespace header disagree")
        namespace = from_path or from_header
        if not namespace:
            raise RequestError(
                400,
                "bad_request",
                "no namespace: send the X-Namespace header or use /{namespace}/" + request.url.path.rsplit("/", 1)[-1],
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


class IndexedDecodeError(DecodeError):
    """A codec error with the position of the payload that caused it."""


def _indexed(exc: DecodeError, index: int) -> IndexedDecodeError:
    indexed = IndexedDecodeError(f"payloads[{index}]: {exc}")
    indexed.key_id = exc.key_id
    return indexed


def create_app(
    settings: Settings,
    keyring: KeyRing,
    auth: Authenticator,
    audit: AuditLog,
    metrics: Metrics | None = None,
) -> Starlette:
    metrics = metrics or Metrics(settings.metric_namespaces | {ns for ns in keyring.active if ns != "*"})
    service = CodecService(keyring, auth, metrics, audit, settings)
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
    middleware = [Middleware(CorsMiddleware, origins=frozenset(settings.cors_origins))]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.service = service
    return app
