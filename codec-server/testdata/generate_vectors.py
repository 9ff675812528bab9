"""Write vectors.json, the shared conformance vectors of SPEC.md §7.

Deterministic: keys and nonces are derived from fixed labels, so running it again produces the
same file (zlib output aside, which is why compressed vectors are not byte-exact). It follows
the spec with `cryptography` and protobuf directly rather than through payload_codec, so the
vectors are a second implementation that the libraries are checked against, not a copy of one.

    cd /work/main && uv run python codec-server/testdata/generate_vectors.py
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

OUT = Path(__file__).with_name("vectors.json")
THRESHOLD = 4096
SAMPLE_BYTES = 4096
SPEC_VERSION = 2


def derive(label: str, size: int) -> bytes:
    """Fixed pseudo-random bytes: SHA-256 in counter mode over a label. Test data only."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


# The third key is the one hard-coded in Temporal's published Python encryption sample.
KEYS: dict[str, bytes] = {
    "k-2026-11": derive("codec-vectors key k-2026-11", 32),
    "k-2026-05": derive("codec-vectors key k-2026-05", 32),
    "test-key-id": b"test-key-test-key-test-key-test!",
}
# Only in the decode_errors vectors: a key that the ring does not hold.
RETIRED_KEY = derive("codec-vectors key k-retired", 32)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def payload_json(p: Payload, order: list[str] | None = None) -> dict[str, Any]:
    # Sorted unless an order is given: protobuf map iteration order is not stable across runs.
    keys = order if order is not None else sorted(p.metadata)
    return {"metadata": {k: b64(p.metadata[k]) for k in keys}, "data": b64(p.data)}


def seal(plain: Payload, key_id: str, key: bytes, nonce: bytes, threshold: int) -> tuple[Payload, bool]:
    """SPEC §2. Returns the encoded payload and whether it was compressed."""
    s = plain.SerializeToString(deterministic=True)
    compressed = False
    # SPEC §2 step 2: payloads over two samples are tried only when the first sample shrinks by
    # at least a tenth at level 1.
    sample_pays = len(s) <= 2 * SAMPLE_BYTES or len(zlib.compress(s[:SAMPLE_BYTES], 1)) * 10 <= SAMPLE_BYTES * 9
    if threshold > 0 and len(s) >= threshold and sample_pays:
        z = zlib.compress(s, 6)
        if len(z) < len(s):
            s = Payload(metadata={"encoding": b"binary/zlib"}, data=z).SerializeToString(deterministic=True)
            compressed = True
    data = nonce + AESGCM(key).encrypt(nonce, s, None)
    return Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": key_id.encode()}, data=data
    ), compressed


def sample_encode(plain: Payload, key_id: str, key: bytes, nonce: bytes) -> Payload:
    """Exactly what temporalio/samples-python encryption/codec.py does (nonce injected)."""
    return Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": key_id.encode()},
        data=nonce + AESGCM(key).encrypt(nonce, plain.SerializeToString(), None),
    )


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value, separators=(",", ":")).encode())


def sized_json_payload(serialized_size: int) -> Payload:
    """A compressible json/plain payload whose serialization is exactly `serialized_size` bytes."""
    for n in range(serialized_size, 0, -1):
        p = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"a" * n + b'"')
        size = len(p.SerializeToString(deterministic=True))
        if size == serialized_size:
            return p
    raise AssertionError(f"cannot build a payload of {serialized_size} bytes")


def build() -> dict[str, Any]:
    return {
        "spec_version": SPEC_VERSION,
        "keys": {k: b64(v) for k, v in KEYS.items()},
        "vectors": _encode_vectors(),
        "decode_errors": _decode_errors(),
        "keyring_compression": _keyring_compression(),
    }


