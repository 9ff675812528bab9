"""Helpers shared by the payload_codec tests."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload

from payload_codec import KeyRing

VECTORS_PATH = Path(__file__).resolve().parents[2] / "testdata" / "vectors.json"


def load_vectors() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def payload_from_json(obj: dict[str, Any]) -> Payload:
    return Payload(
        metadata={k: base64.b64decode(v) for k, v in obj.get("metadata", {}).items()},
        data=base64.b64decode(obj.get("data", "")),
    )


def vector_ring(vectors: dict[str, Any], active: str | None = None) -> KeyRing:
    keys = {k: base64.b64decode(v) for k, v in vectors["keys"].items()}
    return KeyRing(keys, {"*": active} if active else {})


def random_key_b64(seed: int) -> str:
    return base64.b64encode(bytes([seed]) * 32).decode()


def all_secret_forms(material: bytes) -> list[str]:
    """Every textual form a leaked key could take in a message."""
    return [
        base64.b64encode(material).decode(),
        base64.b64encode(material).decode().rstrip("="),
        material.hex(),
        repr(material),
        material.decode("latin-1"),
    ]
