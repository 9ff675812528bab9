"""The codec-server wire format: protobuf JSON of ``temporal.api.common.v1.Payloads``.

Parsed by hand rather than with ``json_format`` so that every error is one sentence that
names a position in the request and never echoes request content (which may be plaintext
bound for encryption, or ciphertext an auditor should not see repeated in a log).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

_B64 = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


class WireError(ValueError):
    """The request body is not a Payloads JSON document; the message says where."""


def _b64decode(text: object, where: str) -> bytes:
    # Proto3 JSON: standard or URL-safe alphabet, padding optional.
    if not isinstance(text, str):
        raise WireError(f"{where} must be a base64 string")
    if _B64.fullmatch(text) is None:
        raise WireError(f"{where} is not valid base64")
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise WireError(f"{where} is not valid base64")
    try:
        return base64.b64decode(
            unpadded.replace("-", "+").replace("_", "/") + "=" * (-len(unpadded) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise WireError(f"{where} is not valid base64") from None


def _payload(obj: object, where: str) -> Payload:
    if not isinstance(obj, dict):
        raise WireError(f"{where} must be an object with metadata and data")
    payload = Payload()
    for field, value in obj.items():
        if value is None:
            continue
        if field == "metadata":
            if not isinstance(value, dict):
                raise WireError(f"{where}.metadata must be an object of name -> base64")
            for name, encoded in value.items():
                # Metadata names are echoed nowhere; the position is enough to find the entry.
                decoded = _b64decode(encoded, f"a {where}.metadata value")
                try:
                    payload.metadata[name] = decoded
                except (ValueError, TypeError):
                    # A lone surrogate (\ud800) is valid JSON but not a protobuf string.
                    raise WireError(f"a {where}.metadata name is not valid Unicode text") from None
        elif field == "data":
            payload.data = _b64decode(value, f"{where}.data")
        elif field in ("externalPayloads", "external_payloads"):
            try:
                json_format.ParseDict({"externalPayloads": value}, payload, ignore_unknown_fields=False)
            except (json_format.ParseError, TypeError, ValueError):
                raise WireError(
                    f"{where}.externalPayloads is not a list of external payload details"
                ) from None
        else:
            raise WireError(f"{where} has an unknown field; allowed: metadata, data, externalPayloads")
    return payload


def parse_payloads(body: bytes) -> list[Payload]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON, bad text encoding and over-long integers.
        raise WireError(
            'request body is not JSON; send {"payloads": [{"metadata": {...}, "data": "..."}]}'
        ) from None
    if not isinstance(document, dict):
        raise WireError('request body must be a JSON object {"payloads": [...]}')
    extra = set(document) - {"payloads"}
    if extra:
        raise WireError('request body has an unknown field; the only field is "payloads"')
    items: Any = document.get("payloads")
    if items is None:
        # protojson omits an empty repeated field, so {} is a valid empty Payloads.
        return []
    if not isinstance(items, list):
        raise WireError('"payloads" must be a list')
    return [_payload(item, f"payloads[{i}]") for i, item in enumerate(items)]


def _payload_json(payload: Payload) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metadata": {k: base64.b64encode(v).decode() for k, v in sorted(payload.metadata.items())},
        # Always present, even when empty: the UI reads `data` without a default.
        "data": base64.b64encode(payload.data).decode(),
    }
    if len(payload.external_payloads):
        out["externalPayloads"] = json_format.MessageToDict(payload)["externalPayloads"]
    return out


def render_payloads(payloads: list[Payload]) -> bytes:
    return json.dumps({"payloads": [_payload_json(p) for p in payloads]}, separators=(",", ":")).encode()
