"""Encrypting payload codec for Temporal, byte-compatible with the Go library (SPEC.md)."""

from ._redact import safe_id
from .codec import EncryptionCodec, is_encrypted, payload_key_id
from .converter import data_converter, data_converter_from_env
from .errors import (
    CiphertextTooShortError,
    CodecConfigError,
    CodecError,
    DecodeError,
    DecompressionError,
    DecompressionLimitError,
    DecryptionError,
    EncodeError,
    MalformedPayloadError,
    MissingKeyIdError,
    NoActiveKeyError,
    UnknownKeyError,
)
from .keyring import DEFAULT_NAMESPACE, KEY_SIZE, Key, KeyRing
from .observe import NO_KEY_ID, UNKNOWN_KEY_ID, CodecObserver
from .sources import (
    DirectoryKeySource,
    EnvKeySource,
    FileKeySource,
    KeySource,
    key_source_from_env,
    keyring_from_env,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "KEY_SIZE",
    "NO_KEY_ID",
    "UNKNOWN_KEY_ID",
    "CiphertextTooShortError",
    "CodecObserver",
    "CodecConfigError",
    "CodecError",
    "DecodeError",
    "DecompressionError",
    "DecompressionLimitError",
    "DecryptionError",
    "DirectoryKeySource",
    "EncodeError",
    "EncryptionCodec",
    "EnvKeySource",
    "FileKeySource",
    "Key",
    "KeyRing",
    "KeySource",
    "MalformedPayloadError",
    "MissingKeyIdError",
    "NoActiveKeyError",
    "UnknownKeyError",
    "data_converter",
    "data_converter_from_env",
    "is_encrypted",
    "payload_key_id",
    "safe_id",
    "key_source_from_env",
    "keyring_from_env",
]
