"""The shared vectors of SPEC §7: what makes this library conformant (and Go-compatible)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from payload_codec_testing import load_vectors, payload_from_json
from payload_codec_testing import vector_ring as ring

from payload_codec import DecodeError, EncryptionCodec, KeyRing
from payload_codec.codec import serialize

_DOC = load_vectors()
VECTORS = {v["name"]: v for v in _DOC["vectors"]}
ERRORS = {v["name"]: v for v in _DOC["decode_errors"]}


def test_vector_file_covers_the_required_cases() -> None:
    assert {
        "small-json",
        "empty-data",
        "binary-data",
        "several-metadata-entries",
        "large-compressible",
        "just-under-threshold",
        "other-key-id",
        "temporal-python-sample",
    } <= VECTORS.keys()
    assert {
        "unknown-key-id",
        "tampered-ciphertext",
        "truncated-ciphertext",
        "missing-key-id",
    } <= ERRORS.keys()
    assert len({v["key_id"] for v in VECTORS.values()}) >= 2
    assert any(not v["byte_exact"] for v in VECTORS.values())


@pytest.mark.parametrize("name", sorted(n for n, v in VECTORS.items() if v["byte_exact"]))
def test_encode_is_byte_exact(name: str, vectors: dict[str, Any]) -> None:
    v = VECTORS[name]
    nonce = base64.b64decode(v["nonce"])
    codec = EncryptionCodec(
        ring(vectors, v["key_id"]),
        "any-namespace",
        compression_threshold=v["compression_threshold"],
        nonce_source=lambda n: nonce,
    )
    (encoded,) = codec.encode_sync([payload_from_json(v["plain"])])
    expected = payload_from_json(v["encoded"])
    assert serialize(encoded) == serialize(expected)
    assert encoded.data == expected.data


@pytest.mark.parametrize("name", sorted(n for n, v in VECTORS.items() if not v["byte_exact"]))
def test_compressed_vectors_round_trip_through_our_encoder(name: str, vectors: dict[str, Any]) -> None:
    v = VECTORS[name]
    codec = EncryptionCodec(ring(vectors, v["key_id"]), "ns", compression_threshold=v["compression_threshold"])
    plain = payload_from_json(v["plain"])
    (encoded,) = codec.encode_sync([plain])
    # Compression actually happened: the ciphertext is smaller than the plaintext.
    assert len(encoded.data) < len(serialize(plain))
    assert codec.decode_sync([encoded]) == [plain]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_decode(name: str, vectors: dict[str, Any]) -> None:
    v = VECTORS[name]
    codec = EncryptionCodec(ring(vectors), "ns")
    (decoded,) = codec.decode_sync([payload_from_json(v["encoded"])])
    assert decoded == payload_from_json(v["plain"])


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_decode_errors(name: str, vectors: dict[str, Any]) -> None:
    v = ERRORS[name]
    codec = EncryptionCodec(ring(vectors), "ns")
    with pytest.raises(DecodeError) as info:
        codec.decode_sync([payload_from_json(v["encoded"])])
    assert v["error_contains"] in str(info.value)
    for material in vectors["keys"].values():
        assert material not in str(info.value)


def test_generator_reproduces_the_committed_file() -> None:
    """vectors.json is what generate_vectors.py writes (zlib output aside: it may differ by zlib build)."""
    import importlib.util

    from payload_codec_testing import VECTORS_PATH

    spec = importlib.util.spec_from_file_location("generate_vectors", VECTORS_PATH.with_name("generate_vectors.py"))
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    fresh = generator.build()
    committed = load_vectors()
    for doc in (fresh, committed):
        for v in doc["vectors"]:
            if not v["byte_exact"]:
                v["encoded"]["data"] = "<zlib-dependent>"
        for e in doc["decode_errors"]:
            if e["name"] == "decompression-bomb":
                e["encoded"]["data"] = "<zlib-dependent>"
    assert fresh == committed


def test_spec_version_and_key_ring_compression_settings() -> None:
    """Version 2: compression is off unless the key ring turns it on for a namespace."""
    assert _DOC["spec_version"] == 2
    assert _DOC["keyring_compression"]
    for case in _DOC["keyring_compression"]:
        ring = KeyRing.from_document(case["keyring"], source=case["name"])
        got = {ns: ring.compression_threshold_for(ns) for ns in case["thresholds"]}
        assert got == case["thresholds"], case["name"]
