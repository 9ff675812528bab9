"""Paid answers (agent.paid_calls) through the real activities against the real simulator: an
answered call is kept, sealed, before the activity returns, and a later attempt of the same call
returns it without paying; nothing else ever gets it."""

from __future__ import annotations

import dataclasses
import errno
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

import workerkit.metrics
from agent.blobs.store import BlobStoreUnavailable, LocalBlobStore
from agent.embeddings.activities import EmbeddingActivities
from agent.embeddings.provider import OpenAIEmbeddingProvider
from agent.embeddings.settings import EmbeddingSettings
from agent.embeddings.types import EmbedRequest
from agent.llm.activities import ModelActivities
from agent.llm.settings import ModelSettings
from agent.llm.types import ChatMessage, ChatRequest
from agent.metrics import PAID_ANSWERS_UNKEPT, expose_paid_answers_unkept
from agent.paid_calls import DirectoryShelf, PaidAnswers, paid_answers_from
from modelserver.testing import SimulatorHandle, running_simulator
from payload_codec import KEY_SIZE, EncryptionCodec, KeyRing
from workerkit import ConfigError


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator() as handle:
        yield handle


def codec(active: str = "k1") -> EncryptionCodec:
    return EncryptionCodec(KeyRing({"k1": b"\x01" * KEY_SIZE, "k2": b"\x02" * KEY_SIZE}, {"agents": active}), "agents")


def env(attempt: int, run_id: str = "run-1", heartbeats: list[object] | None = None) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info,
        workflow_id="wf-paid",
        workflow_run_id=run_id,
        activity_id="llm-4",
        attempt=attempt,
        start_to_close_timeout=timedelta(seconds=10),
        heartbeat_timeout=timedelta(seconds=0.6),
    )
    if heartbeats is not None:
        environment.on_heartbeat = lambda *details: heartbeats.append(details)
    return environment


def model(sim: SimulatorHandle, tmp_path: Path, answers: PaidAnswers) -> ModelActivities:
    sim.reset()
    settings = ModelSettings(base_url=sim.base_url, api_key="sim", model="sim-gpt", timeout_s=10)
    return ModelActivities(settings, LocalBlobStore(tmp_path / "blobs"), answers)


def ask(text: str) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="user", content=text)])


async def test_a_later_attempt_returns_the_kept_answer_without_paying(sim: SimulatorHandle, tmp_path: Path) -> None:
    answers = PaidAnswers(DirectoryShelf(tmp_path / "answers"), codec())
    activities = model(sim, tmp_path, answers)
    first = await env(attempt=1).run(activities.chat_completion, ask("Please remember the word pelican"))
    # Attempt 1's completion never reached history (worker killed, server down): attempt 2 runs.
    again = await env(attempt=2).run(activities.chat_completion, ask("Please remember the word pelican"))
    assert again == first and again.attempt == 1
    assert [c["request_key"] for c in sim.ledger()] == ["wf-paid/llm-4/1"]

    # Sealed on disk: the file holds neither the question nor the answer.
    [kept] = list((tmp_path / "answers").iterdir())
    assert kept.suffix == ".enc" and b"pelican" not in kept.read_bytes()
    assert first.content and first.content.encode() not in kept.read_bytes()
    # Sealed under k1, still read after a rotation to k2 (the key id travels with the file).
    rotated = model(sim, tmp_path, PaidAnswers(DirectoryShelf(tmp_path / "answers"), codec(active="k2")))
    assert await env(attempt=3).run(rotated.chat_completion, ask("Please remember the word pelican")) == first
    assert sim.ledger() == []


@pytest.mark.parametrize(
    ("run_id", "question"),
    [("run-2", "Please remember the word pelican"), ("run-1", "Something else entirely")],
    ids=["another run of the same workflow id", "another question under the same key"],
)
async def test_the_kept_answer_is_never_given_to_another_call(
    sim: SimulatorHandle, tmp_path: Path, run_id: str, question: str
) -> None:
    activities = model(sim, tmp_path, PaidAnswers(DirectoryShelf(tmp_path / "answers"), codec()))
    await env(attempt=1).run(activities.chat_completion, ask("Please remember the word pelican"))
    await env(attempt=2, run_id=run_id).run(activities.chat_completion, ask(question))
    assert len(sim.ledger()) == 2


async def test_an_unreadable_kept_answer_means_paying_again_not_failing(sim: SimulatorHandle, tmp_path: Path) -> None:
    activities = model(sim, tmp_path, PaidAnswers(DirectoryShelf(tmp_path / "answers"), codec()))
    await env(attempt=1).run(activities.chat_completion, ask("Hello"))
    [kept] = list((tmp_path / "answers").iterdir())
    kept.write_bytes(kept.read_bytes()[:-3] + b"xyz")  # tampered
    result = await env(attempt=2).run(activities.chat_completion, ask("Hello"))
    assert result.attempt == 2 and len(sim.ledger()) == 2


