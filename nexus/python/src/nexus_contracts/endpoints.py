"""The endpoint list in ``nexus/endpoints.json``: which endpoint routes to which namespace and queue."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# nexus/python/src/nexus_contracts/endpoints.py -> nexus/
CONTRACTS_DIR = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Endpoint:
    name: str
    target_namespace: str
    target_task_queue: str
    service: str
    description: str


def load_endpoints(path: Path | None = None) -> list[Endpoint]:
    """Read the endpoint list; the dev stack, tests and cluster scripts all apply this one file."""
    path = path or CONTRACTS_DIR / "endpoints.json"
    try:
        raw = json.loads(path.read_text())
        return [Endpoint(**entry) for entry in raw["endpoints"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"cannot read the Nexus endpoint list {path}: {err}") from err
