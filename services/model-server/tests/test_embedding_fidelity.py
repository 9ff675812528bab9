"""The numpy runtime computes what the real all-MiniLM-L6-v2 computes.

``reference/minilm_reference.json`` holds vectors recorded once from sentence-transformers + torch
(``reference/record_reference_vectors.py``, run by hand, never in CI). Every sentence must reach
cosine >= 0.999 against it; in practice the runtime agrees to ~1e-12 (float32 rounding).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelserver.embedding import DIMENSION, MODEL_ID, SentenceEncoder, erf, get_encoder, packaged_model_dir

REFERENCE = Path(__file__).parent / "reference" / "minilm_reference.json"
MIN_COSINE = 0.999


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def encoder() -> SentenceEncoder:
    return get_encoder()  # process-wide: loaded once for every test that embeds


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.asarray((a64 * b64).sum(1) / np.linalg.norm(a64, axis=1) / np.linalg.norm(b64, axis=1))


def test_reference_was_recorded_from_the_packaged_weights(reference: dict[str, Any]) -> None:
    weights = packaged_model_dir() / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == reference["model_safetensors_sha256"], (
        "the packaged model changed: re-run tests/reference/record_reference_vectors.py by hand"
    )
    assert reference["dimension"] == DIMENSION and reference["max_seq_length"] == 256


def test_vectors_match_the_reference_model(reference: dict[str, Any], encoder: SentenceEncoder) -> None:
    texts = [s["text"] for s in reference["sentences"]]
    expected = np.array([s["vector"] for s in reference["sentences"]], dtype=np.float64)
    result = encoder.encode(texts)
    assert result.vectors.shape == (len(texts), DIMENSION) and result.vectors.dtype == np.float32
    cosines = _cosines(result.vectors, expected)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= MIN_COSINE, f"sentence {worst} ({texts[worst][:40]!r}): cosine {cosines[worst]}"
    # Not required, but it is what the runtime achieves; a drop means a numerical change worth a look.
    assert cosines.min() > 0.99999
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)


def test_tokenization_matches_the_reference_tokenizer(reference: dict[str, Any], encoder: SentenceEncoder) -> None:
    texts = [s["text"] for s in reference["sentences"]]
    for text, encoding, sentence in zip(texts, encoder.tokenize(texts), reference["sentences"], strict=True):
        assert encoding.ids == sentence["input_ids"], text[:40]
    counts = encoder.count_tokens(texts)
    assert max(counts) == 256  # the long sentences are truncated to max_seq_length
    assert encoder.encode(texts[-2:]).truncated == 2


def test_results_do_not_depend_on_batching_or_threads(reference: dict[str, Any], encoder: SentenceEncoder) -> None:
    texts = [s["text"] for s in reference["sentences"]][:12]
    together = encoder.encode(texts, batch_size=16, threads=1).vectors
    one_by_one = np.stack([encoder.encode([t]).vectors[0] for t in texts])
    parallel = encoder.encode(texts, batch_size=2, threads=2).vectors
    assert _cosines(together, one_by_one).min() > 0.999999
    assert _cosines(together, parallel).min() > 0.999999


def test_erf_is_accurate() -> None:
    xs = np.linspace(-8.0, 8.0, 20_001)
    exact = np.array([math.erf(x) for x in xs])
    assert np.abs(erf(xs) - exact).max() < 2e-7
    assert np.abs(erf(xs.astype(np.float32)).astype(np.float64) - exact).max() < 1e-6


def test_similar_sentences_are_closer_than_unrelated_ones(encoder: SentenceEncoder) -> None:
    v = encoder.encode(
        ["How long does a refund take?", "When will I get my money back?", "The cat sat on the mat."]
    ).vectors
    assert float(v[0] @ v[1]) > 0.5 > float(v[0] @ v[2])


def test_model_identity(encoder: SentenceEncoder) -> None:
    assert MODEL_ID == "all-minilm-l6-v2"
    assert encoder.dimension == DIMENSION == 384 and encoder.max_seq_length == 256
