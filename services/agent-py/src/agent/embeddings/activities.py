"""``embed_texts``: the embedding activity on the ``embed`` task queue.

Used for documents at ingest and for queries at search time. It splits the texts into provider
requests of ``EMBEDDING_BATCH_SIZE``, heartbeats after each one (so a stuck worker is noticed
after the heartbeat timeout, not after the whole start-to-close), checks that every vector has
the expected dimension, and returns the vectors in input order.

Calling it from a workflow (see README.md beside this file for the full options)::

    result = await workflow.execute_activity(
        EMBED_TEXTS_ACTIVITY,
        EmbedRequest(texts=chunks, purpose="document"),
        result_type=EmbedResult,
        task_queue=EMBED_TASK_QUEUE,
        start_to_close_timeout=timedelta(minutes=5),
        heartbeat_timeout=timedelta(seconds=90),
        retry_policy=RetryPolicy(non_retryable_error_types=NON_RETRYABLE_EMBEDDING_ERRORS),
    )

Paying twice: each provider request carries ``X-Request-Key: <workflow id>/<activity id>/<attempt>/<batch>``,
and each batch's answer is kept (:mod:`agent.paid_calls`) before the next one is asked for, so a retry
of the activity (a dead worker, a lost completion) re-pays none of the batches already answered.
"""

from __future__ import annotations

import json
import logging
import math

from temporalio import activity
from temporalio.exceptions import ApplicationError

from agent.blobs.store import BlobCorrupted, BlobNotFound, BlobStore
from agent.blobs.types import BlobRef
from agent.embeddings.provider import EmbeddingBatch, EmbeddingProvider
from agent.embeddings.types import (
    EMBED_TEXTS_ACTIVITY,
    MAX_TEXTS_PER_CALL,
    PURPOSES,
    EmbeddingErrorType,
    EmbedRequest,
    EmbedResult,
)
from agent.metrics import record_embedding_call, record_paid_answer_reused
from agent.paid_calls import PaidAnswers, PatientCompletion, call_key, fingerprint, kept_alive

log = logging.getLogger(__name__)


