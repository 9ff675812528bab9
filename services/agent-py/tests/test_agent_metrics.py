"""The agent's metric label values and price table (the recording itself is covered by
tests/integration/test_metrics.py against a real worker)."""

from __future__ import annotations

import pytest

from agent.llm.types import ModelErrorType
from agent.metrics import (
    ENV_GAUGE_INTERVAL,
    ENV_PRICES,
    PriceTableError,
    cost_usd,
    gauge_interval,
    model_prices,
    outcome_of,
)
from workerkit import ConfigError


def test_outcomes_are_the_catalogued_set() -> None:
    assert outcome_of(None) == "ok"
    assert outcome_of(ModelErrorType.RATE_LIMITED) == "rate_limited"
    assert outcome_of(ModelErrorType.CONTEXT_LENGTH) == "context_length"
    assert outcome_of("SomethingNew") == "other"  # never the raw type: the label stays bounded


def test_price_table_defaults_overrides_and_errors() -> None:
    prices = model_prices({ENV_PRICES: '{"my-model": [0.5, 1.5], "gpt-4o-mini": [1, 2]}'})
    assert prices["my-model"] == (0.5, 1.5) and prices["gpt-4o-mini"] == (1.0, 2.0)
    assert prices["sim-gpt"] == model_prices({})["sim-gpt"]  # the simulator keeps its nominal price
    assert cost_usd(prices, "my-model", 1_000_000, 2_000_000) == pytest.approx(3.5)
    assert cost_usd(prices, "unpriced", 10, 10) is None
    for bad in ('{"m": [1]}', '{"m": [-1, 1]}', '["m"]', "not json", '{"m": ["a", "b"]}'):
        with pytest.raises(PriceTableError, match=f"{ENV_PRICES} must be a JSON object"):
            model_prices({ENV_PRICES: bad})


def test_gauge_interval() -> None:
    assert gauge_interval({}) == 10
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(ConfigError, match=f"{ENV_GAUGE_INTERVAL} must be a positive number"):
            gauge_interval({ENV_GAUGE_INTERVAL: bad})
