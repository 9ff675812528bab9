"""The embedding provider interface and its OpenAI-compatible implementation.

A provider turns texts into vectors. It raises :class:`temporalio.exceptions.ApplicationError`
already classified (retryable or not), so the activity, and any future provider (a local GPU
model, another API), share one error contract. The OpenAI implementation classifies with
:func:`agent.llm.errors.classify`, the same rules as chat calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import openai
from temporalio.exceptions import ApplicationError

from agent.embeddings.settings import EmbeddingSettings
from agent.embeddings.types import EmbeddingErrorType
from agent.llm.errors import classify
from workerkit.tracing import model_call_span, record_model_response


@dataclass(frozen=True)
class EmbeddingBatch:
    vectors: list[list[float]]
    """One vector per input, in input order."""
    prompt_tokens: int
    model: str
    """The model that answered, as the provider names it."""


class EmbeddingProvider(Protocol):
    model: str
    dimension: int | None
    """The vector size this provider is expected to return; None until known."""

    async def embed(self, texts: Sequence[str], *, request_key: str | None = None) -> EmbeddingBatch:
        """Vectors for ``texts`` (one provider request). ``request_key`` identifies the call for
        the provider's logs (the model server's ledger); raises a classified ``ApplicationError``."""
        ...


class OpenAIEmbeddingProvider:
    """``client.embeddings.create`` against any OpenAI-compatible endpoint."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self.model = settings.model
        self.dimension = settings.dimension
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout_s,
            max_retries=0,  # Temporal owns retries, so each attempt is visible in history
        )

    async def embed(self, texts: Sequence[str], *, request_key: str | None = None) -> EmbeddingBatch:
        with model_call_span("embeddings", self.model, str(self._client.base_url)) as span:
            try:
                # The client asks for base64 (float32 bytes) and decodes it: a third of the JSON size.
                response = await self._client.embeddings.create(
                    model=self.model,
                    input=list(texts),
                    extra_headers={"X-Request-Key": request_key} if request_key else None,
                )
            except openai.OpenAIError as err:
                raise classify(err, timedelta(seconds=self.settings.max_retry_after_s)) from None
            record_model_response(
                span, response.model or self.model, response.usage.prompt_tokens if response.usage else 0
            )
        data = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in data] != list(range(len(texts))):
            raise ApplicationError(
                f"the embedding provider returned {len(data)} vectors for {len(texts)} inputs",
                type=EmbeddingErrorType.MALFORMED_RESPONSE,
            )
        # float32 values; 9 significant digits round-trip them exactly and keep history small.
        vectors = [[float(f"{x:.9g}") for x in item.embedding] for item in data]
        usage = response.usage
        return EmbeddingBatch(
            vectors=vectors, prompt_tokens=usage.prompt_tokens if usage else 0, model=response.model or self.model
        )

    async def aclose(self) -> None:
        await self._client.close()