class EmbeddingActivities:
    """One provider (and so one connection pool) per worker process."""

    def __init__(
        self,
        provider: EmbeddingProvider,
        *,
        batch_size: int = 64,
        blobs: BlobStore | None = None,
        document_prefix: str = "",
        query_prefix: str = "",
        answers: PaidAnswers | None = None,
        completion: PatientCompletion | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.provider = provider
        self.batch_size = batch_size
        self.blobs = blobs
        self.prefixes = {"document": document_prefix, "query": query_prefix}
        self.answers = answers
        self.completion = completion

    @activity.defn(name=EMBED_TEXTS_ACTIVITY)
    async def embed_texts(self, request: EmbedRequest) -> EmbedResult:
        try:
            result = await self._embed(request)
        except ApplicationError as err:
            record_embedding_call(self.provider.model, 0, err.type)
            raise
        record_embedding_call(self.provider.model, len(result.vectors), None)
        if self.completion is not None:
            self.completion.report(result)  # retried through an outage; raises CompleteAsyncError
        return result

    async def _embed(self, request: EmbedRequest) -> EmbedResult:
        texts = await self._texts(request)
        prefix = self.prefixes[request.purpose]
        inputs = [prefix + text for text in texts] if prefix else texts
        info = activity.info()
        base_key = f"{info.workflow_id}/{info.activity_id}/{info.attempt}"

        expected = self.provider.dimension
        vectors: list[list[float]] = []
        prompt_tokens = 0
        model = self.provider.model
        batches = [inputs[i : i + self.batch_size] for i in range(0, len(inputs), self.batch_size)]
        for number, batch in enumerate(batches):
            answer = await self._batch(batch, f"{base_key}/{number}", part=f"batch-{number}")
            for offset, vector in enumerate(answer.vectors):
                expected = self._check_vector(vector, expected, index=len(vectors) + offset)
            vectors.extend(answer.vectors)
            prompt_tokens += answer.prompt_tokens
            model = answer.model
            # Between batches: proof of life, and where a cancellation is delivered.
            activity.heartbeat(f"{number + 1}/{len(batches)} batches")
        assert expected is not None  # at least one text, so at least one vector
        log.info(
            "embedded texts=%d batches=%d purpose=%s model=%s dimension=%d prompt_tokens=%d",
            len(texts),
            len(batches),
            request.purpose,
            model,
            expected,
            prompt_tokens,
        )
        return EmbedResult(vectors=vectors, model=model, dimension=expected, prompt_tokens=prompt_tokens)

    async def _batch(self, texts: list[str], request_key: str, part: str) -> EmbeddingBatch:
        """One provider request, or its kept answer from an earlier attempt."""
        key, asked = call_key(part), fingerprint([self.provider.model, texts])
        if self.answers is not None and (kept := await self.answers.get(key, asked, EmbeddingBatch)) is not None:
            record_paid_answer_reused("embeddings")
            return kept
        async with kept_alive("waiting for the embedding provider"):
            answer = await self.provider.embed(texts, request_key=request_key)
        if self.answers is not None:
            await self.answers.put(key, asked, answer)
        return answer

    async def _texts(self, request: EmbedRequest) -> list[str]:
        if request.purpose not in PURPOSES:
            raise _invalid(f"purpose must be one of {', '.join(PURPOSES)}, got {request.purpose!r}")
        if request.texts_ref is not None and request.texts:
            raise _invalid("give either texts or texts_ref, not both")
        texts = await self._read_ref(request.texts_ref) if request.texts_ref is not None else request.texts
        if not texts:
            raise _invalid("there is nothing to embed: texts is empty")
        if len(texts) > MAX_TEXTS_PER_CALL:
            raise _invalid(
                f"{len(texts)} texts in one call; at most {MAX_TEXTS_PER_CALL} fit in one activity result. "
                "Split them over several calls."
            )
        for index, text in enumerate(texts):
            if not isinstance(text, str) or text == "":
                # The API rejects empty inputs; say which one here, before paying for the others.
                raise _invalid(f"texts[{index}] is empty or not a string; every text must have content")
        return texts

    async def _read_ref(self, ref: BlobRef) -> list[str]:
        if self.blobs is None:
            raise ApplicationError(
                "this worker has no blob store, so it cannot read texts_ref",
                type=EmbeddingErrorType.INPUT_MISSING,
                non_retryable=True,
            )
        try:
            raw = await self.blobs.get(ref)
        except (BlobNotFound, BlobCorrupted) as err:
            raise ApplicationError(str(err), type=EmbeddingErrorType.INPUT_MISSING, non_retryable=True) from None
        try:
            texts = json.loads(raw)
        except ValueError:
            texts = None
        if not isinstance(texts, list):
            raise _invalid(f"blob {ref.uri} is not a JSON array of strings")
        return texts

    def _check_vector(self, vector: list[float], expected: int | None, *, index: int) -> int:
        if expected is None:
            expected = len(vector)  # no configured dimension: the first vector sets it
            if expected == 0:
                raise ApplicationError(
                    "the embedding provider returned an empty vector", type=EmbeddingErrorType.MALFORMED_RESPONSE
                )
        if len(vector) != expected:
            raise ApplicationError(
                f"vector {index} from model {self.provider.model!r} has {len(vector)} dimensions, expected "
                f"{expected}; set EMBEDDING_DIMENSION to the model's size (and re-index) if the model changed",
                type=EmbeddingErrorType.DIMENSION_MISMATCH,
                non_retryable=True,
            )
        if not all(math.isfinite(x) for x in vector):
            raise ApplicationError(
                f"vector {index} contains NaN or infinity", type=EmbeddingErrorType.MALFORMED_RESPONSE
            )
        return expected


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=EmbeddingErrorType.INVALID_INPUT, non_retryable=True)


def build_embedding_activities(
    blobs: BlobStore | None = None, answers: PaidAnswers | None = None, completion: PatientCompletion | None = None
) -> EmbeddingActivities:
    """The activities as the worker runs them, configured from the environment (``EMBEDDING_*``)."""
    from agent.embeddings.provider import OpenAIEmbeddingProvider
    from agent.embeddings.settings import EmbeddingSettings

    settings = EmbeddingSettings.from_env()
    return EmbeddingActivities(
        OpenAIEmbeddingProvider(settings),
        batch_size=settings.batch_size,
        blobs=blobs,
        document_prefix=settings.document_prefix,
        query_prefix=settings.query_prefix,
        answers=answers,
        completion=completion,
    )
