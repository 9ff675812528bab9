from __future__ import annotations

import asyncio
import base64
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payload_codec_testing import all_secret_forms
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from payload_codec import (
    CodecError,
    DecodeError,
    DecompressionError,
    DecryptionError,
    EncryptionCodec,
    KeyRing,
    NoActiveKeyError,
    UnknownKeyError,
    data_converter,
)
from payload_codec.codec import ENCRYPTED, serialize

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
RING = KeyRing({"key-a": KEY_A, "key-b": KEY_B}, {"*": "key-a", "business": "key-b"})

payloads = st.builds(
    lambda md, data: Payload(metadata=md, data=data),
    st.dictionaries(st.text(max_size=20), st.binary(max_size=40), max_size=6),
    st.one_of(
        st.binary(max_size=300),
        # Repetitive data above the threshold takes the compression path.
        st.binary(min_size=1, max_size=64).map(lambda b: b * (5000 // len(b) + 1)),
    ),
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payloads, max_size=4), st.sampled_from([0, 1, 64, 4096]))
def test_round_trip(batch: list[Payload], threshold: int) -> None:
    codec = EncryptionCodec(RING, "agents", compression_threshold=threshold)
    originals = [Payload.FromString(serialize(p)) for p in batch]
    encoded = codec.encode_sync(batch)
    assert batch == originals, "encode must not mutate its input"
    assert all(p.metadata["encoding"] == ENCRYPTED for p in encoded)
    assert all(p.metadata["encryption-key-id"] == b"key-a" for p in encoded)
    assert all(set(p.metadata) == {"encoding", "encryption-key-id"} for p in encoded)
    for plain, enc in zip(batch, encoded, strict=True):
        if plain.data and len(plain.data) > 8:
            assert plain.data not in enc.data
    assert codec.decode_sync(encoded) == batch


@settings(max_examples=50, deadline=None, database=None)
@given(payloads)
def test_unencrypted_payloads_pass_through_decode(p: Payload) -> None:
    if p.metadata.get("encoding") == ENCRYPTED:
        return
    (out,) = EncryptionCodec(RING, "agents").decode_sync([p])
    assert out == p


def test_async_interface_matches_temporal_codec() -> None:
    codec = EncryptionCodec(RING, "agents")
    p = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    encoded = asyncio.run(codec.encode([p]))
    assert asyncio.run(codec.decode(encoded)) == [p]


def test_nonces_are_fresh() -> None:
    codec = EncryptionCodec(RING, "agents")
    p = Payload(metadata={"encoding": b"json/plain"}, data=b'"same"')
    nonces = {e.data[:12] for e in codec.encode_sync([p] * 200)}
    assert len(nonces) == 200


def test_namespace_selects_active_key_and_star_is_default() -> None:
    p = Payload(data=b"x")
    assert EncryptionCodec(RING, "business").encode_one(p).metadata["encryption-key-id"] == b"key-b"
    assert EncryptionCodec(RING, "agents").encode_one(p).metadata["encryption-key-id"] == b"key-a"


def test_ring_without_default_cannot_encrypt_for_other_namespaces() -> None:
    ring = KeyRing({"key-b": KEY_B}, {"business": "key-b"})
    with pytest.raises(NoActiveKeyError, match="'agents'"):
        EncryptionCodec(ring, "agents").encode_sync([Payload(data=b"x")])
    # ... but still decrypts anything made with its keys.
    enc = EncryptionCodec(ring, "business").encode_sync([Payload(data=b"x")])
    assert EncryptionCodec(ring, "agents").decode_sync(enc) == [Payload(data=b"x")]


def test_key_rotation_old_payloads_still_decode() -> None:
    before = KeyRing({"key-a": KEY_A}, {"*": "key-a"})
    old = EncryptionCodec(before, "agents").encode_sync([Payload(data=b"written before rotation")])
    after = KeyRing({"key-a": KEY_A, "key-b": KEY_B}, {"*": "key-b"})
    codec = EncryptionCodec(after, "agents")
    new = codec.encode_sync([Payload(data=b"written after rotation")])
    assert new[0].metadata["encryption-key-id"] == b"key-b"
    assert codec.decode_sync(old + new) == [
        Payload(data=b"written before rotation"),
        Payload(data=b"written after rotation"),
    ]
    # Retiring key-a too early is caught with the id named.
    retired = EncryptionCodec(KeyRing({"key-b": KEY_B}, {"*": "key-b"}), "agents")
    with pytest.raises(UnknownKeyError, match='"key-a"'):
        retired.decode_sync(old)


def test_replacing_the_ring_on_a_codec_uses_the_new_material() -> None:
    codec = EncryptionCodec(KeyRing({"k": KEY_A}, {"*": "k"}), "agents")
    enc = codec.encode_sync([Payload(data=b"x")])
    codec.keyring = KeyRing({"k": KEY_B}, {"*": "k"})
    with pytest.raises(DecryptionError):
        codec.decode_sync(enc)


def test_hostile_key_id_is_escaped_and_bounded() -> None:
    p = Payload(metadata={"encoding": ENCRYPTED, "encryption-key-id": b'"\n' + b"x" * 500}, data=b"\0" * 40)
    with pytest.raises(UnknownKeyError) as info:
        EncryptionCodec(RING, "agents").decode_sync([p])
    message = str(info.value)
    assert "\n" not in message and len(message) < 200


def _sealed_inner(inner: Payload) -> Payload:
    """An authentic payload whose inner plaintext we choose (as a buggy or hostile encoder might)."""
    codec = EncryptionCodec(RING, "agents", compression_threshold=0)
    return codec.encode_one(inner)


def test_inflate_limit_and_corrupt_compressed_data() -> None:
    bomb = _sealed_inner(Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(b"\0" * 2_000_000)))
    small_limit = EncryptionCodec(RING, "agents", max_inflated_bytes=1_000_000)
    with pytest.raises(DecodeError, match="decompressed payload exceeds limit"):
        small_limit.decode_sync([bomb])
    corrupt = _sealed_inner(Payload(metadata={"encoding": b"binary/zlib"}, data=b"not zlib"))
    with pytest.raises(DecompressionError, match='"key-a"'):
        small_limit.decode_sync([corrupt])
    truncated = _sealed_inner(Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(b"abc" * 1000)[:-6]))
    with pytest.raises(DecompressionError, match="truncated"):
        small_limit.decode_sync([truncated])


