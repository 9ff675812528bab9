"""Key ring stores and the operations on them: rotate, activate, retire.

Two layouts of SPEC §5.2: one JSON document (``CODEC_KEYRING_FILE``) and a directory of
``<id>.key`` files plus an ``active`` file (``CODEC_KEYRING_DIR``, a Kubernetes Secret). Old keys
are never dropped by a rotation: every history written under them must still decode.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from keyops._fs import atomic_write
from keyops.errors import KeyOpsError
from payload_codec import DEFAULT_NAMESPACE, KEY_SIZE, CodecConfigError, DirectoryKeySource, KeyRing
from payload_codec.keyring import is_valid_key_id

_NAMESPACE = re.compile(r"[A-Za-z0-9._-]{1,255}")
_KEY_SUFFIX = ".key"
_ACTIVE_FILE = "active"
_OWNERS_FILE = "owners"
# Leaves room for "-YYYYMMDD-xxxxxx" inside the 64-character id limit.
_MAX_PREFIX = 40


def check_namespace(namespace: str) -> str:
    if namespace != DEFAULT_NAMESPACE and not _NAMESPACE.fullmatch(namespace):
        raise KeyOpsError(
            f"{namespace!r} is not a namespace name; use letters, digits, '.', '_', '-' or '*' for the default"
        )
    return namespace


def new_key_id(namespace: str, existing: frozenset[str] | set[str], now: datetime | None = None) -> str:
    """``<namespace>-YYYYMMDD-<6 hex>`` (``default-...`` for ``*``): sortable by day, unique by chance."""
    prefix = "default" if namespace == DEFAULT_NAMESPACE else namespace[:_MAX_PREFIX]
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    for _ in range(64):
        key_id = f"{prefix}-{day}-{secrets.token_hex(3)}"
        if key_id not in existing:
            return key_id
    raise KeyOpsError("could not find an unused key id; pass one with --key-id")


def new_key_material() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


class KeyRingStore(ABC):
    layout: Literal["file", "directory"]

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def load(self) -> KeyRing:
        """The ring as the workers will read it; raises KeyOpsError when unusable."""

    @abstractmethod
    def create(self) -> None:
        """Make an empty store where there is none."""

    @abstractmethod
    def add_key(self, key_id: str, material: bytes, activate_for: str | None) -> None:
        """Add a key and, if ``activate_for`` is set, make it that namespace's active key, in one
        step that readers see whole."""

    @abstractmethod
    def set_active(self, namespace: str, key_id: str) -> None: ...

    @abstractmethod
    def remove_key(self, key_id: str) -> None: ...

    def __str__(self) -> str:
        return str(self.path)


def _wrap_config_error(exc: CodecConfigError) -> KeyOpsError:
    return KeyOpsError(f"the key ring is not usable: {exc}")


class FileStore(KeyRingStore):
    """One JSON document (SPEC §5.1), rewritten whole on every change."""

    layout = "file"

    def exists(self) -> bool:
        return self.path.is_file()

    def _document(self) -> dict[str, Any]:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            raise KeyOpsError(
                f"there is no key ring at {self.path}; check the path, or pass --create to start a new one"
            ) from None
        except OSError as exc:
            raise KeyOpsError(f"cannot read the key ring {self.path} ({exc.strerror or exc})") from None
        try:
            KeyRing.from_json(text, source=str(self.path))
        except CodecConfigError as exc:
            raise _wrap_config_error(exc) from None
        document: dict[str, Any] = json.loads(text)
        document.setdefault("active", {})
        return document

    def _commit(self, document: dict[str, Any]) -> None:
        try:
            # Validated before it replaces anything: a broken ring would stop every worker.
            KeyRing.from_document(document, source=str(self.path))
        except CodecConfigError as exc:
            raise _wrap_config_error(exc) from None
        atomic_write(self.path, (json.dumps(document, indent=2) + "\n").encode())

    def load(self) -> KeyRing:
        return KeyRing.from_document(self._document(), source=str(self.path))

    def create(self) -> None:
        if not self.path.parent.is_dir():
            raise KeyOpsError(f"the directory {self.path.parent} does not exist; create it first")
        # Nothing is written until the first key exists: an empty ring is not a valid document.

    def add_key(self, key_id: str, material: bytes, activate_for: str | None) -> None:
        document = self._document() if self.exists() else {"keys": {}, "active": {}}
        document["keys"][key_id] = base64.b64encode(material).decode()
        if activate_for is not None:
            _activate(document, activate_for, key_id)
        self._commit(document)

    def set_active(self, namespace: str, key_id: str) -> None:
        document = self._document()
        _activate(document, namespace, key_id)
        self._commit(document)

    def remove_key(self, key_id: str) -> None:
        document = self._document()
        del document["keys"][key_id]
        document.get("owners", {}).pop(key_id, None)
        if not document.get("owners", True):
            del document["owners"]
        self._commit(document)


def _activate(document: dict[str, Any], namespace: str, key_id: str) -> None:
    """Make ``key_id`` the namespace's active key; the key it replaces keeps the namespace as
    its owner, so the codec server still knows whose histories hold it (codec-server/README.md,
    "Which keys a namespace may decode"). The ``*`` default's keys stay shared."""
    previous = document["active"].get(namespace)
    if namespace != DEFAULT_NAMESPACE and previous not in (None, key_id):
        owners = document.setdefault("owners", {}).setdefault(previous, [])
        if namespace not in owners:
            owners.append(namespace)
    document["active"][namespace] = key_id


