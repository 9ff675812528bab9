"""Which embedding endpoint the agent talks to.

| variable | default | meaning |
|---|---|---|
| ``EMBEDDING_BASE_URL`` | ``OPENAI_BASE_URL``, else the offline model server | any OpenAI-compatible ``/v1`` |
| ``EMBEDDING_API_KEY`` | ``OPENAI_API_KEY``, else ``sim`` | bearer key |
| ``EMBEDDING_MODEL`` | ``all-minilm-l6-v2`` | model id sent to the endpoint |
| ``EMBEDDING_DIMENSION`` | 384 for all-minilm-l6-v2, else learnt from the first answer | expected vector size |
| ``EMBEDDING_BATCH_SIZE`` | 64 | texts per provider request (1-2048) |
| ``EMBEDDING_TIMEOUT_S`` | 60 | one provider request |
| ``EMBEDDING_DOCUMENT_PREFIX`` / ``EMBEDDING_QUERY_PREFIX`` | empty | \
instruction prefixes for models that need them (e5: ``passage: `` / ``query: ``) |
| ``AGENT_MAX_RETRY_AFTER_S`` | 120 | cap on a provider's Retry-After (shared with chat calls) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.llm.settings import SIMULATOR_BASE_URL
from workerkit.settings import positive_int_setting, seconds_setting

DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"
KNOWN_DIMENSIONS = {DEFAULT_EMBEDDING_MODEL: 384}
MAX_BATCH_SIZE = 2048  # the OpenAI embeddings API's limit on inputs per request


@dataclass(frozen=True)
class EmbeddingSettings:
    base_url: str | None
    api_key: str = field(repr=False)  # never in a log line or traceback
    model: str = DEFAULT_EMBEDDING_MODEL
    dimension: int | None = KNOWN_DIMENSIONS[DEFAULT_EMBEDDING_MODEL]
    batch_size: int = 64
    timeout_s: float = 60.0
    max_retry_after_s: float = 120.0
    document_prefix: str = ""
    query_prefix: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmbeddingSettings:
        env = os.environ if environ is None else environ
        base_url = env.get("EMBEDDING_BASE_URL") or env.get("OPENAI_BASE_URL") or None
        api_key = env.get("EMBEDDING_API_KEY") or env.get("OPENAI_API_KEY") or None
        if base_url is None and api_key is None:
            base_url = SIMULATOR_BASE_URL  # the offline model server serves the real MiniLM
        model = env.get("EMBEDDING_MODEL") or DEFAULT_EMBEDDING_MODEL
        # Unset or empty: the model's known dimension, or none (not checked); the 0 default is never read.
        dimension = (
            positive_int_setting("EMBEDDING_DIMENSION", 0, env=env)
            if env.get("EMBEDDING_DIMENSION", "").strip()
            else KNOWN_DIMENSIONS.get(model)
        )
        batch_size = positive_int_setting("EMBEDDING_BATCH_SIZE", 64, env=env, maximum=MAX_BATCH_SIZE)
        return cls(
            base_url=base_url,
            api_key=api_key or "sim",
            model=model,
            dimension=dimension,
            batch_size=batch_size,
            timeout_s=seconds_setting("EMBEDDING_TIMEOUT_S", 60, env=env),
            max_retry_after_s=seconds_setting("AGENT_MAX_RETRY_AFTER_S", 120, env=env),
            document_prefix=env.get("EMBEDDING_DOCUMENT_PREFIX", ""),
            query_prefix=env.get("EMBEDDING_QUERY_PREFIX", ""),
        )
