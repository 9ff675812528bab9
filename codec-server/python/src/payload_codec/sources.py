"""Where a key ring comes from (SPEC §5.2): a file, a mounted Secret directory, or a variable.

A KMS or Vault integration implements :class:`KeySource` too; the codec never sees the source.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._redact import safe_id
from .errors import CodecConfigError
from .keyring import KeyRing, decode_key_material, is_valid_key_id

ENV_FILE = "CODEC_KEYRING_FILE"
ENV_DIR = "CODEC_KEYRING_DIR"
ENV_INLINE = "CODEC_KEYRING"
SOURCE_VARIABLES = (ENV_FILE, ENV_DIR, ENV_INLINE)

_KEY_SUFFIX = ".key"
_ACTIVE_FILE = "active"
_OWNERS_FILE = "owners"
_COMPRESSION_FILE = "compression"


@runtime_checkable
class KeySource(Protocol):
    def load(self) -> KeyRing:
        """Read and validate the key ring; raise :class:`CodecConfigError` if unusable."""
        ...


class FileKeySource:
    """A JSON key ring document (SPEC §5.1) in one file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> KeyRing:
        label = f"{ENV_FILE}={self.path}"
        try:
            text = self.path.read_bytes()
        except OSError as exc:
            raise CodecConfigError(f"cannot read the key ring file {label} ({exc.strerror or exc})") from None
        return KeyRing.from_json(text, source=label)

    def __repr__(self) -> str:
        return f"FileKeySource({str(self.path)!r})"


class DirectoryKeySource:
    """A mounted Kubernetes Secret: ``<key-id>.key`` files and an ``active`` file.

    ``active`` holds ``namespace=key-id`` lines; blank lines and lines starting with ``#`` are
    skipped. Hidden entries (the kubelet's ``..data`` links) and other files are ignored, which
    is what lets one Secret carry unrelated entries too.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> KeyRing:
        label = f"{ENV_DIR}={self.path}"
        try:
            entries = sorted(os.listdir(self.path))
        except OSError as exc:
            raise CodecConfigError(f"cannot read the key ring directory {label} ({exc.strerror or exc})") from None
        keys: dict[str, bytes] = {}
        for name in entries:
            if name.startswith(".") or not name.endswith(_KEY_SUFFIX):
                continue
            file = self.path / name
            if not file.is_file():
                continue
            key_id = name[: -len(_KEY_SUFFIX)]
            if not is_valid_key_id(key_id):
                raise CodecConfigError(
                    f"key file {name!r} in {label}: the name before .key must be 1-64 characters from [A-Za-z0-9._-]"
                )
            text = self._read(file, label)
            keys[key_id] = decode_key_material(text.strip(), key_id=key_id, source=f"{label} ({name})")
        active: dict[str, str] = {}
        active_shape = "namespace=key-id (*=key-id for the default)"
        for _, namespace, key_id in self._pairs(_ACTIVE_FILE, label, active_shape):
            if namespace in active:
                raise CodecConfigError(f"the active file in {label} names namespace {safe_id(namespace)!r} twice")
            active[namespace] = key_id
        # Written by keyops when a namespace's key is replaced (codec-server/README.md, "Which
        # keys a namespace may decode").
        owners: dict[str, list[str]] = {}
        for _, key_id, names in self._pairs(_OWNERS_FILE, label, "key-id=namespace[,namespace...]"):
            owners.setdefault(key_id, []).extend(n.strip() for n in names.split(",") if n.strip())
        # The namespaces that compress, from what size (SPEC §5.2).
        compression: dict[str, int] = {}
        for lineno, namespace, size in self._pairs(_COMPRESSION_FILE, label, "namespace=bytes (0 is off)"):
            if not size.isdigit():
                raise CodecConfigError(
                    f"line {lineno} of the compression file in {label} must be namespace=bytes (0 is off)"
                )
            compression[namespace] = int(size)
        return KeyRing(keys, active, source=label, owners=owners, compression=compression)

    def _pairs(self, name: str, label: str, shape: str) -> list[tuple[int, str, str]]:
        """``(line number, left, right)`` of the ``left=right`` lines of an optional file; blank
        lines and ``#`` comments are skipped, anything else is an error naming the line."""
        file = self.path / name
        if not file.exists():
            return []
        pairs = []
        for lineno, raw in enumerate(self._read(file, label).splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            left, sep, right = (part.strip() for part in line.partition("="))
            if not sep or not left or not right:
                raise CodecConfigError(f"line {lineno} of the {name} file in {label} must be {shape}")
            pairs.append((lineno, left, right))
        return pairs

    @staticmethod
    def _read(file: Path, label: str) -> str:
        try:
            return file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise CodecConfigError(f"cannot read {file.name!r} in {label} ({reason})") from None

    def __repr__(self) -> str:
        return f"DirectoryKeySource({str(self.path)!r})"


class EnvKeySource:
    """A JSON key ring document in ``CODEC_KEYRING`` (a Secret exposed as a variable)."""

    def __init__(self, environ: Mapping[str, str] | None = None, variable: str = ENV_INLINE) -> None:
        self._environ = os.environ if environ is None else environ
        self.variable = variable

    def load(self) -> KeyRing:
        text = self._environ.get(self.variable, "")
        if not text.strip():
            raise CodecConfigError(f"{self.variable} is not set or empty")
        return KeyRing.from_json(text, source=self.variable)

    def __repr__(self) -> str:
        # Never the value: it is the key ring itself.
        return f"EnvKeySource(variable={self.variable!r})"


def key_source_from_env(environ: Mapping[str, str] | None = None) -> KeySource:
    """The one key source the environment selects; none or several set is an error."""
    env = os.environ if environ is None else environ
    chosen = [name for name in SOURCE_VARIABLES if env.get(name, "").strip()]
    if not chosen:
        raise CodecConfigError(
            "no encryption key ring configured: set exactly one of "
            f"{', '.join(SOURCE_VARIABLES)} (see codec-server/README.md)"
        )
    if len(chosen) > 1:
        raise CodecConfigError(
            f"several key ring sources are set ({', '.join(chosen)}); set exactly one of {', '.join(SOURCE_VARIABLES)}"
        )
    (name,) = chosen
    if name == ENV_FILE:
        return FileKeySource(env[ENV_FILE].strip())
    if name == ENV_DIR:
        return DirectoryKeySource(env[ENV_DIR].strip())
    return EnvKeySource(env)


def keyring_from_env(environ: Mapping[str, str] | None = None) -> KeyRing:
    return key_source_from_env(environ).load()
