"""The codec's metrics hook: every encrypted payload reported once, with bounded labels."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from payload_codec import DecodeError, EncodeError, EncryptionCodec, KeyRing


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def succeeded(self, operation: str, key_id: str, size: int) -> None:
        self.events.append(("ok", operation, key_id, str(size)))

    def failed(self, operation: str, key_id: str, reason: str) -> None:
        self.events.append(("fail", operation, key_id, reason))


def test_observer_sees_each_payload_with_bounded_labels() -> None:
    rec = Recorder()
    codec = EncryptionCodec(KeyRing({"k1": b"\x01" * 32}, {"*": "k1"}), "agents", observer=rec)
    encoded = codec.encode_sync([Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')])[0]
    size = str(len(encoded.data))
    codec.decode_sync([encoded, Payload(metadata={"encoding": b"json/plain"}, data=b"1")])  # plain: uncounted
    forged = Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"attacker-chosen"}, data=encoded.data
    )
    tampered = Payload(metadata=dict(encoded.metadata), data=encoded.data[:-1] + bytes([encoded.data[-1] ^ 1]))
    no_id = Payload(metadata={"encoding": b"binary/encrypted"}, data=encoded.data)
    for bad in (forged, tampered, no_id):
        with pytest.raises(DecodeError):
            codec.decode_one(bad)
    with pytest.raises(EncodeError):
        EncryptionCodec(KeyRing({"k1": b"\x01" * 32}, {}), "agents", observer=rec).encode_one(encoded)
    assert rec.events == [
        ("ok", "encode", "k1", size),
        ("ok", "decode", "k1", size),
        ("fail", "decode", "unknown", "unknown_key"),
        ("fail", "decode", "k1", "auth_failed"),
        ("fail", "decode", "none", "missing_key_id"),
        ("fail", "encode", "none", "no_active_key"),
    ]
