"""Printing key ids safely.

Ids are public, but a document with ids and values swapped puts key material where an id
belongs, and a payload's id comes from the wire. Anything that decodes like a 32-byte key is
never printed; anything else is printed escaped and bounded. Same rule as the Go library.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

REDACTED = "<redacted: looks like key material>"
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MAX_SHOWN = 64
_KEY_SIZE = 32


def looks_like_key_material(text: str) -> bool:
    if len(text) in (43, 44):
        padded = text + "=" * (-len(text) % 4)
        for altchars in (None, b"-_"):
            try:
                if len(base64.b64decode(padded, altchars=altchars, validate=True)) == _KEY_SIZE:
                    return True
            except (binascii.Error, ValueError):
                continue
    if len(text) == 64:
        try:
            return len(bytes.fromhex(text)) == _KEY_SIZE
        except ValueError:
            return False
    return False


def safe_id(key_id: str) -> str:
    """The id as it may appear in a message, log line or metric: never key material."""
    if looks_like_key_material(key_id):
        return REDACTED
    if KEY_ID_PATTERN.fullmatch(key_id):
        return key_id
    shown = json.dumps(key_id[:_MAX_SHOWN], ensure_ascii=True)[1:-1]
    return shown + ("..." if len(key_id) > _MAX_SHOWN else "")