def _encode_vectors() -> list[dict[str, Any]]:
    """Plain payloads and what the codec must make of them (byte for byte where not compressed)."""
    vectors: list[dict[str, Any]] = []

    def add(
        name: str,
        plain: Payload,
        key_id: str = "k-2026-11",
        threshold: int = THRESHOLD,
        order: list[str] | None = None,
        expect_compressed: bool = False,
    ) -> None:
        nonce = derive(f"codec-vectors nonce {name}", 12)
        encoded, compressed = seal(plain, key_id, KEYS[key_id], nonce, threshold)
        assert compressed == expect_compressed, name
        vectors.append(
            {
                "name": name,
                "key_id": key_id,
                "nonce": b64(nonce),
                "compression_threshold": threshold,
                "plain": payload_json(plain, order),
                "encoded": payload_json(encoded),
                "byte_exact": not compressed,
            }
        )

    add("small-json", json_payload({"customer": "C-1001", "amount_cents": 4200, "note": "café ☕"}))
    add("empty-data", Payload(metadata={"encoding": b"binary/null"}, data=b""))
    add("empty-payload", Payload())
    add("binary-data", Payload(metadata={"encoding": b"binary/plain"}, data=bytes(range(256)) * 2))
    # Written in non-sorted order: encoders must sort map keys (deterministic serialization),
    # and JSON readers must not depend on the order they see here.
    order = ["zeta", "encoding", "messageType", "Upper", "a-first", "ünïcode", "empty"]
    many = Payload(
        metadata={
            "zeta": b"last",
            "encoding": b"json/protobuf",
            "messageType": b"temporal.api.common.v1.WorkflowExecution",
            "Upper": b"\x00\x01\xff",
            "a-first": b"first",
            "ünïcode": "välue".encode(),
            "empty": b"",
        },
        data=b'{"workflowId":"wf-1","runId":"r-1"}',
    )
    add("several-metadata-entries", many, order=order)
    add("large-compressible", sized_json_payload(20_000), expect_compressed=True)
    add("at-threshold-compressed", sized_json_payload(THRESHOLD), expect_compressed=True)
    add("just-under-threshold", sized_json_payload(THRESHOLD - 1))
    add(
        "large-incompressible",
        Payload(metadata={"encoding": b"binary/plain"}, data=derive("incompressible", 6000)),
    )
    add("compression-disabled", sized_json_payload(20_000), threshold=0)
    add("other-key-id", json_payload(["rotated", "key"]), key_id="k-2026-05")
    # Version 2: an incompressible first sample means no compression, although the zeros after
    # it would compress; byte-exact, so both libraries must sample the same way.
    add(
        "incompressible-sample-not-compressed",
        Payload(metadata={"encoding": b"binary/plain"}, data=derive("sample", SAMPLE_BYTES) + bytes(20_000)),
        threshold=1,
    )

    # Temporal's published Python sample: one metadata entry, so its non-deterministic
    # SerializeToString() equals ours and the vector is byte-exact for both libraries.
    plain = json_payload({"message": "hello from the samples"})
    nonce = derive("codec-vectors nonce temporal-python-sample", 12)
    vectors.append(
        {
            "name": "temporal-python-sample",
            "key_id": "test-key-id",
            "nonce": b64(nonce),
            "compression_threshold": THRESHOLD,
            "plain": payload_json(plain),
            "encoded": payload_json(sample_encode(plain, "test-key-id", KEYS["test-key-id"], nonce)),
            "byte_exact": True,
        }
    )
    return vectors


def _decode_errors() -> list[dict[str, Any]]:
    """Encoded payloads every decoder must refuse, with the words its error must contain."""
    good, _ = seal(
        json_payload({"secret": "s3"}),
        "k-2026-11",
        KEYS["k-2026-11"],
        derive("codec-vectors nonce errors", 12),
        THRESHOLD,
    )
    tampered = bytearray(good.data)
    tampered[20] ^= 0x01
    retired, _ = seal(
        json_payload({"old": True}),
        "k-retired",
        RETIRED_KEY,
        derive("codec-vectors nonce retired", 12),
        THRESHOLD,
    )
    # An authentic compressed payload that inflates one byte past the default 64 MiB limit.
    bomb_inner = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(b"\x00" * (64 * 1024 * 1024 + 1), 9))
    bomb_nonce = derive("codec-vectors nonce bomb", 12)
    bomb = Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k-2026-11"},
        data=bomb_nonce
        + AESGCM(KEYS["k-2026-11"]).encrypt(bomb_nonce, bomb_inner.SerializeToString(deterministic=True), None),
    )

    def enc(md: dict[str, bytes], data: bytes) -> dict[str, Any]:
        return payload_json(Payload(metadata=md, data=data))

    encrypted = b"binary/encrypted"
    decode_errors = [
        {
            "name": "unknown-key-id",
            "encoded": payload_json(retired),
            "error_contains": 'unknown encryption key id "k-retired"',
        },
        {
            "name": "tampered-ciphertext",
            "encoded": enc({"encoding": encrypted, "encryption-key-id": b"k-2026-11"}, bytes(tampered)),
            "error_contains": 'decryption failed for key id "k-2026-11"',
        },
        {
            "name": "wrong-key-for-id",
            "encoded": enc({"encoding": encrypted, "encryption-key-id": b"k-2026-05"}, good.data),
            "error_contains": 'decryption failed for key id "k-2026-05"',
        },
        {
            "name": "truncated-ciphertext",
            "encoded": enc({"encoding": encrypted, "encryption-key-id": b"k-2026-11"}, good.data[:27]),
            "error_contains": "ciphertext too short",
        },
        {
            "name": "missing-key-id",
            "encoded": enc({"encoding": encrypted}, good.data),
            "error_contains": "missing encryption-key-id",
        },
        {
            "name": "decompression-bomb",
            "encoded": payload_json(bomb),
            "error_contains": "decompressed payload exceeds limit",
        },
    ]
    return decode_errors


def _keyring_compression() -> list[dict[str, Any]]:
    """Version 2: compression is off unless the key ring turns it on per namespace (SPEC §5.1)."""
    ring_keys = {"k-2026-11": b64(KEYS["k-2026-11"])}
    keyring_compression = [
        {
            "name": "no-compression-field",
            "keyring": {"keys": ring_keys, "active": {"*": "k-2026-11"}},
            "thresholds": {"agents": 0, "business": 0},
        },
        {
            "name": "one-namespace-opts-in",
            "keyring": {"keys": ring_keys, "active": {"*": "k-2026-11"}, "compression": {"retrieval": THRESHOLD}},
            "thresholds": {"retrieval": THRESHOLD, "agents": 0},
        },
        {
            "name": "default-on-one-opts-out",
            "keyring": {"keys": ring_keys, "active": {"*": "k-2026-11"}, "compression": {"*": 1024, "agents": 0}},
            "thresholds": {"agents": 0, "business": 1024},
        },
    ]
    return keyring_compression


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
