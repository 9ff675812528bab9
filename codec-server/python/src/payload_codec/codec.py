"""The encrypting payload codec: SPEC §2 (encode) and §3 (decode) for one namespace."""

from __future__ import annotations

import hashlib
import hmac
import os
import zlib
from collections.abc import Callable, Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError as ProtobufDecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from ._redact import safe_id
from .errors import (
    CiphertextTooShortError,
    DecodeError,
    DecompressionError,
    DecompressionLimitError,
    DecryptionError,
    EncodeError,
    MalformedPayloadError,
    MissingKeyIdError,
    UnknownKeyError,
)
from .keyring import Key, KeyRing
from .observe import NO_KEY_ID, UNKNOWN_KEY_ID, CodecObserver

ENCODING = "encoding"
KEY_ID = "encryption-key-id"
ENCRYPTED = b"binary/encrypted"
ZLIB = b"binary/zlib"
NONCE_SIZE = 12
TAG_SIZE = 16
# Payloads over twice this size are compressed only if their first SAMPLE_BYTES shrink by at
# least 1/10 at zlib level 1 (SPEC §2): incompressible data (media, ciphertext, random ids) costs
# a 4 KiB trial instead of a full deflate.
SAMPLE_BYTES = 4096
DEFAULT_MAX_INFLATED_BYTES = 64 * 1024 * 1024

CONTENT_NAME_SCHEME = "hmac-sha256"

NonceSource = Callable[[int], bytes]


def serialize(payload: Payload) -> bytes:
    # Deterministic map ordering keeps Python and Go byte-identical for the shared vectors.
    return payload.SerializeToString(deterministic=True)


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get(ENCODING) == ENCRYPTED


def payload_key_id(payload: Payload) -> str | None:
    """The key id an encrypted payload names, in printable form (ids come from the wire)."""
    raw = _raw_key_id(payload)
    return safe_id(raw) if raw else None


def _raw_key_id(payload: Payload) -> str:
    return payload.metadata.get(KEY_ID, b"").decode("utf-8", errors="replace")