class DirectoryStore(KeyRingStore):
    """``<id>.key`` files and an ``active`` file, as a Kubernetes Secret is mounted.

    Point it at a working copy of the Secret (a mounted Secret is read-only); the README shows
    how to pull the Secret into a directory and apply it back.
    """

    layout = "directory"

    def exists(self) -> bool:
        # An empty directory (a fresh Secret working copy) holds no ring yet.
        return self.path.is_dir() and any(
            p.name == _ACTIVE_FILE or (p.name.endswith(_KEY_SUFFIX) and not p.name.startswith("."))
            for p in self.path.iterdir()
        )

    def load(self) -> KeyRing:
        if not self.exists():
            raise KeyOpsError(
                f"there is no key ring in {self.path} (no .key files); "
                "check the path, or pass --create to start a new one"
            )
        try:
            return DirectoryKeySource(self.path).load()
        except CodecConfigError as exc:
            raise _wrap_config_error(exc) from None

    def create(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=False, exist_ok=True)
        except OSError as exc:
            raise KeyOpsError(f"cannot create the key ring directory {self.path} ({exc.strerror or exc})") from None

    def add_key(self, key_id: str, material: bytes, activate_for: str | None) -> None:
        # The key file lands before `active` names it, so a reader never sees an active id
        # without its key; a failure in between leaves an unused key, which is harmless.
        atomic_write(self.path / f"{key_id}{_KEY_SUFFIX}", (base64.b64encode(material).decode() + "\n").encode())
        if activate_for is not None:
            self.set_active(activate_for, key_id)
        else:
            self.load()

    def _lines(self, name: str) -> list[str]:
        file = self.path / name
        try:
            return file.read_text(encoding="utf-8").splitlines() if file.exists() else []
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyOpsError(f"cannot read {file} ({getattr(exc, 'strerror', None) or 'not UTF-8'})") from None

    def _owners(self) -> dict[str, list[str]]:
        return {key_id: sorted(names) for key_id, names in self.load().owners.items()}

    def _write_owners(self, owners: dict[str, list[str]]) -> None:
        text = "".join(f"{kid}={','.join(names)}\n" for kid, names in sorted(owners.items()))
        if text:
            atomic_write(self.path / _OWNERS_FILE, text.encode())
        elif (self.path / _OWNERS_FILE).exists():
            (self.path / _OWNERS_FILE).unlink()

    def set_active(self, namespace: str, key_id: str) -> None:
        # The replaced key's owner is recorded before `active` moves on (see _activate).
        previous = self.load().active.get(namespace)
        if namespace != DEFAULT_NAMESPACE and previous is not None and previous != key_id:
            owners = self._owners()
            if namespace not in owners.setdefault(previous, []):
                owners[previous].append(namespace)
                self._write_owners(owners)
        active_file = self.path / _ACTIVE_FILE
        lines = self._lines(_ACTIVE_FILE)
        entry = f"{namespace}={key_id}"
        replaced = False
        # Comments and the order of other namespaces stay as the operator wrote them.
        for i, raw in enumerate(lines):
            line = raw.strip()
            if line and not line.startswith("#") and line.partition("=")[0].strip() == namespace:
                lines[i] = entry
                replaced = True
        if not replaced:
            lines.append(entry)
        atomic_write(active_file, ("\n".join(lines) + "\n").encode())
        self.load()

    def remove_key(self, key_id: str) -> None:
        key_file = self.path / f"{key_id}{_KEY_SUFFIX}"
        owners = self._owners()
        if owners.pop(key_id, None) is not None:
            self._write_owners(owners)  # before the key goes: owners may only name keys in the ring
        try:
            key_file.unlink()
        except OSError as exc:
            raise KeyOpsError(f"cannot remove {key_file} ({exc.strerror or exc})") from None
        self.load()


