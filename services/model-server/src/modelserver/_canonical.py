"""Canonical JSON and request digests.

The digest identifies "the same request" across retries and restarts, so it must not depend on
key order or whitespace the client happened to use.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def request_digest(body: Any) -> str:
    return sha256_hex(canonical_json(body))
