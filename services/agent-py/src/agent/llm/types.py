"""Workflow-safe data types of a model call (no I/O imports, usable inside the sandbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.blobs.types import BlobRef

CHAT_COMPLETION_ACTIVITY = "chat_completion"
MODEL_HEALTH_ACTIVITY = "model_health"
"""The provider's model list: a probe that costs nothing, used while a cool-down waits for it."""


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of an assistant message's ``tool_calls``, in the Chat Completions shape."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


@dataclass
class ChatMessage:
    role: str
    content: str | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    content_ref: BlobRef | None = None
    """Set instead of ``content`` for a large text: the model activity reads it from the blob
    store, so the history of every later model call holds the reference, not the text."""
    tool_calls_ref: BlobRef | None = None
    """Set instead of ``tool_calls`` when the model's arguments are large (a model often
    repeats the customer's whole message as a search query): the JSON list, in the blob store."""


@dataclass
class ChatRequest:
    messages: list[ChatMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    """None: the worker's configured model (``AGENT_MODEL``), so prompts can move without versioning."""
    max_tokens: int | None = None
    tool_choice: str | None = None
    """``auto``, ``none`` or ``required``; None leaves it to the provider (``auto`` with tools)."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass
class ChatResult:
    model: str
    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: str
    usage: Usage
    attempt: int = 1
    """The activity attempt that got this answer: above 1, earlier attempts were refused
    (rate limit, 5xx) or timed out, which the agent treats as a sign to slow down."""


class ModelErrorType:
    """``ApplicationError.type`` of a failed model call, as classified in the activity.

    The workflow reads these (in ``ActivityError.cause``) to decide what to tell the person.
    """

    BAD_REQUEST = "ModelBadRequest"
    CONTEXT_LENGTH = "ModelContextLengthExceeded"
    AUTH = "ModelAuthError"
    NOT_FOUND = "ModelNotFound"
    QUOTA = "ModelQuotaExceeded"
    RATE_LIMITED = "ModelRateLimited"
    SERVER_ERROR = "ModelServerError"
    CONNECTION = "ModelConnectionError"
    TIMEOUT = "ModelTimeout"
    BLOB_MISSING = "ModelInputMissing"


NON_RETRYABLE_MODEL_ERRORS = [
    ModelErrorType.BAD_REQUEST,
    ModelErrorType.CONTEXT_LENGTH,
    ModelErrorType.AUTH,
    ModelErrorType.NOT_FOUND,
    ModelErrorType.QUOTA,
    ModelErrorType.BLOB_MISSING,
]
"""Listed in the activity's retry policy as well as raised non-retryable: either alone would
do, both keep a provider change on one side from turning a hopeless call into six paid ones."""
