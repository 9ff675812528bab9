"""Raw HTTP behaviour that the openai client hides: error shapes, health, auth on /v1 only."""

from __future__ import annotations

import httpx
import openai
import pytest

from modelserver import Settings
from modelserver.testing import SimulatorHandle, running_simulator


def _is_openai_error(body: object) -> bool:
    return isinstance(body, dict) and set(body["error"]) == {"message", "type", "param", "code"}


def test_unparseable_body_is_an_openai_error_and_is_recorded(sim: SimulatorHandle) -> None:
    response = httpx.post(f"{sim.base_url}/chat/completions", content=b"{not json", timeout=5)
    assert response.status_code == 400 and _is_openai_error(response.json())
    assert response.json()["error"]["code"] == "invalid_json"
    [entry] = sim.ledger()
    assert (entry["status"], entry["outcome"], entry["model"]) == (400, "invalid_json", None)


def test_unknown_paths_and_methods_use_the_openai_shape(sim: SimulatorHandle) -> None:
    missing = httpx.get(f"{sim.base_url}/embeddings/nope", timeout=5)
    assert missing.status_code == 404 and _is_openai_error(missing.json())
    wrong = httpx.get(f"{sim.base_url}/chat/completions", timeout=5)
    assert wrong.status_code == 405 and _is_openai_error(wrong.json())


def test_healthz(sim: SimulatorHandle) -> None:
    body = httpx.get(f"{sim.url}/healthz", timeout=5).json()
    assert body["status"] == "ok" and body["simulator"] is True and "sim-gpt" in body["models"]


def test_bearer_key_guards_v1_only() -> None:
    with running_simulator(Settings(api_key="sk-test-key")) as sim:
        with openai.OpenAI(base_url=sim.base_url, api_key="wrong", max_retries=0) as intruder:
            with pytest.raises(openai.AuthenticationError) as denied:
                intruder.models.list()
            assert "sk-test-key" not in denied.value.message
        with openai.OpenAI(base_url=sim.base_url, api_key="sk-test-key", max_retries=0) as c:
            assert [m.id for m in c.models.list()][:1] == ["sim-gpt"]
        assert httpx.get(f"{sim.url}/healthz", timeout=5).status_code == 200
        assert sim.ledger() == []  # /v1/models calls are not chat completions
    assert "sk-test-key" not in repr(Settings(api_key="sk-test-key"))
