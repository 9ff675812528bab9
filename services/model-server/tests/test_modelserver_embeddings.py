"""``POST /v1/embeddings`` through the official client: real vectors, OpenAI wire format, ledger, faults."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from modelserver import Settings
from modelserver.embedding import get_encoder
from modelserver.testing import SimulatorHandle, running_simulator

MODEL = "all-minilm-l6-v2"
REFERENCE = Path(__file__).parent / "reference" / "minilm_reference.json"


def _reference(n: int) -> tuple[list[str], np.ndarray]:
    sentences = json.loads(REFERENCE.read_text(encoding="utf-8"))["sentences"][:n]
    return [s["text"] for s in sentences], np.array([s["vector"] for s in sentences])


def test_client_default_base64_and_float_agree_with_the_reference(client: openai.OpenAI) -> None:
    texts, expected = _reference(6)
    # openai>=1.x asks for base64 unless told otherwise, and decodes it itself.
    default = client.embeddings.create(model=MODEL, input=texts)
    floats = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert default.object == "list" and default.model == MODEL
    assert [d.index for d in default.data] == list(range(len(texts)))
    assert all(d.object == "embedding" and len(d.embedding) == 384 for d in default.data)
    got = np.array([d.embedding for d in default.data])
    assert np.array_equal(got, np.array([d.embedding for d in floats.data]))  # same float32 values
    cosines = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() > 0.999


def test_usage_counts_the_real_tokenizer(client: openai.OpenAI) -> None:
    texts = ["Hello, world!", "How long do refunds take?", "word " * 400]
    response = client.embeddings.create(model=MODEL, input=texts)
    expected = sum(get_encoder().count_tokens(texts))
    assert response.usage.prompt_tokens == response.usage.total_tokens == expected == 6 + 9 + 256


def test_single_string_input_and_raw_wire_format(sim: SimulatorHandle) -> None:
    raw = httpx.post(
        f"{sim.base_url}/embeddings",
        json={"model": MODEL, "input": "refund €25", "encoding_format": "base64"},
        timeout=30,
    )
    assert raw.status_code == 200
    body = raw.json()
    assert set(body) == {"object", "data", "model", "usage"}
    [item] = body["data"]
    assert set(item) == {"object", "index", "embedding"}
    vector = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert raw.headers["x-request-id"] == "req_sim_1" and raw.headers["x-truncated-inputs"] == "0"


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({"input": ""}, "input", "invalid_request"),
        ({"input": []}, "input", "invalid_request"),
        ({"input": ["ok", ""]}, "input[1]", "invalid_request"),
        ({"input": ["ok", 3]}, "input[1]", "invalid_request"),
        ({"input": [101, 2023, 102]}, "input", "token_input_not_supported"),
        ({"input": [[101, 2023, 102]]}, "input", "token_input_not_supported"),
        ({"input": ["x"] * 2049}, "input", "invalid_request"),
        ({}, "input", "invalid_request"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format", "invalid_request"),
        ({"input": "x", "dimensions": 128}, "dimensions", "invalid_request"),
        ({"input": "x", "model": None}, "model", "invalid_request"),
        ({"input": "x", "model": "sim-gpt"}, "model", "model_not_supported"),
    ],
)
def test_invalid_requests_are_400_with_param(
    sim: SimulatorHandle, payload: dict[str, Any], param: str, code: str
) -> None:
    body = {"model": MODEL, **payload}
    if payload.get("model", MODEL) is None:
        del body["model"]
    response = httpx.post(f"{sim.base_url}/embeddings", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    [entry] = sim.ledger()
    assert (entry["endpoint"], entry["status"], entry["usage"]) == ("embeddings", 400, None)


def test_unknown_model_is_404_and_models_list_the_embedding_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert MODEL in [m.id for m in client.models.list()]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.BadRequestError) as wrong_endpoint:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert wrong_endpoint.value.code == "model_not_supported"


def test_ledger_records_embeddings_with_endpoint_and_request_key(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    client.embeddings.create(model=MODEL, input=["a", "b"], extra_headers={"X-Request-Key": "wf-1/embed-3/1"})
    client.chat.completions.create(model="sim-gpt", messages=[{"role": "user", "content": "hi"}])
    embed, chat = sim.ledger()
    assert (embed["endpoint"], embed["request_key"], embed["inputs"], embed["outcome"]) == (
        "embeddings",
        "wf-1/embed-3/1",
        2,
        "ok",
    )
    assert embed["usage"] == {"prompt_tokens": 6, "total_tokens": 6} and embed["finish_reason"] is None
    assert chat["endpoint"] == "chat.completions" and chat["inputs"] is None


def test_faults_apply_to_embeddings_and_can_target_one_endpoint(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    sim.set_faults(
        [
            {"kind": "rate_limit", "retry_after": 0.5, "times": 1, "endpoint": "embeddings"},
            {"kind": "context_length", "times": 1, "match": "very long"},
        ]
    )
    # The embeddings-only rule is skipped by chat.
    client.chat.completions.create(model="sim-gpt", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as limited:
        client.embeddings.create(model=MODEL, input="x")
    assert limited.value.response.headers["retry-after-ms"] == "500"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.embeddings.create(model=MODEL, input=["short", "a very long document"])
    assert (too_long.value.code, too_long.value.param) == ("context_length_exceeded", "input")
    assert client.embeddings.create(model=MODEL, input="x").data
    assert [(c["endpoint"], c["outcome"], c["fault"]) for c in sim.ledger()] == [
        ("chat.completions", "ok", None),
        ("embeddings", "rate_limit_exceeded", "rate_limit"),
        ("embeddings", "context_length_exceeded", "context_length"),
        ("embeddings", "ok", None),
    ]


def test_fault_rule_endpoint_is_validated(sim: SimulatorHandle) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        sim.set_faults([{"kind": "rate_limit", "endpoint": "completions"}])
    assert sim.set_faults([{"kind": "auth", "endpoint": "embeddings"}])[0]["endpoint"] == "embeddings"


def test_bearer_key_guards_embeddings() -> None:
    with running_simulator(Settings(api_key="sk-embed")) as sim:
        with openai.OpenAI(base_url=sim.base_url, api_key="wrong", max_retries=0) as intruder:
            with pytest.raises(openai.AuthenticationError):
                intruder.embeddings.create(model=MODEL, input="x")
        with openai.OpenAI(base_url=sim.base_url, api_key="sk-embed", max_retries=0) as ok:
            assert len(ok.embeddings.create(model=MODEL, input="x").data[0].embedding) == 384
        assert [c["outcome"] for c in sim.ledger()] == ["invalid_api_key", "ok"]


def test_healthz_reports_the_real_embedding_model(sim: SimulatorHandle) -> None:
    body = httpx.get(f"{sim.url}/healthz", timeout=5).json()
    assert body["embedding_model"]["id"] == MODEL and body["embedding_model"]["real_model"] is True
    assert MODEL in body["models"]
