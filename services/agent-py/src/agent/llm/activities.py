"""The model-call activity: one Chat Completions request through the official ``openai`` client.

Its result is recorded in workflow history, so a crash after it returns never repeats the
(paid) call. Provider errors are classified here, in the one place that sees them:

- bad request (incl. context length), auth, permission, not found: non-retryable;
- 429: retryable, and the provider's ``Retry-After`` sets the next attempt's delay;
- 5xx, connection errors, timeouts: retryable with the activity's backoff.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import openai
from temporalio import activity
from temporalio.exceptions import ApplicationError

from agent.llm.settings import ModelSettings
from agent.llm.types import ChatRequest, ChatResult, ToolCall, Usage

log = logging.getLogger(__name__)

NON_RETRYABLE_ERRORS = (
    openai.BadRequestError,
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
    openai.UnprocessableEntityError,
)


def _retry_after(err: openai.APIStatusError) -> timedelta | None:
    raw = err.response.headers.get("retry-after")
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None  # an HTTP-date Retry-After: fall back to the activity's own backoff
    return timedelta(seconds=max(seconds, 0.0)) if seconds is not None else None


class ModelActivities:
    """Holds one client per worker process; the connection pool is shared by all calls."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout_s,
            max_retries=0,  # Temporal owns retries, so each attempt is visible in history
        )

    @activity.defn(name="chat_completion")
    async def chat_completion(self, request: ChatRequest) -> ChatResult:
        info = activity.info()
        model = request.model or self.settings.model
        # The key lets the provider (and the simulator's ledger) recognise a retried call.
        request_key = f"{info.workflow_id}/{info.activity_id}/{info.attempt}"
        kwargs: dict = {
            "model": model,
            "messages": [
                {k: v for k, v in vars(m).items() if v is not None} for m in request.messages
            ],
            "extra_headers": {"X-Request-Key": request_key},
        }
        if request.tools:
            kwargs["tools"] = request.tools
        if request.max_tokens:
            kwargs["max_tokens"] = request.max_tokens
        try:
            response = await self.client.chat.completions.create(**kwargs)
        except NON_RETRYABLE_ERRORS as err:
            raise ApplicationError(
                f"model provider rejected the request ({err.status_code}): {err.message}",
                type=type(err).__name__,
                non_retryable=True,
            ) from None
        except openai.RateLimitError as err:
            raise ApplicationError(
                f"model provider rate-limited the request: {err.message}",
                type="RateLimitError",
                next_retry_delay=_retry_after(err),
            ) from None
        choice = response.choices[0]
        usage = response.usage
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
        )
        log.info(
            "model call done model=%s finish=%s prompt_tokens=%d completion_tokens=%d",
            result.model,
            result.finish_reason,
            result.usage.prompt_tokens,
            result.usage.completion_tokens,
        )
        return result
