"""Workflow-safe types and names of the embedding activity (no I/O imports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.blobs.types import BlobRef
from agent.llm.types import NON_RETRYABLE_MODEL_ERRORS
from agent.queues import EMBED_TASK_QUEUE  # noqa: F401  (re-exported for callers of this module)

EMBED_TEXTS_ACTIVITY = "embed_texts"

PURPOSES = ("document", "query")

MAX_TEXTS_PER_CALL = 128
"""Upper bound on texts per activity call. The vectors come back inline in the activity result,
and 128 x 384 floats is about 0.6 MB of JSON: well under Temporal's 2 MB payload limit, with
room for larger models. Send more texts as several calls (each one is then its own entry in
history, which also keeps a retry from re-paying for finished calls)."""


class EmbeddingErrorType:
    """``ApplicationError.type`` values the embedding activity adds to the model-call ones
    (:class:`agent.llm.types.ModelErrorType`, used for provider failures)."""

    INVALID_INPUT = "EmbeddingInvalidInput"
    INPUT_MISSING = "EmbeddingInputMissing"
    DIMENSION_MISMATCH = "EmbeddingDimensionMismatch"
    MALFORMED_RESPONSE = "EmbeddingMalformedResponse"


NON_RETRYABLE_EMBEDDING_ERRORS = [
    *NON_RETRYABLE_MODEL_ERRORS,
    EmbeddingErrorType.INVALID_INPUT,
    EmbeddingErrorType.INPUT_MISSING,
    EmbeddingErrorType.DIMENSION_MISMATCH,
]
"""For the activity's retry policy (``non_retryable_error_types``), like the chat side's list."""


@dataclass
class EmbedRequest:
    texts: list[str] = field(default_factory=list)
    purpose: str = "document"
    """``document`` (at ingest) or ``query`` (at search time). Models that need an instruction
    prefix get it from ``EMBEDDING_DOCUMENT_PREFIX`` / ``EMBEDDING_QUERY_PREFIX``; MiniLM needs none."""
    texts_ref: BlobRef | None = None
    """Instead of ``texts``: a blob holding a JSON array of strings, so large inputs stay out of
    history. Exactly one of ``texts`` and ``texts_ref`` is given."""


@dataclass
class EmbedResult:
    vectors: list[list[float]]
    """One vector per input text, in input order, as the provider returned them (all-MiniLM-L6-v2's
    are L2-normalised). Values are float32 precision, written with 9 significant digits."""
    model: str
    dimension: int
    prompt_tokens: int
