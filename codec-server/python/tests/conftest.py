from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test directory on sys.path, and the root's `tests/` already owns
# the name `conftest`; shared helpers live in a uniquely named module next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from payload_codec_testing import load_vectors


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return load_vectors()
