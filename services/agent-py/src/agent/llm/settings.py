"""Which model provider the agent talks to, from the standard ``OPENAI_*`` variables.

- Nothing set: the project's offline model simulator (``services/model-server``) on its
  dev-stack port, so demos and tests never need a network or a key.
- ``OPENAI_BASE_URL`` and/or ``OPENAI_API_KEY`` set: that provider, any OpenAI-compatible one.
- ``AGENT_MODEL`` names the model; ``AGENT_MODEL_TIMEOUT_S`` bounds one HTTP call (the
  activity's own start-to-close timeout bounds it too, whichever is shorter);
  ``AGENT_MAX_RETRY_AFTER_S`` caps how long a provider's ``Retry-After`` may park one call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from workerkit.settings import seconds_setting

SIMULATOR_BASE_URL = "http://127.0.0.1:8400/v1"
SIMULATOR_MODEL = "sim-gpt"
HOSTED_DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class ModelSettings:
    base_url: str | None
    api_key: str
    model: str
    timeout_s: float
    max_retry_after_s: float = 120.0

    @classmethod
    def from_env(cls) -> ModelSettings:
        base_url = os.environ.get("OPENAI_BASE_URL") or None
        api_key = os.environ.get("OPENAI_API_KEY") or None
        use_simulator = base_url is None and api_key is None
        if use_simulator:
            base_url = SIMULATOR_BASE_URL
        timeout_s = seconds_setting("AGENT_MODEL_TIMEOUT_S", 30)
        max_retry_after_s = seconds_setting("AGENT_MAX_RETRY_AFTER_S", 120)
        return cls(
            base_url=base_url,
            api_key=api_key or "sim",
            model=os.environ.get("AGENT_MODEL") or (SIMULATOR_MODEL if use_simulator else HOSTED_DEFAULT_MODEL),
            timeout_s=timeout_s,
            max_retry_after_s=max_retry_after_s,
        )
