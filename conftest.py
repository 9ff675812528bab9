"""Test tiers for the whole repository: ``unit`` (no server process: `make test-unit`),
``integration`` (a Temporal server, the workers, a browser, built binaries: `make test-integration`)
and ``images`` (the chart's pods as containers of the built images: `make test-images`).

A module is integration or images when its path is listed below; everything else is unit. The agent's
workflow tests run first: they are the quickest way to learn that the agent's logic broke.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).parent

INTEGRATION = (
    "tests/integration/",
    "services/agent-py/tests/workflows/test_support_agent_external_tools.py",
    "tests/deploy/",
    "tests/codec/test_cross_language.py",
    "tests/ops/test_devstack_prometheus.py",
    "tests/replay/test_replay_check.py",
    "ops/devstack/tests/test_processes.py",
    "services/business-py/tests/test_business_nexus.py",
    "services/business-py/tests/test_store_conformance.py",
    "services/model-server/tests/test_modelserver_cli.py",
    "codec-server/python/tests/test_failure_encryption.py",
    "codec-server/server/tests/test_temporal_cli.py",
)
"""Modules that start a Temporal server, a worker or another server process, or a browser."""

IMAGES = ("tests/images/",)
"""Modules that run the project's container images (`make base-images images` builds them)."""

FIRST = "services/agent-py/tests/workflows/"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (a CI timeout, a `kill`) would end the interpreter at once and leave every server
    # and worker process a test started running. As KeyboardInterrupt, pytest stops the session
    # and still runs each fixture's teardown and each `finally`.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    config.addinivalue_line("markers", "unit: no server process is started (make test-unit)")
    config.addinivalue_line("markers", "integration: real servers and worker processes (make test-integration)")
    config.addinivalue_line("markers", "images: the chart's pods as containers of the built images (make test-images)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.relative_to(ROOT).as_posix()
        tier = "images" if where.startswith(IMAGES) else "integration" if where.startswith(INTEGRATION) else "unit"
        item.add_marker(getattr(pytest.mark, tier))
    # Stable: the rest keeps its order.
    items.sort(key=lambda item: not item.path.relative_to(ROOT).as_posix().startswith(FIRST))
