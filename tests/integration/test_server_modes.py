"""The harness's other server sources: a testcontainers server and an existing cluster."""

from __future__ import annotations

import pytest
from harness import container_server

from devstack.temporal_setup import server_healthy


def test_container_server_answers() -> None:
    # Skips, with the reason printed in the summary, when no Docker engine is present.
    with container_server() as address:
        assert server_healthy(address)


def test_existing_mode_requires_an_address(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from harness import running_stack

    monkeypatch.setenv("TEST_TEMPORAL", "existing")
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    with pytest.raises(pytest.fail.Exception, match="TEST_TEMPORAL=existing needs TEMPORAL_ADDRESS"):
        with running_stack(tmp_path):
            pass
