"""The simulated models the server answers for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import model_not_found

OWNER = "offline-model-server"
# A fixed date so that /v1/models is byte-identical across runs.
CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z


@dataclass(frozen=True)
class SimModel:
    id: str
    context_window: int

    def as_openai(self) -> dict[str, Any]:
        return {"id": self.id, "object": "model", "created": CREATED, "owned_by": OWNER}


MODELS: tuple[SimModel, ...] = (
    SimModel("sim-gpt", context_window=128_000),
    # A small window so tests can reach a genuine context_length_exceeded without a fault rule.
    SimModel("sim-gpt-mini", context_window=16_000),
)
DEFAULT_MODEL = MODELS[0].id
_BY_ID = {m.id: m for m in MODELS}


def lookup(model_id: str) -> SimModel:
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise model_not_found(model_id) from None


def model_list() -> dict[str, Any]:
    return {"object": "list", "data": [m.as_openai() for m in MODELS]}
