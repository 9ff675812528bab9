"""A metrics hook for the codec that depends on no metrics backend.

The codec tells a :class:`CodecObserver` about every payload it encrypts or decrypts and every
one it cannot; a worker wires that to its meter (Temporal's, Prometheus'...). Label values are
bounded: key ids are those of the key ring, an id the ring does not hold is reported as
:data:`UNKNOWN_KEY_ID` (ids come from the wire, so a forger could otherwise mint series), and a
payload that names none as :data:`NO_KEY_ID`.
"""

from __future__ import annotations

from typing import Literal, Protocol

Operation = Literal["encode", "decode"]

UNKNOWN_KEY_ID = "unknown"
NO_KEY_ID = "none"

# The names every observer exports, the same in the Go library (codec package).
PAYLOADS_METRIC = "codec_payloads"
BYTES_METRIC = "codec_payload_bytes"
FAILURES_METRIC = "codec_failures"
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"


class CodecObserver(Protocol):
    def succeeded(self, operation: Operation, key_id: str, size: int) -> None:
        """One payload done; ``size`` is its ciphertext length in bytes."""

    def failed(self, operation: Operation, key_id: str, reason: str) -> None:
        """One payload refused; ``reason`` is a fixed label (``DecodeError.reason``)."""
