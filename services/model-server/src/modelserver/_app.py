"""The ASGI application: routes, the chat-completions and embeddings pipelines, ledger and admin endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._accesslog import AccessLog
from ._auth import check_bearer
from ._canonical import request_digest, sha256_hex
from ._catalogue import EMBEDDING_MODEL, lookup, lookup_kind, model_list
from ._completion import build_completion, sse_events
from ._embeddings import build_embedding_response, parse_embedding_request
from ._errors import APIFailure, context_length_exceeded, invalid_request, method_not_allowed, not_found
from ._faults import FaultConfigError, FaultQueue, FaultRule, failure_for, parse_rules
from ._hostile import hostile_decision
from ._ledger import Ledger, LedgerEntry, utc_timestamp
from ._metrics import Metrics
from ._policy import decide
from ._request import parse_chat_request
from ._settings import Settings
from ._tokens import prompt_tokens
from .embedding import ModelFilesError, get_encoder, is_loaded

log = logging.getLogger("modelserver")

REQUEST_KEY_HEADER = "x-request-key"


@dataclass
class ServerState:
    ledger: Ledger
    faults: FaultQueue
    api_key: str | None
    metrics: Metrics
    clock: Callable[[], float] = time.time


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    state = ServerState(
        ledger=Ledger(settings.ledger_path),
        faults=FaultQueue(list(settings.faults)),
        api_key=settings.api_key,
        metrics=Metrics(),
    )
    routes = [
        Route("/v1/chat/completions", _chat_completions, methods=["POST"]),
        Route("/v1/embeddings", _embeddings, methods=["POST"]),
        Route("/v1/models", _models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", _model, methods=["GET"]),
        Route("/ledger", _ledger, methods=["GET", "DELETE"]),
        Route("/admin/faults", _admin_faults, methods=["GET", "POST", "DELETE"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AccessLog, metrics=state.metrics)],
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected},
    )
    app.state.sim = state
    return app


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.sim
    return state


@dataclass
class _Call:
    """One API request on its way to the ledger: what is known of it so far. The endpoint's
    handler fills in what it learns (model, usage, fault, ...); the ledger records the rest."""

    endpoint: str
    request_key: str | None
    digest: str
    model: str | None
    fault: str | None = None
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    tool_calls: list[str] = field(default_factory=list)
    stream: bool = False
    inputs: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers for a successful answer."""


_Handler = Callable[[ServerState, _Call, Any], Awaitable[Response]]


async def _serve_call(request: Request, endpoint: str, handle: _Handler) -> Response:
    """The lifecycle every model endpoint shares: a ledger sequence number first (so concurrent
    calls are numbered in arrival order), auth, the JSON body, the handler, then one ledger entry
    whatever happened, failures and simulator bugs included."""
    state = _state(request)
    started = time.perf_counter()
    seq = state.ledger.reserve()
    body, digest = _decode(await request.body())
    model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    call = _Call(endpoint=endpoint, request_key=request.headers.get(REQUEST_KEY_HEADER), digest=digest, model=model)
    # Recorded as asked, even when the request fails before it is parsed.
    call.stream = isinstance(body, dict) and body.get("stream") is True
    try:
        denied = check_bearer(request.headers, state.api_key)
        if denied is not None:
            raise denied
        if body is _UNPARSEABLE:
            raise invalid_request(
                "We could not parse the JSON body of your request. The body must be a JSON object "
                "(Content-Type: application/json).",
                code="invalid_json",
            )
        response = await handle(state, call, body)
        status, outcome = 200, "ok"
        response.headers.update(call.headers)
    except APIFailure as failure:
        status, outcome = failure.status, failure.outcome
        response = failure.to_response()
    except Exception as exc:  # a simulator bug must still be answered and recorded
        # The traceback without the exception's message: the message could quote the conversation.
        trace = "".join(traceback.format_tb(exc.__traceback__))
        log.error("%s request %d failed inside the simulator: %s\n%s", endpoint, seq, type(exc).__name__, trace)
        internal = _internal_error()
        status, outcome = internal.status, internal.outcome
        response = internal.to_response()

    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    response.headers["x-request-id"] = f"req_sim_{seq}"
    response.headers["openai-processing-ms"] = str(round(latency_ms))
    state.ledger.record(
        LedgerEntry(
            seq=seq,
            timestamp=utc_timestamp(state.clock()),
            model=call.model,
            request_digest=call.digest,
            request_key=call.request_key,
            outcome=outcome,
            status=status,
            usage=call.usage,
            latency_ms=latency_ms,
            fault=call.fault,
            finish_reason=call.finish_reason,
            tool_calls=call.tool_calls,
            stream=call.stream,
            endpoint=endpoint,
            inputs=call.inputs,
        )
    )
    return response


async def _inject_fault(
    state: ServerState, call: _Call, text: str, *, context_window: int, prompt_tokens: int, param: str
) -> FaultRule | None:
    """Apply the first queued fault that matches this call: raise its error, sleep (``slow``), or
    return a ``hostile`` rule for the caller to act on."""
    rule = state.faults.take(text, call.request_key, call.endpoint)
    if rule is None:
        return None
    call.fault = rule.kind
    state.metrics.fault(rule.kind, call.endpoint)
    failure = failure_for(rule, model=call.model or "", context_window=context_window, prompt_tokens=prompt_tokens)
    if failure is not None:
        # The failure names the request field at fault the way each endpoint calls it.
        raise replace(failure, param=param) if failure.param == "messages" else failure
    if rule.kind == "hostile":
        return rule
    await asyncio.sleep(rule.delay_s)
    return None