def test_bad_nonce_source_is_refused() -> None:
    codec = EncryptionCodec(RING, "agents", nonce_source=lambda n: b"short")
    with pytest.raises(ValueError, match="12"):
        codec.encode_sync([Payload(data=b"x")])


def test_no_key_material_in_reprs_or_errors() -> None:
    codec = EncryptionCodec(RING, "agents")
    texts = [repr(RING), str(RING), repr(codec), repr(RING.key("key-a")), repr(RING.active_for("business"))]
    enc = codec.encode_sync([Payload(data=b"x" * 40)])
    tampered = Payload()
    tampered.CopyFrom(enc[0])
    tampered.data = tampered.data[:-1] + bytes([tampered.data[-1] ^ 1])
    for bad in ([tampered], [Payload(metadata={"encoding": ENCRYPTED}, data=b"")]):
        with pytest.raises(DecodeError) as info:
            codec.decode_sync(bad)
        texts += [str(info.value), repr(info.value)]
    joined = "\n".join(texts)
    for material in (KEY_A, KEY_B):
        for form in all_secret_forms(material):
            assert form not in joined


async def test_data_converter_round_trips_values_and_encodes_failures() -> None:
    converter = data_converter(RING, "agents")
    encoded = await converter.encode([{"card": "4111-1111"}, "plain"])
    assert all(p.metadata["encoding"] == ENCRYPTED for p in encoded)
    assert await converter.decode(encoded, [dict, str]) == [{"card": "4111-1111"}, "plain"]

    failure = Failure()
    await converter.encode_failure(ApplicationError("secret-failure-text"), failure)
    assert b"secret-failure-text" not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == ENCRYPTED


def test_key_id_that_looks_like_material_is_redacted_in_decode_errors() -> None:
    material_like = base64.b64encode(bytes(range(50, 82))).decode()
    p = Payload(metadata={"encoding": ENCRYPTED, "encryption-key-id": material_like.encode()}, data=b"\0" * 40)
    with pytest.raises(UnknownKeyError) as info:
        EncryptionCodec(RING, "agents").decode_sync([p])
    assert material_like not in str(info.value) and "redacted" in str(info.value)
    assert info.value.key_id is not None and material_like not in info.value.key_id


def test_a_per_call_inflate_bound_and_no_compression_past_the_bound() -> None:
    big = Payload(metadata={"encoding": b"json/plain"}, data=b"z" * 10_000)
    size = len(serialize(big))
    codec = EncryptionCodec(RING, "agents", compression_threshold=4096)
    sealed = codec.encode_one(big)
    assert len(sealed.data) < 1_000, "compressed"
    # A caller with a budget (the codec server) lowers the bound for one call.
    assert codec.decode_one(sealed, max_inflated_bytes=size) == big
    with pytest.raises(DecodeError, match=f"exceeds limit \\({size - 1} bytes\\)"):
        codec.decode_one(sealed, max_inflated_bytes=size - 1)
    # A codec never writes what it could not inflate again: over its bound, it does not compress.
    bounded = EncryptionCodec(RING, "agents", compression_threshold=4096, max_inflated_bytes=size - 1)
    stored = bounded.encode_one(big)
    assert len(stored.data) > 10_000
    assert bounded.decode_one(stored) == big


