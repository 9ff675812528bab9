"""OpenAI-shaped API errors.

Every failure the server returns uses the body ``{"error": {"message", "type", "param", "code"}}``
because the ``openai`` client maps status codes to exception classes and reads ``code``/``param``
from exactly that shape; clients written against the real API must see the same thing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse


# Not frozen: the interpreter and contextlib assign __traceback__ on exceptions they re-raise.
@dataclass(eq=False)
class APIFailure(Exception):
    """A request that ends in an error response; raised anywhere, rendered in one place."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    @property
    def outcome(self) -> str:
        """The ledger's name for this failure: the error code, else the error type."""
        return self.code or self.type

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=dict(self.headers))


def invalid_request(message: str, *, param: str | None = None, code: str = "invalid_request") -> APIFailure:
    return APIFailure(400, message, code=code, param=param)


def model_not_found(model: str) -> APIFailure:
    return APIFailure(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def invalid_api_key() -> APIFailure:
    # The real API echoes a masked key; we echo nothing so the key can never leak into logs.
    return APIFailure(
        401,
        "Incorrect API key provided. Send the key configured in MODEL_SERVER_API_KEY as 'Authorization: Bearer <key>'.",
        code="invalid_api_key",
    )


def context_length_exceeded(model: str, limit: int, prompt_tokens: int) -> APIFailure:
    return APIFailure(
        400,
        (
            f"This model's maximum context length is {limit} tokens. "
            f"However, your messages resulted in {prompt_tokens} tokens. "
            "Please reduce the length of the messages."
        ),
        code="context_length_exceeded",
        param="messages",
    )


def not_found(path: str) -> APIFailure:
    return APIFailure(404, f"Unknown request URL: {path}.", code="unknown_url")


def method_not_allowed(method: str, path: str) -> APIFailure:
    return APIFailure(405, f"Method {method} is not allowed on {path}.", code="method_not_allowed")