async def _chat_completions(request: Request) -> Response:
    return await _serve_call(request, "chat.completions", _answer_chat)


async def _answer_chat(state: ServerState, call: _Call, body: Any) -> Response:
    chat = parse_chat_request(body)
    call.model = chat.model
    sim_model = lookup_kind(chat.model, "chat")
    prompt = prompt_tokens(chat)
    hostile = await _inject_fault(
        state,
        call,
        chat.latest_user_text(),
        context_window=sim_model.context_window,
        prompt_tokens=prompt,
        param="messages",
    )
    if prompt > sim_model.context_window:
        raise context_length_exceeded(chat.model, sim_model.context_window, prompt)

    decision = (hostile_decision(hostile, chat) if hostile else None) or decide(chat)
    completion = build_completion(chat, decision, digest=call.digest, created=int(state.clock()))
    call.usage = completion["usage"]
    call.finish_reason = decision.finish_reason
    call.tool_calls = [c.name for c in decision.calls]
    if chat.stream:
        return StreamingResponse(
            sse_events(completion, include_usage=chat.include_usage), media_type="text/event-stream"
        )
    return JSONResponse(completion)


async def _embeddings(request: Request) -> Response:
    """Real embeddings from all-MiniLM-L6-v2; same ledger, faults, auth and error shapes as chat."""
    return await _serve_call(request, "embeddings", _answer_embeddings)


async def _answer_embeddings(state: ServerState, call: _Call, body: Any) -> Response:
    embed = parse_embedding_request(body)
    call.model = embed.model
    call.inputs = len(embed.inputs)
    served = lookup_kind(embed.model, "embedding")
    if embed.dimensions is not None and embed.dimensions != served.dimension:
        raise invalid_request(
            f"This model does not support specifying dimensions: `{served.id}` always returns "
            f"{served.dimension}-dimensional vectors. Omit 'dimensions'.",
            param="dimensions",
        )
    await _inject_fault(
        state, call, embed.fault_text(), context_window=served.context_window, prompt_tokens=0, param="input"
    )
    try:
        # Loading (first request only) and the forward pass are CPU work: keep them off the
        # event loop so /healthz, the ledger and other requests stay responsive.
        encoder = await asyncio.to_thread(get_encoder)
        result = await asyncio.to_thread(encoder.encode, list(embed.inputs))
    except ModelFilesError as exc:
        log.error("embedding model unavailable: %s", exc)
        raise APIFailure(
            500,
            f"The embedding model could not be loaded: {exc}",
            type="server_error",
            code="model_unavailable",
        ) from None
    call.usage = {"prompt_tokens": result.total_tokens, "total_tokens": result.total_tokens}
    # Inputs longer than the model's 256 tokens were cut (as sentence-transformers does).
    call.headers["x-truncated-inputs"] = str(result.truncated)
    return JSONResponse(
        build_embedding_response(embed, result.vectors, model=served.id, prompt_tokens=result.total_tokens)
    )


class _Unparseable:
    pass


_UNPARSEABLE: Any = _Unparseable()


def _decode(raw: bytes) -> tuple[Any, str]:
    """The JSON body and its digest; an unparseable body is digested as raw bytes."""
    try:
        body = json.loads(raw)
    except ValueError:
        return _UNPARSEABLE, sha256_hex(raw)
    return body, request_digest(body)


async def _models(request: Request) -> Response:
    denied = check_bearer(request.headers, _state(request).api_key)
    if denied is not None:
        return denied.to_response()
    return JSONResponse(model_list())


async def _model(request: Request) -> Response:
    denied = check_bearer(request.headers, _state(request).api_key)
    if denied is not None:
        return denied.to_response()
    try:
        return JSONResponse(lookup(request.path_params["model_id"]).as_openai())
    except APIFailure as failure:
        return failure.to_response()


async def _ledger(request: Request) -> Response:
    ledger = _state(request).ledger
    if request.method == "DELETE":
        ledger.clear()
    calls = ledger.entries()
    return JSONResponse({"calls": calls, "count": len(calls)})


async def _admin_faults(request: Request) -> Response:
    faults = _state(request).faults
    if request.method == "POST":
        try:
            faults.replace(parse_rules(json.loads(await request.body())))
        except ValueError as exc:
            # FaultConfigError is a ValueError, and so is a JSON decoding error.
            message = str(exc) if isinstance(exc, FaultConfigError) else f"The body is not valid JSON: {exc}."
            return invalid_request(message, param="faults", code="invalid_fault_rule").to_response()
    elif request.method == "DELETE":
        faults.clear()
    rules = faults.snapshot()
    return JSONResponse({"faults": rules, "count": len(rules)})


async def _metrics(request: Request) -> Response:
    metrics = _state(request).metrics
    return Response(metrics.render(), media_type=metrics.content_type)


async def _healthz(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(
        {
            "status": "ok",
            "simulator": True,  # the chat models; embeddings are the real model (below)
            "models": [m["id"] for m in model_list()["data"]],
            "embedding_model": {"id": EMBEDDING_MODEL, "real_model": True, "loaded": is_loaded()},
            "ledger_count": len(state.ledger.entries()),
            "faults_queued": len(state.faults),
        }
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return not_found(request.url.path).to_response()
    if exc.status_code == 405:
        return method_not_allowed(request.method, request.url.path).to_response()
    return APIFailure(exc.status_code, str(exc.detail), code="http_error").to_response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return _internal_error().to_response()


def _internal_error() -> APIFailure:
    return APIFailure(
        500, "The model server hit an internal error; see its log.", type="server_error", code="internal_error"
    )
