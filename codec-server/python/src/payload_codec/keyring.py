"""The key ring: every key usable for decryption, and the active key per namespace (SPEC §5)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._redact import KEY_ID_PATTERN, safe_id
from .errors import CodecConfigError, NoActiveKeyError, UnknownKeyError

KEY_SIZE = 32
DEFAULT_NAMESPACE = "*"
_OWNER = re.compile(r"\*|[A-Za-z0-9._-]{1,255}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def is_valid_key_id(key_id: object) -> bool:
    return isinstance(key_id, str) and KEY_ID_PATTERN.fullmatch(key_id) is not None


@dataclass(frozen=True)
class Key:
    id: str
    material: bytes

    def __repr__(self) -> str:
        # A Key printed in a log line or a traceback shows its (printable) id only.
        return f"Key(id={safe_id(self.id)!r})"

    __str__ = __repr__


def decode_key_material(text: str, *, key_id: str, source: str) -> bytes:
    """Standard base64, padding optional, to exactly 32 bytes; errors never echo the text."""
    if _BASE64.fullmatch(text) is None:
        raise CodecConfigError(
            f'key "{safe_id(key_id)}" in {source} is not valid base64 (standard alphabet A-Z a-z 0-9 + /)'
        )
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise CodecConfigError(f'key "{safe_id(key_id)}" in {source} is not valid base64 (bad length)')
    try:
        material = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CodecConfigError(f'key "{safe_id(key_id)}" in {source} is not valid base64') from None
    if len(material) != KEY_SIZE:
        raise CodecConfigError(
            f'key "{safe_id(key_id)}" in {source} decodes to {len(material)} bytes; AES-256 keys must be '
            f"exactly {KEY_SIZE} bytes (generate one with: openssl rand -base64 32)"
        )
    return material


def _describe_bad_id(key_id: object) -> str:
    # An id that fails validation may be key material pasted into the wrong place, so it is
    # described, never echoed.
    if not isinstance(key_id, str):
        return f"a key id of type {type(key_id).__name__}"
    return f"a {len(key_id)}-character key id that is not 1-64 characters from [A-Za-z0-9._-]"


class KeyRing:
    """Immutable set of keys plus the active key id per namespace (``*`` is the default)."""

    __slots__ = ("_keys", "_active", "_owners", "_compression")

    def __init__(
        self,
        keys: Mapping[str, bytes],
        active: Mapping[str, str],
        *,
        source: str = "the key ring",
        owners: Mapping[str, Iterable[str]] | None = None,
        compression: Mapping[str, int] | None = None,
    ) -> None:
        if not keys:
            raise CodecConfigError(f'{source} holds no keys; add at least one under "keys"')
        checked: dict[str, Key] = {}
        for key_id, material in keys.items():
            if not is_valid_key_id(key_id):
                raise CodecConfigError(f"{source} has {_describe_bad_id(key_id)}")
            if not isinstance(material, bytes | bytearray) or len(material) != KEY_SIZE:
                raise CodecConfigError(f'key "{safe_id(key_id)}" in {source} must be exactly {KEY_SIZE} bytes')
            checked[key_id] = Key(key_id, bytes(material))
        for namespace, key_id in active.items():
            if not isinstance(namespace, str) or not namespace or namespace != namespace.strip():
                raise CodecConfigError(f"{source} has an active entry with an empty or space-padded namespace name")
            where = f"active key for namespace {safe_id(namespace)!r} in {source}"
            if not is_valid_key_id(key_id):
                raise CodecConfigError(f"{where} is {_describe_bad_id(key_id)}")
            if key_id not in checked:
                raise CodecConfigError(f'{where} is "{safe_id(key_id)}", which is not one of its keys')
        recorded: dict[str, frozenset[str]] = {}
        for key_id, namespaces in (owners or {}).items():
            if key_id not in checked:
                raise CodecConfigError(f'{source} records owners of "{safe_id(key_id)}", which is not one of its keys')
            names = frozenset(namespaces)
            if not names or not all(isinstance(n, str) and _OWNER.fullmatch(n) for n in names):
                raise CodecConfigError(
                    f'owners of "{safe_id(key_id)}" in {source} must be a non-empty list of namespace names (or "*")'
                )
            recorded[key_id] = names
        for namespace, threshold in (compression or {}).items():
            if not isinstance(namespace, str) or not _OWNER.fullmatch(namespace):
                raise CodecConfigError(f"{source} has a compression entry for an invalid namespace name")
            if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
                raise CodecConfigError(
                    f"compression for namespace {safe_id(namespace)!r} in {source} must be a whole number "
                    "of bytes >= 0 (the smallest payload to compress; 0 is off)"
                )
        self._keys = checked
        self._active = dict(active)
        self._owners = recorded
        self._compression = dict(compression or {})

    @classmethod
    def from_document(cls, document: object, *, source: str) -> KeyRing:
        """Build from the parsed JSON document of SPEC §5.1."""
        if not isinstance(document, dict):
            raise CodecConfigError(f'{source} must be a JSON object with "keys" and "active"')
        unknown = sorted(set(document) - {"keys", "active", "owners", "compression"})
        if unknown:
            raise CodecConfigError(
                f"{source} has unknown field(s) {', '.join(map(repr, unknown))}; "
                'only "keys", "active", "owners" and "compression" are allowed'
            )
        raw_compression = document.get("compression", {})
        if not isinstance(raw_compression, dict):
            raise CodecConfigError(f'"compression" in {source} must be an object of namespace -> bytes')
        raw_owners = document.get("owners", {})
        if not isinstance(raw_owners, dict) or not all(isinstance(v, list) for v in raw_owners.values()):
            raise CodecConfigError(f'"owners" in {source} must be an object of key id -> list of namespaces')
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, dict):
            raise CodecConfigError(f'{source} must have "keys": an object of key id -> base64 key')
        raw_active = document.get("active", {})
        if not isinstance(raw_active, dict) or not all(isinstance(v, str) for v in raw_active.values()):
            raise CodecConfigError(f'"active" in {source} must be an object of namespace -> key id')
        keys: dict[str, bytes] = {}
        for key_id, text in raw_keys.items():
            if not is_valid_key_id(key_id):
                raise CodecConfigError(f"{source} has {_describe_bad_id(key_id)}")
            if not isinstance(text, str):
                raise CodecConfigError(f'key "{safe_id(key_id)}" in {source} must be a base64 string')
            keys[key_id] = decode_key_material(text, key_id=key_id, source=source)
        return cls(keys, raw_active, source=source, owners=raw_owners, compression=raw_compression)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str) -> KeyRing:
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            # Position only: the decoder's message quotes no input, but keep it that way.
            lineno = getattr(exc, "lineno", None)
            where = f" (line {lineno})" if lineno else ""
            raise CodecConfigError(f"{source} is not valid JSON{where}") from None
        return cls.from_document(document, source=source)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def active(self) -> Mapping[str, str]:
        """Namespace -> active key id (ids are public)."""
        return dict(self._active)

    def active_id_for(self, namespace: str) -> str | None:
        return self._active.get(namespace, self._active.get(DEFAULT_NAMESPACE))

    def active_for(self, namespace: str) -> Key:
        """The key that encrypts for ``namespace``: its own entry, else the ``*`` default."""
        key_id = self.active_id_for(namespace)
        if key_id is None:
            raise NoActiveKeyError(namespace)
        return self._keys[key_id]

    @property
    def owners(self) -> Mapping[str, frozenset[str]]:
        """Key id -> namespaces, as recorded in the document (rotation records a namespace's
        replaced key here, so the key keeps its namespace after it stops being active)."""
        return dict(self._owners)

    @property
    def compression(self) -> Mapping[str, int]:
        """Namespace -> compression threshold, as the document sets it (SPEC §5.1)."""
        return dict(self._compression)

    def compression_threshold_for(self, namespace: str) -> int:
        """The smallest serialized payload the namespace compresses: its own entry, else ``*``,
        else 0 (off). Off unless asked for: compressing attacker-supplied text next to a secret
        lets the ciphertext's length reveal the secret (SPEC §4)."""
        return self._compression.get(namespace, self._compression.get(DEFAULT_NAMESPACE, 0))

    def namespaces_of(self, key_id: str) -> frozenset[str]:
        """The namespaces whose payloads ``key_id`` encrypts (or encrypted): the recorded owners,
        plus every namespace whose own ``active`` entry names it. ``{"*"}`` is a shared key: the
        ``*`` default, or a key with no recorded owner that no namespace names (a key ring
        written before owners were recorded); any namespace may hold payloads under it."""
        named = {ns for ns, kid in self._active.items() if kid == key_id}
        owners = set(self._owners.get(key_id, frozenset())) | named
        return frozenset(owners or {DEFAULT_NAMESPACE})

    def key(self, key_id: str) -> Key:
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(key_id) from None

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        active = {safe_id(ns): safe_id(kid) for ns, kid in self._active.items()}
        return f"KeyRing(keys={sorted(safe_id(k) for k in self._keys)!r}, active={active!r})"
