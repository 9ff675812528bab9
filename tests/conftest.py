"""Fixtures shared by the cross-service tests: one real stack per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from payload_codec import FileKeySource, data_converter
from temporalio.client import Client

from devstack.stack import Stack
from harness import running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
async def agents_client(stack: Stack) -> Client:
    return await client_for(stack, "agents")


async def client_for(stack: Stack, namespace: str) -> Client:
    """A client with the stack's key ring, as every real client of the system has."""
    ring = FileKeySource(stack.config.keyring_path).load()
    return await Client.connect(
        stack.temporal_address, namespace=namespace, data_converter=data_converter(ring, namespace)
    )
