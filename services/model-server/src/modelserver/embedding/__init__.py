"""Real sentence embeddings: all-MiniLM-L6-v2 run in numpy (no torch), shared by the
``/v1/embeddings`` endpoint and by offline tools such as ``ops/bench/embed_beir.py``.

    from modelserver.embedding import get_encoder

    result = get_encoder().encode(["How long do refunds take?"])
    result.vectors  # (1, 384) float32, L2-normalised

Unlike the chat side of the model server, these vectors are the real model's output: a test
compares them with vectors recorded from sentence-transformers (cosine >= 0.999 per sentence).
"""

from __future__ import annotations

from ._bert import erf
from ._encoder import (
    DEFAULT_BATCH_SIZE,
    MODEL_ID,
    EncodeResult,
    SentenceEncoder,
    default_threads,
    get_encoder,
    is_loaded,
)
from ._files import MODEL_DIR_ENV, ModelFilesError, ModelSpec, load_spec, packaged_model_dir

DIMENSION = 384
"""all-MiniLM-L6-v2's vector size; also checked against the model's config when it loads."""

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DIMENSION",
    "MODEL_DIR_ENV",
    "MODEL_ID",
    "EncodeResult",
    "ModelFilesError",
    "ModelSpec",
    "SentenceEncoder",
    "default_threads",
    "erf",
    "get_encoder",
    "is_loaded",
    "load_spec",
    "packaged_model_dir",
]
