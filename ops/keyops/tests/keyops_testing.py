"""Shared helpers for the keyops unit tests (a unique module name: `conftest` is taken)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from temporalio.api.common.v1 import Payload

from payload_codec import EncryptionCodec, KeyRing

KEY_A = "alpha-20260101-aaaaaa"
KEY_B = "beta-20260201-bbbbbb"
MATERIAL = {KEY_A: bytes(range(32)), KEY_B: bytes(range(32, 64))}


def ring(active: str) -> KeyRing:
    return KeyRing(MATERIAL, {"*": active})


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def encrypted(text: str, key_id: str) -> Payload:
    return EncryptionCodec(ring(key_id), "agents").encode_one(plain(text))


def write_file_ring(path: Path, active: str = KEY_A, keys: tuple[str, ...] = (KEY_A,)) -> None:
    document = {
        "keys": {k: base64.b64encode(MATERIAL[k]).decode() for k in keys},
        "active": {"*": active},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    path.chmod(0o600)


def write_dir_ring(directory: Path, active: str = KEY_A, keys: tuple[str, ...] = (KEY_A,)) -> None:
    directory.mkdir(exist_ok=True)
    for k in keys:
        (directory / f"{k}.key").write_text(base64.b64encode(MATERIAL[k]).decode() + "\n")
    (directory / "active").write_text(f"# managed by keyops\n*={active}\n")


def all_b64_material(paths: list[Path]) -> set[str]:
    """Every key's base64 text in the given rings: what must never appear in output."""
    out: set[str] = {base64.b64encode(m).decode() for m in MATERIAL.values()}
    for path in paths:
        if path.is_file():
            out.update(json.loads(path.read_text())["keys"].values())
        elif path.is_dir():
            out.update(p.read_text().strip() for p in path.glob("*.key"))
    return out
