"""Provider errors -> Temporal errors: the one place that decides what a retry can fix.

- Will fail the same way again (bad request, context length, auth, unknown model, no quota):
  non-retryable ``ApplicationError``, so no attempt is wasted and the agent can tell the person.
- May succeed later (429, 5xx, 408/409, connection errors, timeouts): retryable, with the
  activity's backoff; a provider's ``Retry-After`` (or ``retry-after-ms``) sets the next delay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import openai
from temporalio.exceptions import ApplicationError

from agent.llm.types import ModelErrorType

_RETRYABLE_STATUS = {408, 409}


def retry_after(err: openai.APIStatusError, cap: timedelta, now: datetime | None = None) -> timedelta | None:
    """The delay the provider asked for, capped: a provider saying "come back in an hour"
    should not park an activity for an hour; the cap hands that decision to the workflow."""
    headers = err.response.headers
    delay: float | None = None
    if (raw_ms := headers.get("retry-after-ms")) is not None:
        try:
            delay = float(raw_ms) / 1000
        except ValueError:
            delay = None
    if delay is None and (raw := headers.get("retry-after")) is not None:
        try:
            delay = float(raw)
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                return None
            delay = (when - (now or datetime.now(UTC))).total_seconds()
    if delay is None:
        return None
    return min(timedelta(seconds=max(delay, 0.0)), cap)


def _is_context_length(err: openai.APIStatusError) -> bool:
    return err.code == "context_length_exceeded" or "context length" in err.message.lower()


def classify(err: openai.OpenAIError, retry_after_cap: timedelta) -> ApplicationError:
    """The ``ApplicationError`` to raise for ``err``; messages never include the API key."""
    if isinstance(err, openai.APITimeoutError):
        return ApplicationError("the model provider did not answer in time", type=ModelErrorType.TIMEOUT)
    if isinstance(err, openai.APIConnectionError):
        return ApplicationError(f"cannot reach the model provider: {err.message}", type=ModelErrorType.CONNECTION)
    if not isinstance(err, openai.APIStatusError):
        # A response that did not parse (APIResponseValidationError, say): the provider's fault.
        return ApplicationError(f"the model provider sent an unusable answer: {err}", type=ModelErrorType.SERVER_ERROR)

    status, detail = err.status_code, f"({err.status_code}, request {err.request_id or 'unknown'}): {err.message}"
    if isinstance(err, openai.BadRequestError) and _is_context_length(err):
        return ApplicationError(
            f"the conversation is longer than the model's context window {detail}",
            type=ModelErrorType.CONTEXT_LENGTH,
            non_retryable=True,
        )
    if isinstance(err, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return ApplicationError(
            f"the model provider rejected the request {detail}", type=ModelErrorType.BAD_REQUEST, non_retryable=True
        )
    if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return ApplicationError(
            f"the model provider refused the credentials {detail}", type=ModelErrorType.AUTH, non_retryable=True
        )
    if isinstance(err, openai.NotFoundError):
        return ApplicationError(
            f"the model provider does not know this model or endpoint {detail}",
            type=ModelErrorType.NOT_FOUND,
            non_retryable=True,
        )
    if isinstance(err, openai.RateLimitError):
        if err.code == "insufficient_quota":
            # A 429 that no wait fixes: the account is out of credit.
            return ApplicationError(
                f"the model provider account has no quota left {detail}", type=ModelErrorType.QUOTA, non_retryable=True
            )
        return ApplicationError(
            f"the model provider rate-limited the request {detail}",
            type=ModelErrorType.RATE_LIMITED,
            next_retry_delay=retry_after(err, retry_after_cap),
        )
    if status >= 500 or status in _RETRYABLE_STATUS:
        return ApplicationError(
            f"the model provider failed {detail}",
            type=ModelErrorType.SERVER_ERROR,
            next_retry_delay=retry_after(err, retry_after_cap),
        )
    return ApplicationError(
        f"the model provider rejected the request {detail}", type=ModelErrorType.BAD_REQUEST, non_retryable=True
    )
