"""Fixtures: one in-process simulator per session, reset before each test, and an openai client."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from modelserver.testing import SimulatorHandle, running_simulator


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[SimulatorHandle]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(shared_sim: SimulatorHandle) -> SimulatorHandle:
    shared_sim.reset()
    return shared_sim


@pytest.fixture
def client(sim: SimulatorHandle) -> Iterator[openai.OpenAI]:
    # max_retries=0: every fault must surface as the exception the agent would see first.
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=5.0) as c:
        yield c
