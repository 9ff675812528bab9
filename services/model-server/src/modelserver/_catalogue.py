"""The models the server answers for: simulated chat models and one real embedding model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ._errors import APIFailure, model_not_found

OWNER = "offline-model-server"
# A fixed date so that /v1/models is byte-identical across runs.
CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z


@dataclass(frozen=True)
class SimModel:
    id: str
    context_window: int
    kind: Literal["chat", "embedding"] = "chat"
    dimension: int | None = None
    """Vector size of an embedding model."""

    def as_openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "model", "created": CREATED, "owned_by": OWNER}


MODELS: tuple[SimModel, ...] = (
    SimModel("sim-gpt", context_window=128_000),
    # A small window so tests can reach a genuine context_length_exceeded without a fault rule.
    SimModel("sim-gpt-mini", context_window=16_000),
    # Not simulated: the real all-MiniLM-L6-v2 (modelserver.embedding). Longer inputs are
    # truncated to 256 tokens, as sentence-transformers does.
    SimModel("all-minilm-l6-v2", context_window=256, kind="embedding", dimension=384),
)
DEFAULT_MODEL = MODELS[0].id
EMBEDDING_MODEL = next(m.id for m in MODELS if m.kind == "embedding")
_BY_ID = {m.id: m for m in MODELS}


def lookup(model_id: str) -> SimModel:
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise model_not_found(model_id) from None


def lookup_kind(model_id: str, kind: Literal["chat", "embedding"]) -> SimModel:
    """The model, or 404 if unknown, or 400 if it exists but serves the other endpoint."""
    model = lookup(model_id)
    if model.kind != kind:
        served = [m.id for m in MODELS if m.kind == kind]
        what = "chat completions" if kind == "chat" else "embeddings"
        raise APIFailure(
            400,
            f"The model `{model_id}` is {'an embedding' if model.kind == 'embedding' else 'a chat'} model and "
            f"does not support {what}; use {' or '.join(served)}.",
            code="model_not_supported",
            param="model",
        )
    return model


def model_list() -> dict[str, Any]:
    return {"object": "list", "data": [m.as_openai() for m in MODELS]}
