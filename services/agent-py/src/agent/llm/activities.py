"""The model-call activity: one Chat Completions request through the official ``openai`` client.

Its result is recorded in workflow history, so a crash after it returns never repeats the
(paid) call; before it returns, the answer is also kept in :mod:`agent.paid_calls`, so a retry
after a lost completion (a dead worker, an unreachable server) returns it without paying again.
The call heartbeats while it waits for the provider. Provider errors are classified in
:mod:`agent.llm.errors`. Messages whose text
travels by reference (``content_ref``) are read from the blob store here, so the history of
the call holds the reference only.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import openai
from temporalio import activity
from temporalio.exceptions import ApplicationError

from agent.blobs.store import BlobCorrupted, BlobNotFound, BlobStore
from agent.blobs.types import BlobRef
from agent.llm.errors import classify
from agent.llm.settings import ModelSettings
from agent.llm.types import (
    CHAT_COMPLETION_ACTIVITY,
    MODEL_HEALTH_ACTIVITY,
    ChatMessage,
    ChatRequest,
    ChatResult,
    ModelErrorType,
    ToolCall,
    Usage,
)
from agent.metrics import ModelCall, model_prices, record_model_call, record_paid_answer_reused
from agent.paid_calls import PaidAnswers, PatientCompletion, call_key, fingerprint, kept_alive
from workerkit.tracing import model_call_span, record_model_response

log = logging.getLogger(__name__)

# Leaves the activity time to report a timeout as a classified, retryable error before the
# server's start-to-close timer fires.
_TIMEOUT_MARGIN_S = 0.5
_MIN_CALL_TIMEOUT_S = 0.5


class ModelActivities:
    """Holds one client per worker process; the connection pool is shared by all calls."""

    def __init__(
        self,
        settings: ModelSettings,
        blobs: BlobStore,
        answers: PaidAnswers | None = None,
        completion: PatientCompletion | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self.answers = answers
        self.completion = completion
        self.prices = model_prices()
        self.client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout_s,
            max_retries=0,  # Temporal owns retries, so each attempt is visible in history
        )

    async def _blob_text(self, ref: BlobRef) -> str:
        try:
            return (await self.blobs.get(ref)).decode()
        except (BlobNotFound, BlobCorrupted) as err:
            # Retrying cannot bring the text back; the workflow tells the person.
            raise ApplicationError(str(err), type=ModelErrorType.BLOB_MISSING, non_retryable=True) from None

    async def _wire_message(self, message: ChatMessage) -> dict[str, Any]:
        wire: dict[str, Any] = {"role": message.role}
        content = message.content
        if message.content_ref is not None:
            content = await self._blob_text(message.content_ref)
        if content is not None:
            wire["content"] = content
        for key in ("name", "tool_call_id", "tool_calls"):
            if (value := getattr(message, key)) is not None:
                wire[key] = value
        if message.tool_calls_ref is not None:
            wire["tool_calls"] = json.loads(await self._blob_text(message.tool_calls_ref))
        return wire

    def _call_timeout(self) -> float:
        timeout = self.settings.timeout_s
        start_to_close = activity.info().start_to_close_timeout
        if start_to_close:
            timeout = min(timeout, max(start_to_close.total_seconds() - _TIMEOUT_MARGIN_S, _MIN_CALL_TIMEOUT_S))
        return timeout

    @activity.defn(name=MODEL_HEALTH_ACTIVITY)
    async def model_health(self) -> str:
        """Whether the provider answers at all (its model list: no tokens, nothing paid); the
        agent's cool-down ends as soon as this succeeds."""
        try:
            await self.client.models.list(timeout=min(self.settings.timeout_s, 10.0))
        except openai.OpenAIError as err:
            raise classify(err, timedelta(seconds=self.settings.max_retry_after_s)) from None
        return "ok"

    @activity.defn(name=CHAT_COMPLETION_ACTIVITY)
    async def chat_completion(self, request: ChatRequest) -> ChatResult:
        info = activity.info()
        key, asked = call_key(), fingerprint(request)
        if self.answers is not None and (kept := await self.answers.get(key, asked, ChatResult)) is not None:
            # An earlier attempt was answered and paid, but its completion never reached history.
            record_paid_answer_reused("chat")
            log.info("model call answered from the kept answer of attempt %d key=%s", kept.attempt, key)
            result = kept
        else:
            async with kept_alive("waiting for the model provider"):
                result = await self._complete(request, info)
            if self.answers is not None:
                await self.answers.put(key, asked, result)
        if self.completion is not None:
            self.completion.report(result)  # retried through an outage; raises CompleteAsyncError
        return result

    async def _complete(self, request: ChatRequest, info: activity.Info) -> ChatResult:
        model = request.model or self.settings.model
        # The key lets the provider (and the simulator's ledger) recognise a retried call.
        request_key = f"{info.workflow_id}/{info.activity_id}/{info.attempt}"
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": [await self._wire_message(m) for m in request.messages],
            "extra_headers": {"X-Request-Key": request_key},
            "timeout": self._call_timeout(),
        }
        if request.tools:
            kwargs["tools"] = request.tools
            if request.tool_choice:
                kwargs["tool_choice"] = request.tool_choice
        if request.max_tokens:
            kwargs["max_tokens"] = request.max_tokens
        started = time.monotonic()
        with model_call_span("chat", model, str(self.client.base_url)) as span:
            try:
                response = await self.client.chat.completions.create(**kwargs)
            except openai.OpenAIError as err:
                failure = classify(err, timedelta(seconds=self.settings.max_retry_after_s))
                record_model_call(ModelCall(model, _elapsed(started), failure.type), self.prices)
                log.warning(
                    "model call failed model=%s key=%s type=%s retryable=%s",
                    model,
                    request_key,
                    failure.type,
                    not failure.non_retryable,
                )
                raise failure from None
            usage = response.usage
            record_model_response(
                span,
                response.model,
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
                [c.finish_reason for c in response.choices if c.finish_reason],
            )
        if not response.choices:
            record_model_call(ModelCall(model, _elapsed(started), ModelErrorType.SERVER_ERROR), self.prices)
            raise ApplicationError("the model provider answered without a choice", type=ModelErrorType.SERVER_ERROR)
        record_model_call(
            ModelCall(
                model,
                _elapsed(started),
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
            ),
            self.prices,
        )
        choice = response.choices[0]
        result = ChatResult(
            model=response.model,
            content=choice.message.content,
            tool_calls=[
                ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
                for c in (choice.message.tool_calls or [])
                if c.type == "function"
            ],
            finish_reason=choice.finish_reason,
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                total_tokens=usage.total_tokens if usage else 0,
            ),
            attempt=info.attempt,
        )
        log.info(
            "model call done model=%s key=%s finish=%s prompt_tokens=%d completion_tokens=%d",
            result.model,
            request_key,
            result.finish_reason,
            result.usage.prompt_tokens,
            result.usage.completion_tokens,
        )
        return result


def _elapsed(started: float) -> timedelta:
    return timedelta(seconds=time.monotonic() - started)