def open_store(keyring_file: str | None, keyring_dir: str | None) -> KeyRingStore:
    if bool(keyring_file) == bool(keyring_dir):
        raise KeyOpsError("name exactly one key ring: --keyring-file PATH or --keyring-dir DIR")
    if keyring_file:
        return FileStore(Path(keyring_file))
    assert keyring_dir is not None
    return DirectoryStore(Path(keyring_dir))


@dataclass(frozen=True)
class Rotation:
    namespace: str
    new_key_id: str
    previous_key_id: str | None
    activated: bool
    key_count: int
    location: str
    layout: str
    unaffected: dict[str, str] = field(default_factory=dict)
    """Namespaces with their own active key, which a ``*`` rotation leaves as they are."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "new_key_id": self.new_key_id,
            "previous_key_id": self.previous_key_id,
            "activated": self.activated,
            "key_count": self.key_count,
            "keyring": self.location,
            "layout": self.layout,
            "unaffected_namespaces": self.unaffected,
        }


def rotate(
    store: KeyRingStore,
    namespace: str,
    *,
    key_id: str | None = None,
    activate: bool = True,
    create: bool = False,
    now: datetime | None = None,
) -> Rotation:
    """Add a fresh random key and (unless ``activate`` is false) make it ``namespace``'s active key."""
    check_namespace(namespace)
    if store.exists():
        ring: KeyRing | None = store.load()
    elif not create:
        store.load()  # raises the "there is no key ring here" sentence
        raise KeyOpsError(f"there is no key ring at {store}")
    elif not activate:
        raise KeyOpsError("a new key ring needs an active key; run without --stage")
    else:
        store.create()
        ring = None
    existing = ring.key_ids if ring else frozenset()
    if key_id is None:
        key_id = new_key_id(namespace, existing, now)
    elif not is_valid_key_id(key_id):
        raise KeyOpsError("--key-id must be 1-64 characters from [A-Za-z0-9._-]")
    elif key_id in existing:
        raise KeyOpsError(f"key id {key_id!r} is already in the key ring; choose a new one")
    previous = ring.active_id_for(namespace) if ring else None
    store.add_key(key_id, new_key_material(), namespace if activate else None)
    return _rotation(store, namespace, key_id, previous, activate)


def activate(store: KeyRingStore, namespace: str, key_id: str) -> Rotation:
    """Make a key that is already in the ring (added with ``rotate --stage``) the active one."""
    check_namespace(namespace)
    ring = store.load()
    if key_id not in ring:
        raise KeyOpsError(
            f"key id {key_id!r} is not in the key ring {store}; add it with `keyops rotate --stage` first"
        )
    previous = ring.active_id_for(namespace)
    store.set_active(namespace, key_id)
    return _rotation(store, namespace, key_id, previous, True)


def _rotation(store: KeyRingStore, namespace: str, key_id: str, previous: str | None, activated: bool) -> Rotation:
    """The ring as it is now, told as the change to ``namespace``; for the default namespace, also
    the namespaces with keys of their own, which the change does not reach."""
    after = store.load()
    unaffected = (
        {ns: kid for ns, kid in sorted(after.active.items()) if ns != DEFAULT_NAMESPACE}
        if namespace == DEFAULT_NAMESPACE
        else {}
    )
    return Rotation(namespace, key_id, previous, activated, len(after), str(store), store.layout, unaffected)


def retire(store: KeyRingStore, key_id: str) -> int:
    """Remove a key that no namespace uses for encryption; returns the number of keys left."""
    ring = store.load()
    if key_id not in ring:
        raise KeyOpsError(f"key id {key_id!r} is not in the key ring {store}")
    users = sorted(ns for ns, kid in ring.active.items() if kid == key_id)
    if users:
        raise KeyOpsError(f"key id {key_id!r} is the active key for {', '.join(users)}; rotate those namespaces first")
    store.remove_key(key_id)
    return len(store.load())
