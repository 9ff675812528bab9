"""The model-call activity against the real simulator: results, usage and error classification.

Each provider failure must come out as the right Temporal error: non-retryable when a retry
cannot help (400, context length, 401, unknown model), retryable otherwise, with the
provider's Retry-After as the next delay.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx2
import openai
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from agent.blobs.store import LocalBlobStore
from agent.blobs.types import BlobRef
from agent.llm.activities import ModelActivities
from agent.llm.errors import retry_after
from agent.llm.settings import ModelSettings
from agent.llm.types import NON_RETRYABLE_MODEL_ERRORS, ChatMessage, ChatRequest, ModelErrorType
from agent.tools import SUPPORT_TOOLS
from modelserver.testing import SimulatorHandle, running_simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator() as handle:
        yield handle


@pytest.fixture
def activities(sim: SimulatorHandle, tmp_path: Path) -> ModelActivities:
    sim.reset()
    settings = ModelSettings(base_url=sim.base_url, api_key="sim", model="sim-gpt", timeout_s=10, max_retry_after_s=30)
    return ModelActivities(settings, LocalBlobStore(tmp_path / "blobs"))


def env(start_to_close_s: float = 10, attempt: int = 1) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info,
        workflow_id="wf-unit",
        activity_id="7",
        attempt=attempt,
        start_to_close_timeout=timedelta(seconds=start_to_close_s),
    )
    return environment


def hello(text: str = "Hello") -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="user", content=text)])


async def test_answer_records_model_usage_attempt_and_request_key(
    activities: ModelActivities, sim: SimulatorHandle
) -> None:
    result = await env(attempt=3).run(activities.chat_completion, hello())
    assert result.model == "sim-gpt" and result.finish_reason == "stop"
    assert result.content and "You said" in result.content
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens > 0
    assert result.attempt == 3
    [entry] = sim.ledger()
    assert entry["request_key"] == "wf-unit/7/3"


async def test_tool_calls_and_tool_choice(activities: ModelActivities) -> None:
    request = hello("Where is my order ORD-1001?")
    request.tools = SUPPORT_TOOLS
    result = await env().run(activities.chat_completion, request)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("lookup_order", '{"order_id": "ORD-1001"}')]
    request.tool_choice = "none"
    assert not (await env().run(activities.chat_completion, request)).tool_calls


async def test_content_by_reference_is_read_from_the_blob_store(
    activities: ModelActivities, sim: SimulatorHandle
) -> None:
    text = "How long do refunds take? " + "x" * 5000
    ref = await activities.blobs.put(text.encode())
    by_ref_request = ChatRequest(messages=[ChatMessage(role="user", content_ref=ref)])
    by_ref = await env().run(activities.chat_completion, by_ref_request)
    inline = await env().run(activities.chat_completion, hello(text))
    assert by_ref.content == inline.content
    first, second = sim.ledger()
    # The provider saw the same request both times: the reference was resolved to the text.
    assert first["request_digest"] == second["request_digest"]


async def test_missing_blob_is_not_retried(activities: ModelActivities) -> None:
    ghost = BlobRef(uri="sha256:" + "0" * 64, size=1)
    with pytest.raises(ApplicationError) as info:
        await env().run(activities.chat_completion, ChatRequest(messages=[ChatMessage(role="user", content_ref=ghost)]))
    assert info.value.type == ModelErrorType.BLOB_MISSING and info.value.non_retryable


@pytest.mark.parametrize(
    ("fault", "error_type", "retryable"),
    [
        ({"kind": "bad_request"}, ModelErrorType.BAD_REQUEST, False),
        ({"kind": "context_length"}, ModelErrorType.CONTEXT_LENGTH, False),
        ({"kind": "auth"}, ModelErrorType.AUTH, False),
        ({"kind": "server_error", "status": 503}, ModelErrorType.SERVER_ERROR, True),
        ({"kind": "server_error", "status": 500}, ModelErrorType.SERVER_ERROR, True),
        ({"kind": "rate_limit", "retry_after": 2}, ModelErrorType.RATE_LIMITED, True),
    ],
)
async def test_provider_errors_are_classified(
    activities: ModelActivities, sim: SimulatorHandle, fault: dict, error_type: str, retryable: bool
) -> None:
    sim.set_faults([{**fault, "times": 1}])
    with pytest.raises(ApplicationError) as info:
        await env().run(activities.chat_completion, hello())
    assert info.value.type == error_type
    assert info.value.non_retryable is not retryable
    assert (error_type in NON_RETRYABLE_MODEL_ERRORS) is not retryable
    if fault["kind"] == "rate_limit":
        # retry-after-ms (2000) wins over the rounded retry-after header.
        assert info.value.next_retry_delay == timedelta(seconds=2)


async def test_unknown_model_is_not_retried(activities: ModelActivities) -> None:
    request = hello()
    request.model = "no-such-model"
    with pytest.raises(ApplicationError) as info:
        await env().run(activities.chat_completion, request)
    assert info.value.type == ModelErrorType.NOT_FOUND and info.value.non_retryable


async def test_slow_answer_times_out_inside_the_activity_timeout(
    activities: ModelActivities, sim: SimulatorHandle
) -> None:
    sim.set_faults([{"kind": "slow", "delay_s": 3, "times": 1}])
    started = datetime.now(UTC)
    with pytest.raises(ApplicationError) as info:
        await env(start_to_close_s=1.5).run(activities.chat_completion, hello())
    assert info.value.type == ModelErrorType.TIMEOUT and not info.value.non_retryable
    # Bounded by the activity's start-to-close (minus a margin), not the 10 s client default.
    assert datetime.now(UTC) - started < timedelta(seconds=2.5)


async def test_unreachable_provider_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ModelSettings(base_url=f"http://127.0.0.1:{port}/v1", api_key="sim", model="sim-gpt", timeout_s=5)
    activities = ModelActivities(settings, LocalBlobStore(tmp_path))
    with pytest.raises(ApplicationError) as info:
        await env().run(activities.chat_completion, hello())
    assert info.value.type == ModelErrorType.CONNECTION and not info.value.non_retryable


def _status_error(headers: dict[str, str]) -> openai.RateLimitError:
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    response = httpx2.Response(429, headers=headers, request=request)
    return openai.RateLimitError("slow down", response=response, body=None)


def test_retry_after_forms_and_cap() -> None:
    cap = timedelta(seconds=60)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after(_status_error({"retry-after": "3"}), cap) == timedelta(seconds=3)
    assert retry_after(_status_error({"retry-after-ms": "250", "retry-after": "1"}), cap) == timedelta(seconds=0.25)
    date = format_datetime(now + timedelta(seconds=20), usegmt=True)
    assert retry_after(_status_error({"retry-after": date}), cap, now=now) == timedelta(seconds=20)
    assert retry_after(_status_error({"retry-after": "3600"}), cap) == cap
    assert retry_after(_status_error({"retry-after": "soon"}), cap) is None
    assert retry_after(_status_error({}), cap) is None
