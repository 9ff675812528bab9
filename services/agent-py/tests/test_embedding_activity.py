"""The embedding provider and ``embed_texts`` against the real model server (real all-MiniLM-L6-v2).

Checks batching (one ledger entry per provider request, keyed by workflow/activity/attempt/batch),
heartbeats, dimension validation, blob inputs and the error classification shared with chat calls.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from agent.blobs.store import LocalBlobStore
from agent.blobs.types import BlobRef
from agent.embeddings.activities import EmbeddingActivities
from agent.embeddings.provider import OpenAIEmbeddingProvider
from agent.embeddings.settings import EmbeddingSettings
from agent.embeddings.types import (
    MAX_TEXTS_PER_CALL,
    NON_RETRYABLE_EMBEDDING_ERRORS,
    EmbeddingErrorType,
    EmbedRequest,
    EmbedResult,
)
from agent.llm.types import ModelErrorType
from modelserver.embedding import get_encoder
from modelserver.testing import SimulatorHandle, running_simulator
from workerkit import ConfigError

TEXTS = [
    "How long do refunds take?",
    "Refunds are issued within 5 business days.",
    "Where is my order ORD-1001?",
    "Orders ship from our warehouse in Rotterdam.",
    "The cat sat on the mat.",
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator() as handle:
        yield handle


def settings_for(sim: SimulatorHandle, **overrides: Any) -> EmbeddingSettings:
    return dataclasses.replace(EmbeddingSettings(base_url=sim.base_url, api_key="sim", timeout_s=30), **overrides)


def activities_for(sim: SimulatorHandle, tmp_path: Path | None = None, **overrides: Any) -> EmbeddingActivities:
    sim.reset()
    settings = settings_for(sim, **{k: v for k, v in overrides.items() if k != "batch_size"})
    return EmbeddingActivities(
        OpenAIEmbeddingProvider(settings),
        batch_size=overrides.get("batch_size", settings.batch_size),
        blobs=LocalBlobStore(tmp_path / "blobs") if tmp_path else None,
        document_prefix=settings.document_prefix,
        query_prefix=settings.query_prefix,
    )


def env(heartbeats: list[Any] | None = None, attempt: int = 1) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_id="wf-ingest", activity_id="3", attempt=attempt)
    if heartbeats is not None:
        environment.on_heartbeat = lambda *details: heartbeats.append(details)
    return environment


def direct(texts: list[str]) -> np.ndarray:
    return get_encoder().encode(texts).vectors


async def failure_of(activities: EmbeddingActivities, request: EmbedRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await env().run(activities.embed_texts, request)
    return raised.value


async def test_provider_returns_the_models_vectors(sim: SimulatorHandle) -> None:
    sim.reset()
    provider = OpenAIEmbeddingProvider(settings_for(sim))
    batch = await provider.embed(TEXTS[:2], request_key="wf-x/1/1/0")
    await provider.aclose()
    got = np.array(batch.vectors)
    assert got.shape == (2, 384) and batch.model == "all-minilm-l6-v2"
    np.testing.assert_allclose(got, direct(TEXTS[:2]), atol=1e-6)
    assert batch.prompt_tokens == sum(get_encoder().count_tokens(TEXTS[:2]))
    [entry] = sim.ledger()
    assert (entry["endpoint"], entry["request_key"], entry["inputs"]) == ("embeddings", "wf-x/1/1/0", 2)


async def test_activity_batches_heartbeats_and_keeps_input_order(sim: SimulatorHandle) -> None:
    activities = activities_for(sim, batch_size=2)
    heartbeats: list[Any] = []
    result = await env(heartbeats).run(activities.embed_texts, EmbedRequest(texts=TEXTS, purpose="document"))
    assert isinstance(result, EmbedResult)
    assert (result.model, result.dimension, len(result.vectors)) == ("all-minilm-l6-v2", 384, 5)
    np.testing.assert_allclose(np.array(result.vectors), direct(TEXTS), atol=1e-6)
    assert result.prompt_tokens == sum(get_encoder().count_tokens(TEXTS))
    assert heartbeats == [("1/3 batches",), ("2/3 batches",), ("3/3 batches",)]
    assert [c["request_key"] for c in sim.ledger()] == ["wf-ingest/3/1/0", "wf-ingest/3/1/1", "wf-ingest/3/1/2"]
    assert [c["inputs"] for c in sim.ledger()] == [2, 2, 1]
    # Search relevance through the activity: the refund answer is the refund question's nearest text.
    vectors = np.array(result.vectors)
    assert int(np.argmax(vectors[1:] @ vectors[0])) == 0


async def test_query_prefix_is_applied_for_models_that_need_one(sim: SimulatorHandle) -> None:
    activities = activities_for(sim, query_prefix="query: ")
    result = await env().run(activities.embed_texts, EmbedRequest(texts=["refund time"], purpose="query"))
    np.testing.assert_allclose(np.array(result.vectors), direct(["query: refund time"]), atol=1e-6)
    document = await env().run(activities.embed_texts, EmbedRequest(texts=["refund time"], purpose="document"))
    np.testing.assert_allclose(np.array(document.vectors), direct(["refund time"]), atol=1e-6)


async def test_texts_by_blob_reference(sim: SimulatorHandle, tmp_path: Path) -> None:
    activities = activities_for(sim, tmp_path)
    assert activities.blobs is not None
    ref = await activities.blobs.put(json.dumps(TEXTS[:3]).encode(), "application/json")
    result = await env().run(activities.embed_texts, EmbedRequest(texts_ref=ref))
    np.testing.assert_allclose(np.array(result.vectors), direct(TEXTS[:3]), atol=1e-6)
    missing = BlobRef(uri="sha256:" + "0" * 64, size=3)
    failure = await failure_of(activities, EmbedRequest(texts_ref=missing))
    assert (failure.type, failure.non_retryable) == (EmbeddingErrorType.INPUT_MISSING, True)


@pytest.mark.parametrize(
    "request_",
    [
        EmbedRequest(texts=[]),
        EmbedRequest(texts=["fine", ""]),
        EmbedRequest(texts=["x"], purpose="passage"),
        EmbedRequest(texts=["x"] * (MAX_TEXTS_PER_CALL + 1)),
        EmbedRequest(texts=["x"], texts_ref=BlobRef(uri="sha256:" + "0" * 64, size=1)),
    ],
)
async def test_invalid_input_fails_before_any_paid_call(sim: SimulatorHandle, request_: EmbedRequest) -> None:
    activities = activities_for(sim)
    failure = await failure_of(activities, request_)
    assert (failure.type, failure.non_retryable) == (EmbeddingErrorType.INVALID_INPUT, True)
    assert sim.ledger() == []


async def test_dimension_mismatch_is_non_retryable(sim: SimulatorHandle) -> None:
    activities = activities_for(sim, dimension=768)
    failure = await failure_of(activities, EmbedRequest(texts=["x"]))
    assert failure.type == EmbeddingErrorType.DIMENSION_MISMATCH and failure.non_retryable
    assert "384 dimensions, expected 768" in str(failure)
    # Unknown dimension: learnt from the answer.
    learnt = await env().run(activities_for(sim, dimension=None).embed_texts, EmbedRequest(texts=["x"]))
    assert learnt.dimension == 384


@pytest.mark.parametrize(
    ("fault", "error_type", "non_retryable"),
    [
        ({"kind": "rate_limit", "retry_after": 2}, ModelErrorType.RATE_LIMITED, False),
        ({"kind": "server_error", "status": 503}, ModelErrorType.SERVER_ERROR, False),
        ({"kind": "bad_request"}, ModelErrorType.BAD_REQUEST, True),
        ({"kind": "context_length"}, ModelErrorType.CONTEXT_LENGTH, True),
        ({"kind": "auth"}, ModelErrorType.AUTH, True),
    ],
)
async def test_provider_failures_are_classified_like_chat_calls(
    sim: SimulatorHandle, fault: dict[str, Any], error_type: str, non_retryable: bool
) -> None:
    activities = activities_for(sim, batch_size=2)
    sim.set_faults([{**fault, "endpoint": "embeddings", "match": "wf-ingest/3/1/1"}])  # the second batch
    heartbeats: list[Any] = []
    with pytest.raises(ApplicationError) as raised:
        await env(heartbeats).run(activities.embed_texts, EmbedRequest(texts=TEXTS))
    assert (raised.value.type, raised.value.non_retryable) == (error_type, non_retryable)
    assert (error_type in NON_RETRYABLE_EMBEDDING_ERRORS) == non_retryable
    if fault["kind"] == "rate_limit":
        assert raised.value.next_retry_delay == timedelta(seconds=2)
    assert heartbeats == [("1/3 batches",)]
    assert [c["outcome"] == "ok" for c in sim.ledger()] == [True, False]


async def test_unknown_model_and_unreachable_endpoint(sim: SimulatorHandle) -> None:
    failure = await failure_of(activities_for(sim, model="text-embedding-3-small"), EmbedRequest(texts=["x"]))
    assert (failure.type, failure.non_retryable) == (ModelErrorType.NOT_FOUND, True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = EmbeddingActivities(
        OpenAIEmbeddingProvider(EmbeddingSettings(base_url=f"http://127.0.0.1:{closed}/v1", api_key="k", timeout_s=2))
    )
    failure = await failure_of(unreachable, EmbedRequest(texts=["x"]))
    assert (failure.type, failure.non_retryable) == (ModelErrorType.CONNECTION, False)


def test_settings_from_env() -> None:
    default = EmbeddingSettings.from_env({})
    assert (default.base_url, default.model, default.dimension, default.batch_size) == (
        "http://127.0.0.1:8400/v1",
        "all-minilm-l6-v2",
        384,
        64,
    )
    hosted = EmbeddingSettings.from_env(
        {"OPENAI_BASE_URL": "https://llm.example/v1", "OPENAI_API_KEY": "sk-chat", "EMBEDDING_MODEL": "bge-small"}
    )
    assert (hosted.base_url, hosted.api_key, hosted.dimension) == ("https://llm.example/v1", "sk-chat", None)
    own = EmbeddingSettings.from_env(
        {
            "OPENAI_BASE_URL": "https://llm.example/v1",
            "EMBEDDING_BASE_URL": "http://tei:8080/v1",
            "EMBEDDING_API_KEY": "sk-embed",
            "EMBEDDING_DIMENSION": "1024",
            "EMBEDDING_BATCH_SIZE": "16",
            "EMBEDDING_TIMEOUT_S": "5",
        }
    )
    assert (own.base_url, own.api_key, own.dimension, own.batch_size, own.timeout_s) == (
        "http://tei:8080/v1",
        "sk-embed",
        1024,
        16,
        5.0,
    )
    assert "sk-embed" not in repr(own)
    for bad in ({"EMBEDDING_BATCH_SIZE": "0"}, {"EMBEDDING_BATCH_SIZE": "4096"}, {"EMBEDDING_TIMEOUT_S": "soon"}):
        with pytest.raises(ConfigError):
            EmbeddingSettings.from_env(bad)