async def test_the_call_heartbeats_while_the_provider_thinks(sim: SimulatorHandle, tmp_path: Path) -> None:
    activities = model(sim, tmp_path, PaidAnswers(DirectoryShelf(tmp_path / "answers"), None))
    sim.set_faults([{"kind": "slow", "delay_s": 1.5, "times": 1}])
    heartbeats: list[object] = []
    await env(attempt=1, heartbeats=heartbeats).run(activities.chat_completion, ask("Hello"))
    # Heartbeat timeout 0.6 s: a beat every 0.2 s while the answer takes 1.5 s.
    assert len(heartbeats) >= 4


async def test_embedding_batches_already_paid_are_not_paid_again(sim: SimulatorHandle, tmp_path: Path) -> None:
    sim.reset()
    settings = EmbeddingSettings(base_url=sim.base_url, api_key="sim", timeout_s=30)
    answers = PaidAnswers(DirectoryShelf(tmp_path / "answers"), codec())
    activities = EmbeddingActivities(OpenAIEmbeddingProvider(settings), batch_size=2, answers=answers)
    texts = ["one refund", "two refunds", "three", "four", "five"]
    # Attempt 1 is answered for its first two batches, then fails on the third.
    sim.set_faults([{"kind": "server_error", "status": 503, "times": 1, "match": "/1/2", "endpoint": "embeddings"}])
    with pytest.raises(Exception, match="503"):
        await env(attempt=1).run(activities.embed_texts, EmbedRequest(texts=texts))
    result = await env(attempt=2).run(activities.embed_texts, EmbedRequest(texts=texts))
    assert len(result.vectors) == 5
    keys = [(c["request_key"], c["outcome"]) for c in sim.ledger()]
    assert keys == [
        ("wf-paid/llm-4/1/0", "ok"),
        ("wf-paid/llm-4/1/1", "ok"),
        ("wf-paid/llm-4/1/2", "server_error"),
        ("wf-paid/llm-4/2/2", "ok"),
    ]


async def test_retention_sweep_and_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = PaidAnswers(DirectoryShelf(tmp_path), None, retention=timedelta(hours=1))
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert await answers.sweep() == 1 and not old.exists() and fresh.exists()

    monkeypatch.setenv("AGENT_PAID_ANSWER_RETENTION_S", "3600")
    assert paid_answers_from(LocalBlobStore(tmp_path / "blobs")).retention == timedelta(hours=1)
    monkeypatch.setenv("AGENT_PAID_ANSWER_RETENTION_S", "forever")
    with pytest.raises(ConfigError, match="AGENT_PAID_ANSWER_RETENTION_S must be a positive number of seconds"):
        paid_answers_from(LocalBlobStore(tmp_path / "blobs"))


class FullDisk(DirectoryShelf):
    """A blob volume that has filled up: lookups work, writes fail as the kernel says."""

    async def write(self, name: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / name))


async def test_an_answer_that_cannot_be_kept_is_reported_and_counted(
    sim: SimulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails after the provider was paid: the answer still comes back (failing would pay
    again for certain), and the process meter counts it for the PaidAnswersNotKept alert."""
    buffer = MetricBuffer(100)
    monkeypatch.setattr(workerkit.metrics, "_runtime", Runtime(telemetry=TelemetryConfig(metrics=buffer)))
    expose_paid_answers_unkept()
    activities = model(sim, tmp_path, PaidAnswers(FullDisk(tmp_path / "answers"), codec()))
    result = await env(attempt=1).run(activities.chat_completion, ask("Hello"))
    assert result.attempt == 1 and len(sim.ledger()) == 1
    added = [u.value for u in buffer.retrieve_updates() if u.metric.name == PAID_ANSWERS_UNKEPT]
    assert added == [0, 1]  # exposed at 0 at the start, then the answer not kept


async def test_a_lookup_the_directory_cannot_answer_fails_retryably_before_paying(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    """A kept answer that cannot be read (here a directory where the file should be; on a real
    volume an I/O error) is the store's outage: the attempt fails with one typed, retryable
    sentence and the provider is not called, as when S3 is unreachable."""
    answers = PaidAnswers(DirectoryShelf(tmp_path / "answers"), codec())
    activities = model(sim, tmp_path, answers)
    unreadable = tmp_path / "answers" / answers.name_for("wf-paid/run-1/llm-4")
    unreadable.mkdir(parents=True)
    with pytest.raises(BlobStoreUnavailable, match=f"^cannot read the paid answer {unreadable}: Is a directory$"):
        await env(attempt=2).run(activities.chat_completion, ask("Hello"))
    assert sim.ledger() == []