_DATA_TAG = b"\x12"  # Payload.data: field 2, length-delimited


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _worth_trying(plaintext: bytes) -> bool:
    if len(plaintext) <= 2 * SAMPLE_BYTES:
        return True
    return len(zlib.compress(plaintext[:SAMPLE_BYTES], 1)) * 10 <= SAMPLE_BYTES * 9


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM with the namespace's active key, after optional zlib compression.

    ``nonce_source(12)`` must return 12 fresh random bytes; it exists so the shared test
    vectors can inject fixed nonces. Never override it outside tests: a repeated nonce under one
    key breaks GCM's confidentiality and integrity.
    """

    def __init__(
        self,
        keyring: KeyRing,
        namespace: str,
        compression_threshold: int | None = None,
        max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
        *,
        nonce_source: NonceSource = os.urandom,
        observer: CodecObserver | None = None,
    ) -> None:
        if compression_threshold is None:
            # The key ring decides, per namespace (SPEC §5.1); off when it says nothing.
            compression_threshold = keyring.compression_threshold_for(namespace)
        if compression_threshold < 0:
            raise ValueError("compression_threshold must be >= 0 (0 disables compression)")
        if max_inflated_bytes <= 0:
            raise ValueError("max_inflated_bytes must be > 0")
        self.keyring = keyring
        self.namespace = namespace
        self.compression_threshold = compression_threshold
        self.max_inflated_bytes = max_inflated_bytes
        self._nonce_source = nonce_source
        self.observer = observer
        # Keyed by the Key itself (id and material), so a replaced key ring never reuses a cipher.
        self._ciphers: dict[Key, AESGCM] = {}
        self._prefixes: dict[str, bytes] = {}
        self._name_keys: dict[Key, bytes] = {}

    def __repr__(self) -> str:
        return (
            f"EncryptionCodec(namespace={self.namespace!r}, keyring={self.keyring!r}, "
            f"compression_threshold={self.compression_threshold})"
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    def encode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        # Resolved once per batch so one batch never mixes keys during a rotation.
        key = self._active_key()
        return [self._encode_one(p, key) for p in payloads]

    def decode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        return self._encode_one(payload, self._active_key())

    def _active_key(self) -> Key:
        try:
            return self.keyring.active_for(self.namespace)
        except EncodeError as err:
            if self.observer is not None:
                self.observer.failed("encode", NO_KEY_ID, err.reason)
            raise

    def _encode_one(self, payload: Payload, key: Key) -> Payload:
        plaintext = serialize(payload)
        threshold = self.compression_threshold
        # Never compress what this codec could not inflate again (SPEC §2): a payload larger
        # than the inflate bound is stored as it is, so everything written stays readable.
        if threshold > 0 and threshold <= len(plaintext) <= self.max_inflated_bytes and _worth_trying(plaintext):
            compressed = zlib.compress(plaintext, 1)
            if len(compressed) < len(plaintext):
                plaintext = serialize(Payload(metadata={ENCODING: ZLIB}, data=compressed))
        nonce = self._nonce_source(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce source returned {len(nonce)} bytes; GCM needs {NONCE_SIZE}")
        # The encoded Payload is written as its serialization (the metadata prefix, the data
        # field's tag and length, the nonce) with GCM sealing straight into the buffer behind it,
        # then parsed once: a large payload is copied once fewer than by building it field by
        # field, and allocations of its size are what the codec's cost is made of.
        size = NONCE_SIZE + len(plaintext) + TAG_SIZE
        head = self._prefix(key) + _DATA_TAG + _varint(size)
        buf = bytearray(len(head) + size)
        buf[: len(head)] = head
        buf[len(head) : len(head) + NONCE_SIZE] = nonce
        self._cipher(key).encrypt_into(nonce, plaintext, None, memoryview(buf)[len(head) + NONCE_SIZE :])
        del plaintext
        encoded = Payload.FromString(buf)
        if self.observer is not None:
            self.observer.succeeded("encode", key.id, size)
        return encoded

    def _prefix(self, key: Key) -> bytes:
        """The deterministic serialization of the encoded payload's metadata (SPEC §2 step 5)."""
        prefix = self._prefixes.get(key.id)
        if prefix is None:
            prefix = self._prefixes[key.id] = serialize(
                Payload(metadata={ENCODING: ENCRYPTED, KEY_ID: key.id.encode()})
            )
        return prefix

    def decode_one(self, payload: Payload, *, max_inflated_bytes: int | None = None) -> Payload:
        """Decode one payload; ``max_inflated_bytes`` lowers this call's inflate bound (a caller
        with a budget for several payloads passes what is left of it)."""
        if not is_encrypted(payload):
            return payload
        limit = self.max_inflated_bytes
        if max_inflated_bytes is not None:
            limit = min(limit, max_inflated_bytes)
        if self.observer is None:
            return self._decode_encrypted(payload, limit)[0]
        key_id = _raw_key_id(payload)
        try:
            decoded, size = self._decode_encrypted(payload, limit)
        except DecodeError as err:
            label = key_id if key_id in self.keyring else (UNKNOWN_KEY_ID if key_id else NO_KEY_ID)
            self.observer.failed("decode", label, err.reason)
            raise
        self.observer.succeeded("decode", key_id, size)
        return decoded

    def _decode_encrypted(self, payload: Payload, limit: int) -> tuple[Payload, int]:
        """The decoded payload and the ciphertext's size (reading ``payload.data`` copies it)."""
        key_id = _raw_key_id(payload)
        if not key_id:
            raise MissingKeyIdError()
        if key_id not in self.keyring:
            raise UnknownKeyError(key_id)
        key = self.keyring.key(key_id)
        data = payload.data
        if len(data) < NONCE_SIZE + TAG_SIZE:
            raise CiphertextTooShortError(key_id)
        view = memoryview(data)  # slices of a view are not copies
        try:
            plaintext = self._cipher(key).decrypt(view[:NONCE_SIZE], view[NONCE_SIZE:], None)
        except InvalidTag:
            raise DecryptionError(key_id) from None
        size = len(data)
        del view, data
        inner = self._parse(plaintext, key_id)
        if inner.metadata.get(ENCODING) == ZLIB:
            inner = self._parse(self._inflate(inner.data, key_id, limit), key_id)
        return inner, size

    @staticmethod
    def _inflate(data: bytes, key_id: str, limit: int) -> bytes:
        inflater = zlib.decompressobj()
        try:
            # max_length bounds memory: a tiny authenticated bomb cannot inflate to gigabytes.
            out = inflater.decompress(data, limit + 1)
        except zlib.error:
            raise DecompressionError(
                f'compressed payload for key id "{safe_id(key_id)}" is corrupt', key_id
            ) from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise DecompressionLimitError(key_id, limit)
        if not inflater.eof:
            raise DecompressionError(
                f'compressed payload for key id "{safe_id(key_id)}" is truncated', key_id
            )
        return out

    @staticmethod
    def _parse(data: bytes, key_id: str) -> Payload:
        payload = Payload()
        try:
            payload.ParseFromString(data)
        except ProtobufDecodeError:
            raise MalformedPayloadError(
                f'decrypted data for key id "{safe_id(key_id)}" is not a serialized Payload', key_id
            ) from None
        return payload

    def content_name(self, data: bytes) -> str:
        """A name for ``data`` that does not reveal it: ``hmac-sha256:<key id>:<64 hex>``, HMAC
        under a key derived from the namespace's active key. A plain SHA-256 name lets anyone
        who sees it confirm a guess of the content ("yes", an account number); this one needs
        the key. Equal content under one key gets one name (deduplication), and the key id in the
        name keeps names checkable after a rotation, as long as the key ring holds that key."""
        key = self._active_key()
        return f"{CONTENT_NAME_SCHEME}:{key.id}:{self._name_mac(key, data)}"

    def check_content_name(self, name: str, data: bytes) -> bool:
        """Whether ``name`` (from :meth:`content_name`) names ``data``; UnknownKeyError when the
        key ring no longer holds the key it was made with."""
        scheme, _, rest = name.partition(":")
        key_id, _, mac = rest.rpartition(":")
        if scheme != CONTENT_NAME_SCHEME or not key_id:
            return False
        return hmac.compare_digest(self._name_mac(self.keyring.key(key_id), data), mac)

    def _name_mac(self, key: Key, data: bytes) -> str:
        name_key = self._name_keys.get(key)
        if name_key is None:
            # A key of its own for names (HKDF), never the encryption key itself.
            name_key = self._name_keys[key] = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"payload-codec content names v1"
            ).derive(key.material)
        return hmac.new(name_key, data, hashlib.sha256).hexdigest()

    def _cipher(self, key: Key) -> AESGCM:
        cipher = self._ciphers.get(key)
        if cipher is None:
            cipher = self._ciphers[key] = AESGCM(key.material)
        return cipher
