"""The call ledger: what tests use to prove an agent never paid twice."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from modelserver import Settings
from modelserver.testing import SimulatorHandle, running_simulator


def ask(client: openai.OpenAI, text: str, key: str | None = None) -> None:
    headers = {"X-Request-Key": key} if key else None
    client.chat.completions.create(model="sim-gpt", messages=[{"role": "user", "content": text}], extra_headers=headers)


def test_every_call_is_recorded_served_or_failed(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    ask(client, "one", key="wf-42/activity-7/1")
    ask(client, "two")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    calls = sim.ledger()
    assert [c["seq"] for c in calls] == [1, 2, 3]
    assert [c["request_key"] for c in calls] == ["wf-42/activity-7/1", None, None]
    assert [(c["outcome"], c["status"], c["model"]) for c in calls] == [
        ("ok", 200, "sim-gpt"),
        ("ok", 200, "sim-gpt"),
        ("model_not_found", 404, "nope"),
    ]
    first = calls[0]
    assert len(first["request_digest"]) == 64
    assert first["usage"]["total_tokens"] > 0 and calls[2]["usage"] is None
    assert first["timestamp"].endswith("Z") and first["latency_ms"] >= 0
    assert first["fault"] is None and first["finish_reason"] == "stop"


def test_response_carries_the_ledger_sequence(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="sim-gpt", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-request-id"] == "req_sim_1"
    assert sim.ledger()[0]["seq"] == 1


def test_clearing_restarts_numbering(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    ask(client, "before")
    sim.clear_ledger()
    assert sim.ledger() == []
    ask(client, "after")
    assert [c["seq"] for c in sim.ledger()] == [1]


def test_ledger_file_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger" / "calls.jsonl"
    settings = Settings(ledger_path=path)
    with running_simulator(settings) as sim, openai.OpenAI(base_url=sim.base_url, api_key="s", max_retries=0) as c:
        ask(c, "first", key="wf-1/a-1/1")
        ask(c, "second", key="wf-1/a-2/1")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["seq"], e["request_key"]) for e in lines] == [(1, "wf-1/a-1/1"), (2, "wf-1/a-2/1")]

    # A crash mid-write leaves a torn line; the restarted server skips it and carries on numbering.
    with path.open("a") as handle:
        handle.write('{"seq": 3, "trunc')
    with running_simulator(settings) as sim, openai.OpenAI(base_url=sim.base_url, api_key="s", max_retries=0) as c:
        assert [e["seq"] for e in sim.ledger()] == [1, 2]
        ask(c, "third", key="wf-1/a-3/1")
        assert [e["seq"] for e in sim.ledger()] == [1, 2, 3]
    readable = [json.loads(line) for line in path.read_text().splitlines() if not line.startswith('{"seq": 3, "trunc')]
    assert [e["request_key"] for e in readable] == ["wf-1/a-1/1", "wf-1/a-2/1", "wf-1/a-3/1"]
