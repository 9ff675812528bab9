"""Python and Go codecs are interchangeable: each decodes what the other encodes.

The Go side is the real `payload-codec` binary (codec-server/go/cmd/payload-codec), built into a
temporary directory and driven through stdin/stdout in the codec server's JSON body shape, with
its key ring given the way production gives it (CODEC_KEYRING, CODEC_KEYRING_FILE or
CODEC_KEYRING_DIR). The Python side is the `payload_codec` library.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from payload_codec import DecryptionError, EncryptionCodec, KeyRing, UnknownKeyError

REPO = Path(__file__).resolve().parents[2]
GO_MODULE = REPO / "codec-server" / "go"
SOURCE_VARIABLES = ("CODEC_KEYRING", "CODEC_KEYRING_FILE", "CODEC_KEYRING_DIR")

# Several key ids, one active per namespace, so both sides must honour the per-namespace map
# and find keys by id. Generated per run: nothing here is a real key.
KEYS = {
    "k-2026-11": os.urandom(32),
    "k-2026-05": os.urandom(32),
    "legacy.key_1": os.urandom(32),
}
ACTIVE = {"*": "k-2026-11", "business": "k-2026-05", "retrieval": "legacy.key_1"}
NAMESPACES = {"agents": "k-2026-11", "business": "k-2026-05", "retrieval": "legacy.key_1"}
# Compression is off unless the ring turns it on (SPEC §5.1): on by default here, off for
# retrieval, so both sides must read the per-namespace setting from every source.
COMPRESSION = {"*": 4096, "retrieval": 0}
RING_DOC = json.dumps(
    {
        "keys": {k: base64.b64encode(v).decode() for k, v in KEYS.items()},
        "active": ACTIVE,
        "compression": COMPRESSION,
    }
)


def sample_payloads() -> list[Payload]:
    return [
        Payload(metadata={"encoding": b"json/plain"}, data=b'{"order":"O-1","note":"caf\xc3\xa9"}'),
        Payload(),
        Payload(metadata={"encoding": b"binary/null"}),
        Payload(metadata={"encoding": b"binary/plain"}, data=bytes(range(256)) * 4),
        Payload(
            metadata={
                "encoding": b"json/protobuf",
                "messageType": b"temporal.api.common.v1.WorkflowExecution",
                "zz": b"\x00\xff",
                "a": b"",
            },
            data=b'{"workflowId":"wf-1"}',
        ),
        # Compressed before encryption (well above the 4096-byte threshold, very compressible).
        Payload(
            metadata={"encoding": b"json/plain"},
            data=json.dumps({"transcript": "the customer asked about a refund. " * 6000}).encode(),
        ),
        # Above the threshold but incompressible: encrypted without compression.
        Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(20_000)),
    ]


LARGE_COMPRESSIBLE = 5


def to_body(payloads: Sequence[Payload]) -> str:
    return json.dumps(
        {
            "payloads": [
                {
                    "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                    "data": base64.b64encode(p.data).decode(),
                }
                for p in payloads
            ]
        }
    )


def from_body(text: str) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
            data=base64.b64decode(p.get("data", "")),
        )
        for p in json.loads(text)["payloads"]
    ]


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain is not on PATH; it is needed to build payload-codec")
    out = tmp_path_factory.mktemp("payload-codec-bin") / "payload-codec"
    result = subprocess.run(
        [go, "build", "-o", str(out), "./cmd/payload-codec"],
        cwd=GO_MODULE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"go build failed:\n{result.stderr}"
    return out


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.from_json(RING_DOC, source="test ring")


def ring_env(kind: str, tmp: Path) -> dict[str, str]:
    """The Go process's environment with the key ring given through one of the three sources."""
    env = {k: v for k, v in os.environ.items() if k not in SOURCE_VARIABLES}
    if kind == "env":
        env["CODEC_KEYRING"] = RING_DOC
    elif kind == "file":
        path = tmp / "keyring.json"
        path.write_text(RING_DOC)
        path.chmod(0o600)
        env["CODEC_KEYRING_FILE"] = str(path)
    else:  # a mounted Kubernetes Secret
        secret = tmp / "secret"
        secret.mkdir()
        for key_id, material in KEYS.items():
            (secret / f"{key_id}.key").write_text(base64.b64encode(material).decode() + "\n")
        (secret / "active").write_text("".join(f"{ns}={k}\n" for ns, k in ACTIVE.items()))
        (secret / "compression").write_text("".join(f"{ns}={n}\n" for ns, n in COMPRESSION.items()))
        env["CODEC_KEYRING_DIR"] = str(secret)
    return env


GoRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(params=["env", "file", "dir"])
def run_go(request: pytest.FixtureRequest, go_binary: Path, tmp_path: Path) -> GoRunner:
    env = ring_env(request.param, tmp_path)

    def run(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(go_binary), *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def go_ok(run_go: GoRunner, *args: str, stdin: str) -> list[Payload]:
    result = run_go(*args, stdin=stdin)
    assert result.returncode == 0, f"payload-codec {' '.join(args)} failed: {result.stderr}"
    return from_body(result.stdout)


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_python_encrypts_go_decrypts(run_go: GoRunner, ring: KeyRing, namespace: str) -> None:
    plain = sample_payloads()
    encrypted = EncryptionCodec(ring, namespace).encode_sync(plain)
    assert {p.metadata["encryption-key-id"].decode() for p in encrypted} == {NAMESPACES[namespace]}

    assert go_ok(run_go, "decode", stdin=to_body(encrypted)) == plain


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_go_encrypts_python_decrypts(run_go: GoRunner, ring: KeyRing, namespace: str) -> None:
    plain = sample_payloads()
    encrypted = go_ok(run_go, "encode", "--namespace", namespace, stdin=to_body(plain))

    for p in encrypted:
        assert p.metadata["encoding"] == b"binary/encrypted"
        assert p.metadata["encryption-key-id"].decode() == NAMESPACES[namespace]
        assert set(p.metadata) == {"encoding", "encryption-key-id"}
    big = plain[LARGE_COMPRESSIBLE]
    if ring.compression_threshold_for(namespace):
        assert len(encrypted[LARGE_COMPRESSIBLE].data) < len(big.data) // 10, "not compressed"
    else:
        assert len(encrypted[LARGE_COMPRESSIBLE].data) > len(big.data), "compressed though the ring says off"

    # Any namespace's codec decrypts: decryption picks the key by id, not by namespace.
    assert EncryptionCodec(ring, "agents").decode_sync(encrypted) == plain


def test_mixed_batch_of_key_ids_and_plain_payloads(run_go: GoRunner, ring: KeyRing) -> None:
    """One history holds payloads from before encryption and from several rotations."""
    plain = sample_payloads()
    batch: list[Payload] = []
    expected: list[Payload] = []
    for namespace in sorted(NAMESPACES):
        batch += EncryptionCodec(ring, namespace).encode_sync(plain[:2])
        expected += plain[:2]
    tail = plain[LARGE_COMPRESSIBLE:]
    batch += go_ok(run_go, "encode", "--namespace", "business", stdin=to_body(tail))
    expected += tail
    batch.append(plain[0])  # never encrypted: passes through
    expected.append(plain[0])
    assert len({p.metadata.get("encryption-key-id") for p in batch}) == 4  # 3 ids + none

    assert go_ok(run_go, "decode", stdin=to_body(batch)) == expected
    assert EncryptionCodec(ring, "agents").decode_sync(batch) == expected


def test_compression_threshold_round_trips_both_ways(run_go: GoRunner, ring: KeyRing) -> None:
    plain = sample_payloads()
    # Threshold 1: every payload that shrinks is compressed, including small ones.
    py = EncryptionCodec(ring, "agents", compression_threshold=1).encode_sync(plain)
    assert go_ok(run_go, "decode", stdin=to_body(py)) == plain
    go = go_ok(run_go, "encode", "--compression-threshold", "1", stdin=to_body(plain))
    assert EncryptionCodec(ring, "agents").decode_sync(go) == plain


def test_both_reject_the_same_bad_payloads(run_go: GoRunner, ring: KeyRing) -> None:
    codec = EncryptionCodec(ring, "agents")
    (good,) = codec.encode_sync([sample_payloads()[0]])

    tampered = Payload()
    tampered.CopyFrom(good)
    tampered.data = good.data[:-1] + bytes([good.data[-1] ^ 1])
    result = run_go("decode", stdin=to_body([tampered]))
    assert result.returncode == 1
    assert 'decryption failed for key id "k-2026-11"' in result.stderr
    assert result.stderr.count("\n") == 1
    with pytest.raises(DecryptionError):
        codec.decode_sync([tampered])

    unknown = Payload()
    unknown.CopyFrom(good)
    unknown.metadata["encryption-key-id"] = b"k-retired"
    result = run_go("decode", stdin=to_body([unknown]))
    assert result.returncode == 1
    assert 'unknown encryption key id "k-retired"' in result.stderr
    with pytest.raises(UnknownKeyError):
        codec.decode_sync([unknown])

    # Python's large compressed payload is refused by Go under a small inflate limit.
    (big,) = codec.encode_sync([sample_payloads()[LARGE_COMPRESSIBLE]])
    result = run_go("decode", "--inflate-limit", "1024", stdin=to_body([big]))
    assert result.returncode == 1
    assert "decompressed payload exceeds limit" in result.stderr

    for material in KEYS.values():
        for form in (base64.b64encode(material).decode(), material.hex()):
            assert form not in result.stderr


def test_go_binary_explains_missing_key_ring(go_binary: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SOURCE_VARIABLES}
    result = subprocess.run(
        [str(go_binary), "decode"],
        input='{"payloads":[]}',
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "set exactly one of CODEC_KEYRING_FILE, CODEC_KEYRING_DIR or CODEC_KEYRING" in (result.stderr)
    assert result.stdout == ""
