"""Fault injection: each rule kind surfaces as the matching ``openai`` exception."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from modelserver import Settings
from modelserver._settings import SettingsError
from modelserver.testing import SimulatorHandle, running_simulator

HELLO: list[Any] = [{"role": "user", "content": "Hello"}]


def ask(client: openai.OpenAI, text: str = "Hello", **kwargs: Any) -> str | None:
    completion = client.chat.completions.create(model="sim-gpt", messages=[{"role": "user", "content": text}], **kwargs)
    content: str | None = completion.choices[0].message.content
    return content


def test_rate_limit_carries_retry_after(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.set_faults([{"kind": "rate_limit", "retry_after": 2, "times": 1}])
    with pytest.raises(openai.RateLimitError) as limited:
        ask(client)
    headers = limited.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "2000"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.value.code == "rate_limit_exceeded"
    assert ask(client)  # times: 1 is used up
    assert [c["outcome"] for c in sim.ledger()] == ["rate_limit_exceeded", "ok"]


def test_server_error_uses_the_configured_status_and_counts_down(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.set_faults([{"kind": "server_error", "status": 503, "times": 2}])
    for remaining in (1, None):
        with pytest.raises(openai.InternalServerError) as failed:
            ask(client)
        assert failed.value.status_code == 503
        assert [rule.get("times") for rule in sim.faults()] == ([remaining] if remaining else [])
    assert ask(client)


@pytest.mark.parametrize(
    ("rule", "error", "code"),
    [
        ({"kind": "bad_request"}, openai.BadRequestError, "invalid_request"),
        ({"kind": "context_length"}, openai.BadRequestError, "context_length_exceeded"),
        ({"kind": "auth"}, openai.AuthenticationError, "invalid_api_key"),
        ({"kind": "server_error"}, openai.InternalServerError, "server_error"),
    ],
)
def test_error_kinds_map_to_openai_exceptions(
    client: openai.OpenAI, sim: SimulatorHandle, rule: dict[str, Any], error: type[openai.APIStatusError], code: str
) -> None:
    sim.set_faults([rule])
    for _ in range(2):  # no "times": the rule fires on every request
        with pytest.raises(error) as raised:
            ask(client)
        assert raised.value.code == code
        assert isinstance(raised.value.body, dict) and "(simulated fault)" in raised.value.body["message"]
    assert [c["fault"] for c in sim.ledger()] == [rule["kind"]] * 2


def test_slow_rule_times_out_a_patient_enough_client(sim: SimulatorHandle) -> None:
    sim.set_faults([{"kind": "slow", "delay_s": 0.6, "times": 1}])
    impatient = openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=0.2)
    with impatient, pytest.raises(openai.APITimeoutError):
        ask(impatient)
    # The server still finishes (and bills) the call; wait for it so no entry leaks into the next test.
    deadline = time.monotonic() + 3
    while not sim.ledger() and time.monotonic() < deadline:
        time.sleep(0.05)
    [entry] = sim.ledger()
    assert entry["fault"] == "slow" and entry["outcome"] == "ok" and entry["latency_ms"] >= 600
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=2) as patient:
        assert ask(patient)


def test_match_scopes_a_rule_to_a_message_or_request_key(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.set_faults(
        [
            {"kind": "server_error", "match": "ORD-666"},
            {"kind": "rate_limit", "retry_after": 1, "match": "wf-flaky/"},
        ]
    )
    assert ask(client, "Where is ORD-1001?")
    with pytest.raises(openai.InternalServerError):
        ask(client, "Where is ORD-666?")
    assert ask(client, extra_headers={"X-Request-Key": "wf-good/llm-1/1"})
    with pytest.raises(openai.RateLimitError):
        ask(client, extra_headers={"X-Request-Key": "wf-flaky/llm-1/1"})


def test_a_retrying_client_shows_up_twice_in_the_ledger(sim: SimulatorHandle) -> None:
    sim.set_faults([{"kind": "rate_limit", "retry_after": 0.05, "times": 1}])
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=2) as retrying:
        assert ask(retrying, extra_headers={"X-Request-Key": "wf-1/act-1/1"})
    calls = sim.ledger()
    assert [(c["status"], c["request_key"]) for c in calls] == [(429, "wf-1/act-1/1"), (200, "wf-1/act-1/1")]
    assert calls[0]["request_digest"] == calls[1]["request_digest"]


def test_admin_rejects_malformed_rules(sim: SimulatorHandle) -> None:
    for bad in (
        [{"kind": "meteor"}],
        [{"kind": "rate_limit", "time": 1}],
        [{"kind": "server_error", "status": 404}],
        {"x": 1},
    ):
        with pytest.raises(ValueError, match="400"):
            sim.set_faults(bad)  # type: ignore[arg-type]
    assert sim.faults() == []
    assert sim.set_faults({"faults": [{"kind": "auth", "times": 3}]}) == [{"kind": "auth", "times": 3, "match": None}]  # type: ignore[arg-type]


def test_faults_from_the_environment() -> None:
    settings = Settings.from_env({"MODEL_SERVER_FAULTS": '[{"kind": "server_error", "status": 502, "times": 1}]'})
    with running_simulator(settings) as sim, openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c:
        with pytest.raises(openai.InternalServerError) as failed:
            ask(c)
        assert failed.value.status_code == 502
        assert ask(c)
    with pytest.raises(SettingsError, match="MODEL_SERVER_FAULTS is not valid JSON"):
        Settings.from_env({"MODEL_SERVER_FAULTS": "[{kind: rate_limit}]"})
