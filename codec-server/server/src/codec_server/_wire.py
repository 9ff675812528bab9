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
from collections.abc import Iterator
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
                raise WireError(f"{where}.externalPayloads is not a list of external payload details") from None
        else:
            raise WireError(f"{where} has an unknown field; allowed: metadata, data, externalPayloads")
    return payload


class TooManyPayloads(WireError):
    """More payloads than a request may carry; raised before the rest of the body is parsed."""


_WS = " \t\n\r"
_NOT_JSON = 'request body is not JSON; send {"payloads": [{"metadata": {...}, "data": "..."}]}'


class _Scanner:
    """Walks ``{"payloads": [item, ...]}`` one item at a time, so a body with too many payloads
    is refused at the first item over the limit instead of after parsing all of them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._decoder = json.JSONDecoder()

    def skip(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.skip() != char:
            raise WireError(_NOT_JSON)
        self.pos += 1

    def value(self) -> Any:
        self.skip()
        try:
            value, self.pos = self._decoder.raw_decode(self.text, self.pos)
        except (ValueError, RecursionError):
            # ValueError covers bad JSON and over-long integers.
            raise WireError(_NOT_JSON) from None
        return value


def parse_payloads(body: bytes, max_payloads: int | None = None) -> list[Payload]:
    try:
        text = body.decode("utf-8-sig" if body.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError:
        raise WireError(_NOT_JSON) from None
    scan = _Scanner(text)
    if scan.skip() != "{":
        scan.value()  # valid JSON of another shape gets the shape message, anything else "not JSON"
        raise WireError('request body must be a JSON object {"payloads": [...]}')
    scan.pos += 1
    payloads: list[Payload] | None = None
    first = True
    while True:
        char = scan.skip()
        if char == "}" and first:
            scan.pos += 1
            break
        if not first:
            if char == "}":
                scan.pos += 1
                break
            scan.expect(",")
        first = False
        name = scan.value()
        if not isinstance(name, str):
            raise WireError(_NOT_JSON)
        scan.expect(":")
        if name != "payloads":
            scan.value()
            raise WireError('request body has an unknown field; the only field is "payloads"')
        if payloads is not None:
            raise WireError('request body has "payloads" twice')
        payloads = _payload_list(scan, max_payloads)
    if scan.skip():
        raise WireError(_NOT_JSON)
    # protojson omits an empty repeated field, so {} is a valid empty Payloads.
    return payloads or []


def _payload_list(scan: _Scanner, max_payloads: int | None) -> list[Payload]:
    char = scan.skip()
    if char != "[":
        if scan.value() is None:
            return []
        raise WireError('"payloads" must be a list')
    scan.pos += 1
    out: list[Payload] = []
    if scan.skip() == "]":
        scan.pos += 1
        return out
    while True:
        if max_payloads is not None and len(out) == max_payloads:
            raise TooManyPayloads(f"at most {max_payloads} payloads per request")
        out.append(_payload(scan.value(), f"payloads[{len(out)}]"))
        if scan.skip() == "]":
            scan.pos += 1
            return out
        scan.expect(",")


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
    return b"".join(render_chunks(payloads))


def render_chunks(payloads: list[Payload], piece_bytes: int = 256 * 1024) -> Iterator[bytes]:
    """The response in pieces of about ``piece_bytes``: memory holds one piece, never the whole
    response beside the decoded payloads."""
    piece = bytearray(b'{"payloads":[')
    for i, payload in enumerate(payloads):
        if i:
            piece += b","
        piece += json.dumps(_payload_json(payload), separators=(",", ":")).encode()
        if len(piece) >= piece_bytes:
            yield bytes(piece)
            piece = bytearray()
    piece += b"]}"
    yield bytes(piece)
