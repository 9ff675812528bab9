"""Fixtures shared by the cross-service tests: one real stack per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import client_for, running_stack
from temporalio.client import Client

from devstack.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
async def agents_client(stack: Stack) -> Client:
    return await client_for(stack, "agents")
