"""Exceptions raised by the codec and the key sources.

Every message names key ids, variables and file paths, which are public, and never key material
or payload bytes: these messages end up in worker logs, workflow task failures and HTTP
responses.
"""

from __future__ import annotations

from ._redact import safe_id


class CodecError(Exception):
    """Base class of every error this package raises."""


class CodecConfigError(CodecError, ValueError):
    """A key ring or key source cannot be used; the message says what to change."""


class EncodeError(CodecError):
    """A payload cannot be encrypted."""

    reason = "encode_failed"


class NoActiveKeyError(EncodeError):
    """The key ring names no active key for the namespace (and no ``*`` default)."""

    reason = "no_active_key"

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        super().__init__(
            f"no active encryption key for namespace {namespace!r}: set active[{namespace!r}] "
            "or active['*'] in the key ring"
        )


class DecodeError(CodecError):
    """An encrypted payload cannot be decrypted.

    ``key_id`` is the id the payload names, in its printable form (see ``_redact.safe_id``).
    ``reason`` is a short, fixed label for metrics (``codec_failures_total``).
    """

    reason = "malformed"

    def __init__(self, message: str, key_id: str | None = None) -> None:
        self.key_id = safe_id(key_id) if key_id is not None else None
        super().__init__(message)


class MissingKeyIdError(DecodeError):
    reason = "missing_key_id"

    def __init__(self) -> None:
        super().__init__("missing encryption-key-id")


class UnknownKeyError(DecodeError):
    reason = "unknown_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(f'unknown encryption key id "{safe_id(key_id)}"', key_id)


class CiphertextTooShortError(DecodeError):
    reason = "too_short"

    def __init__(self, key_id: str) -> None:
        super().__init__(f'ciphertext too short for key id "{safe_id(key_id)}"', key_id)


class DecryptionError(DecodeError):
    reason = "auth_failed"

    def __init__(self, key_id: str) -> None:
        super().__init__(f'decryption failed for key id "{safe_id(key_id)}" (wrong key or tampered data)', key_id)


class DecompressionError(DecodeError):
    """The authenticated inner payload is compressed but cannot be inflated."""

    reason = "malformed"


class DecompressionLimitError(DecompressionError):
    reason = "decompression_limit"

    def __init__(self, key_id: str, limit: int) -> None:
        self.limit = limit
        super().__init__(f'decompressed payload exceeds limit ({limit} bytes) for key id "{safe_id(key_id)}"', key_id)


class MalformedPayloadError(DecodeError):
    """Decryption succeeded but the plaintext is not a serialized Payload."""
