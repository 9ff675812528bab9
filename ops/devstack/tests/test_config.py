from __future__ import annotations

import pytest

from devstack.config import PORTS, StackConfig


def test_every_port_has_a_default_and_an_override(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = StackConfig.from_env().ports
    assert set(defaults) == set(PORTS)
    assert len(set(defaults.values())) == len(defaults), "two processes share a default port"
    monkeypatch.setenv("DEVSTACK_MODEL_SERVER_PORT", "18400")
    assert StackConfig.from_env().ports["model_server"] == 18400


@pytest.mark.parametrize("bad", ["http", "0", "70000", ""])
def test_malformed_port_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("DEVSTACK_TEMPORAL_PORT", bad)
    with pytest.raises(ValueError, match="DEVSTACK_TEMPORAL_PORT must be a port number"):
        StackConfig.from_env()
