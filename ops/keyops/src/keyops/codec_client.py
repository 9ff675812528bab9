"""A client of the codec server's ``POST /{namespace}/decode``.

Decoding through the server (not with local keys) is what makes an export accountable: the
server checks the caller's token and writes who decoded which ciphertexts to its audit log.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from keyops.errors import KeyOpsError

# Under the server's default limits (8 MiB body, 10,000 payloads) after base64 growth.
MAX_BATCH_PAYLOADS = 1000
MAX_BATCH_DATA_BYTES = 4 * 1024 * 1024
_MAX_ERROR_CHARS = 300


class CodecServerDenied(KeyOpsError):
    """The codec server refused the request (authentication, authorization or decoding)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyOpsError(
            f"cannot read the token file {path} ({getattr(exc, 'strerror', None) or 'not UTF-8 text'})"
        ) from None
    if not token or any(c.isspace() for c in token):
        raise KeyOpsError(f"the token file {path} must hold one bearer token on one line")
    return token


def _batches(payloads: Sequence[Payload]) -> Iterator[Sequence[Payload]]:
    start, size = 0, 0
    for i, payload in enumerate(payloads):
        if i > start and (i - start >= MAX_BATCH_PAYLOADS or size + len(payload.data) > MAX_BATCH_DATA_BYTES):
            yield payloads[start:i]
            start, size = i, 0
        size += len(payload.data)
    if start < len(payloads):
        yield payloads[start:]


class CodecServerClient:
    def __init__(self, endpoint: str, token: str, *, timeout_s: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise KeyOpsError(f"--codec-endpoint must be an http(s) URL like http://127.0.0.1:8404, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"CodecServerClient({self.endpoint!r})"

    def decode(self, namespace: str, payloads: Sequence[Payload], *, user_agent: str) -> list[Payload]:
        """``user_agent`` is kept in the server's audit line: say what is being decoded and why."""
        decoded: list[Payload] = []
        for batch in _batches(payloads):
            decoded.extend(self._decode_batch(namespace, batch, user_agent))
        return decoded

    def _decode_batch(self, namespace: str, payloads: Sequence[Payload], user_agent: str) -> list[Payload]:
        url = f"{self.endpoint}/{urllib.parse.quote(namespace, safe='')}/decode"
        body = json_format.MessageToJson(Payloads(payloads=payloads), indent=None).encode()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "X-Namespace": namespace,
                "User-Agent": user_agent,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = response.read()
        except urllib.error.HTTPError as exc:
            raise CodecServerDenied(
                f"the codec server at {self.endpoint} refused to decode payloads of namespace {namespace!r} "
                f"(HTTP {exc.code}: {_server_message(exc)}); nothing was written",
                exc.code,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise KeyOpsError(
                f"cannot reach the codec server at {self.endpoint} ({reason}); check --codec-endpoint"
            ) from None
        result = Payloads()
        try:
            json_format.Parse(answer, result, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError):
            raise KeyOpsError(
                f"the codec server at {self.endpoint} answered with something that is not Payloads JSON"
            ) from None
        if len(result.payloads) != len(payloads):
            raise KeyOpsError(
                f"the codec server at {self.endpoint} returned {len(result.payloads)} payloads for {len(payloads)}"
            )
        return list(result.payloads)


def _server_message(exc: urllib.error.HTTPError) -> str:
    # The server's error texts are written for the caller (no payloads, no tokens); bound them
    # anyway, and fall back to the reason phrase for a proxy's HTML page.
    try:
        message = json.loads(exc.read()).get("error")
    except (ValueError, AttributeError, OSError):
        message = None
    text = message if isinstance(message, str) and message else (exc.reason or "no reason given")
    return str(text)[:_MAX_ERROR_CHARS]