def test_key_owners_outlive_activity() -> None:
    ring = KeyRing.from_document(
        {
            "keys": {k: base64.b64encode(m).decode() for k, m in (("key-a", KEY_A), ("key-b", KEY_B))},
            "active": {"*": "key-a"},
            "owners": {"key-b": ["business"]},
        },
        source="test",
    )
    assert ring.namespaces_of("key-b") == {"business"}, "a retired business key stays business's"
    assert ring.namespaces_of("key-a") == {"*"}, "the default key is shared"
    assert RING.namespaces_of("key-b") == {"business"}, "an active entry names the owner"
    assert KeyRing({"k": KEY_A}, {}).namespaces_of("k") == {"*"}, "unrecorded and inactive: shared"
    for owners, fragment in (({"nope": ["x"]}, "not one of its keys"), ({"key-b": []}, "non-empty list")):
        with pytest.raises(CodecError, match=fragment):
            KeyRing({"key-a": KEY_A, "key-b": KEY_B}, {}, owners=owners)


def test_compression_is_off_unless_the_key_ring_turns_it_on_for_the_namespace() -> None:
    big = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"secret=hunter2 " * 2000 + b'"')
    assert len(EncryptionCodec(RING, "agents").encode_one(big).data) > 30_000, "off by default"
    ring = KeyRing({"key-a": KEY_A}, {"*": "key-a"}, compression={"retrieval": 4096})
    assert ring.compression_threshold_for("retrieval") == 4096
    assert ring.compression_threshold_for("agents") == 0
    assert len(EncryptionCodec(ring, "retrieval").encode_one(big).data) < 1_000
    assert len(EncryptionCodec(ring, "agents").encode_one(big).data) > 30_000
    everywhere = KeyRing({"key-a": KEY_A}, {"*": "key-a"}, compression={"*": 1024, "agents": 0})
    assert everywhere.compression_threshold_for("business") == 1024
    assert everywhere.compression_threshold_for("agents") == 0, "a namespace opts out of the default"
    for bad in ({"agents": -1}, {"agents": "4096"}, {"agents": True}, {"bad name": 1}):
        with pytest.raises(CodecError, match="compression"):
            KeyRing({"key-a": KEY_A}, {}, compression=bad)  # type: ignore[arg-type]


def test_incompressible_payloads_cost_a_sample_not_a_full_deflate() -> None:
    import os

    # Random first 4 KiB: the sample says it does not pay, so nothing is compressed even though
    # the zeros after it would have been (the price of sampling; SPEC §2).
    mixed = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(4096) + bytes(20_000))
    codec = EncryptionCodec(RING, "agents", compression_threshold=1)
    assert len(codec.encode_one(mixed).data) > 24_000
    assert codec.decode_one(codec.encode_one(mixed)) == mixed
    # Small payloads (up to two samples) are simply tried.
    small = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(100) + bytes(7_000))
    assert len(codec.encode_one(small).data) < 1_000


def test_content_names_are_keyed_stable_and_checkable_after_rotation() -> None:
    import hashlib

    codec = EncryptionCodec(RING, "agents")
    name = codec.content_name(b"yes")
    assert name.startswith("hmac-sha256:key-a:") and hashlib.sha256(b"yes").hexdigest() not in name
    assert codec.content_name(b"yes") == name and codec.content_name(b"no") != name
    assert EncryptionCodec(RING, "business").content_name(b"yes").startswith("hmac-sha256:key-b:")
    assert codec.check_content_name(name, b"yes") and not codec.check_content_name(name, b"no")
    assert not codec.check_content_name("sha256:" + hashlib.sha256(b"yes").hexdigest(), b"yes")
    with pytest.raises(UnknownKeyError):
        EncryptionCodec(KeyRing({"key-b": KEY_B}, {"*": "key-b"}), "agents").check_content_name(name, b"yes")


def test_threads_encoding_at_once_never_share_a_seal_buffer() -> None:
    # Encoding seals into one shared buffer when it is free and into a private one when another
    # thread holds it, or when the payload is larger than the shared buffer may grow: every
    # payload must come out whole under contention, whatever size it has.
    codec = EncryptionCodec(RING, "agents")
    sizes = [0, 1, 1000, 64 << 10, 1 << 20, (4 << 20) + 1]
    batches = [[Payload(data=os.urandom(size)) for size in sizes] for _ in range(8)]
    barrier = threading.Barrier(len(batches))

    def encode(batch: list[Payload]) -> list[Payload]:
        barrier.wait()
        return [p for _ in range(5) for p in codec.encode_sync(batch)]

    with ThreadPoolExecutor(len(batches)) as pool:
        results = list(pool.map(encode, batches))
    for batch, encoded in zip(batches, results, strict=True):
        assert codec.decode_sync(encoded) == batch * 5
