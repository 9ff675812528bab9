from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib puts no test directory on sys.path, and the root's `tests/` already owns
# the name `conftest`; shared helpers live in a uniquely named module next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from codec_server_testing import Issuer, RunningServer, run_server


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    with Issuer().serve() as running:
        yield running


@pytest.fixture(scope="session")
def server(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("codec-server"), issuer) as running:
        yield running
