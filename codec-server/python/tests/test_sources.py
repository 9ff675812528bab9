"""Key ring validation (SPEC §5.1) and the three local sources (SPEC §5.2)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from payload_codec_testing import all_secret_forms

from payload_codec import (
    CodecConfigError,
    DirectoryKeySource,
    EnvKeySource,
    FileKeySource,
    KeyRing,
    KeySource,
    key_source_from_env,
)
from payload_codec.keyring import KEY_SIZE

MAT_1 = bytes(range(1, 33))
MAT_2 = bytes(range(33, 65))
B64_1 = base64.b64encode(MAT_1).decode()
B64_2 = base64.b64encode(MAT_2).decode()
DOC = {
    "keys": {"k-2026-11": B64_1, "k-2026-05": B64_2},
    "active": {"*": "k-2026-11", "business": "k-2026-05"},
}


def assert_no_material(text: str, *materials: bytes) -> None:
    for material in materials or (MAT_1, MAT_2):
        for form in all_secret_forms(material):
            assert form not in text, "key material leaked into a message"


def check_ring(ring: KeyRing) -> None:
    assert ring.key_ids == {"k-2026-11", "k-2026-05"}
    assert ring.active_for("agents").id == "k-2026-11"
    assert ring.active_for("business").id == "k-2026-05"
    assert ring.key("k-2026-05").material == MAT_2
    assert_no_material(repr(ring))


def test_file_source(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(DOC))
    source = FileKeySource(path)
    assert isinstance(source, KeySource)
    check_ring(source.load())


def test_env_source() -> None:
    source = EnvKeySource({"CODEC_KEYRING": json.dumps(DOC)})
    check_ring(source.load())
    assert_no_material(repr(source))


def write_secret_dir(root: Path, active: str = "*=k-2026-11\nbusiness = k-2026-05\n") -> Path:
    # The layout the kubelet mounts: real files in a timestamped dir, ..data link, per-key links.
    data = root / "..2026_11_23_10_00_00.123"
    data.mkdir(parents=True)
    (data / "k-2026-11.key").write_text(B64_1 + "\n")
    (data / "k-2026-05.key").write_text("  " + B64_2.rstrip("=") + "  \n")
    (data / "active").write_text("# rotated 2026-11\n\n" + active)
    (data / "README").write_text("ignored")
    (root / "..data").symlink_to(data.name)
    for name in ("k-2026-11.key", "k-2026-05.key", "active", "README"):
        (root / name).symlink_to(f"..data/{name}")
    return root


def test_directory_source_kubernetes_layout(tmp_path: Path) -> None:
    check_ring(DirectoryKeySource(write_secret_dir(tmp_path / "secret")).load())


def test_directory_source_without_active_file_decrypts_only(tmp_path: Path) -> None:
    (tmp_path / "k1.key").write_text(B64_1)
    ring = DirectoryKeySource(tmp_path).load()
    assert ring.active_id_for("agents") is None


@pytest.mark.parametrize(
    "active, fragment",
    [
        ("*=k-missing\n", '"k-missing", which is not one of its keys'),
        ("garbage\n", "line 3 of the active file"),
        ("*=k-2026-11\n*=k-2026-05\n", "twice"),
    ],
)
def test_directory_source_bad_active(tmp_path: Path, active: str, fragment: str) -> None:
    with pytest.raises(CodecConfigError, match=fragment) as info:
        DirectoryKeySource(write_secret_dir(tmp_path / "s", active=active)).load()
    assert "CODEC_KEYRING_DIR" in str(info.value)


def test_directory_source_bad_key_file_and_missing_dir(tmp_path: Path) -> None:
    (tmp_path / "k1.key").write_text(base64.b64encode(b"short").decode())
    with pytest.raises(CodecConfigError, match=r'key "k1" .* decodes to 5 bytes'):
        DirectoryKeySource(tmp_path).load()
    with pytest.raises(CodecConfigError, match="cannot read the key ring directory"):
        DirectoryKeySource(tmp_path / "absent").load()


def bad_doc(**change: object) -> dict[str, object]:
    doc = json.loads(json.dumps(DOC))
    doc.update(change)
    return doc


SHORT_KEY = base64.b64encode(bytes(range(200, 216))).decode()
LONG_KEY = base64.b64encode(bytes(range(200, 233))).decode()


@pytest.mark.parametrize(
    "document, fragment",
    [
        (bad_doc(keys={"k1": SHORT_KEY}, active={"*": "k1"}), r'key "k1" .* decodes to 16 bytes'),
        (bad_doc(keys={"k1": LONG_KEY}, active={"*": "k1"}), r'key "k1" .* decodes to 33 bytes'),
        (
            bad_doc(keys={"k1": B64_1.replace("A", "*")[:-1] + "!"}, active={"*": "k1"}),
            r'key "k1" .* not valid base64',
        ),
        (
            bad_doc(keys={"k1": base64.urlsafe_b64encode(b"\xfb" * 32).decode()}, active={"*": "k1"}),
            r'key "k1" .* not valid base64',
        ),
        (bad_doc(keys={"k1": B64_1[:-2]}, active={"*": "k1"}), r'key "k1" .* not valid base64|bytes'),
        (bad_doc(keys={"k1": 7}, active={"*": "k1"}), r'key "k1" .* must be a base64 string'),
        (bad_doc(active={"*": "k-nope"}), r'"k-nope", which is not one of its keys'),
        (bad_doc(active={"*": B64_1}), r"not 1-64 characters"),
        (bad_doc(keys={B64_1: B64_2}), r"not 1-64 characters"),
        (bad_doc(keys={"bad id": B64_1}), r"not 1-64 characters"),
        (bad_doc(keys={}), r"holds no keys"),
        (bad_doc(activ={"*": "k-2026-11"}), r"unknown field\(s\) 'activ'"),
        ({"active": {}}, r'must have "keys"'),
        ([1, 2], r"must be a JSON object"),
    ],
)
def test_invalid_documents(document: object, fragment: str) -> None:
    text = json.dumps(document)
    with pytest.raises(CodecConfigError, match=fragment) as info:
        EnvKeySource({"CODEC_KEYRING": text}).load()
    message = str(info.value)
    assert "CODEC_KEYRING" in message
    assert_no_material(message, MAT_1, MAT_2, bytes(range(200, 216)), bytes(range(200, 233)), b"\xfb" * 32)


def test_padding_is_optional() -> None:
    ring = KeyRing.from_document({"keys": {"k": B64_1.rstrip("=")}, "active": {"*": "k"}}, source="test")
    assert ring.key("k").material == MAT_1 and len(MAT_1) == KEY_SIZE


def test_not_json_names_the_source_not_the_content(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text('{"keys": {"k": "' + B64_1 + '"')
    with pytest.raises(CodecConfigError, match="CODEC_KEYRING_FILE=.*not valid JSON") as info:
        FileKeySource(path).load()
    assert_no_material(str(info.value))
    with pytest.raises(CodecConfigError, match="cannot read the key ring file"):
        FileKeySource(tmp_path / "absent.json").load()


def test_key_source_from_env_picks_exactly_one(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(DOC))
    assert isinstance(key_source_from_env({"CODEC_KEYRING_FILE": str(path)}), FileKeySource)
    assert isinstance(key_source_from_env({"CODEC_KEYRING_DIR": str(tmp_path)}), DirectoryKeySource)
    assert isinstance(key_source_from_env({"CODEC_KEYRING": json.dumps(DOC)}), EnvKeySource)
    check_ring(key_source_from_env({"CODEC_KEYRING": json.dumps(DOC), "CODEC_KEYRING_DIR": " "}).load())

    with pytest.raises(CodecConfigError) as none:
        key_source_from_env({})
    for name in ("CODEC_KEYRING_FILE", "CODEC_KEYRING_DIR", "CODEC_KEYRING"):
        assert name in str(none.value)

    with pytest.raises(CodecConfigError, match="several key ring sources are set") as several:
        key_source_from_env({"CODEC_KEYRING": json.dumps(DOC), "CODEC_KEYRING_FILE": str(path)})
    assert "CODEC_KEYRING_FILE" in str(several.value) and "CODEC_KEYRING)" in str(several.value)
    assert_no_material(str(several.value))


def test_default_environment_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CODEC_KEYRING_FILE", "CODEC_KEYRING_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODEC_KEYRING", json.dumps(DOC))
    check_ring(key_source_from_env().load())
    assert os.environ["CODEC_KEYRING"]


def _alnum_only_key_b64() -> tuple[bytes, str]:
    """A key whose unpadded base64 is also a syntactically valid key id (no + / =)."""
    for seed in range(1000):
        material = hashlib.sha256(f"swap-{seed}".encode()).digest()
        text = base64.b64encode(material).decode().rstrip("=")
        if "+" not in text and "/" not in text:
            return material, text
    raise AssertionError("no such key")


def test_ids_and_values_swapped_never_print_the_material() -> None:
    material, text = _alnum_only_key_b64()
    for doc in (
        {"keys": {text: "k1"}, "active": {"*": text}},
        {"keys": {material.hex(): "k1"}, "active": {}},
        {"keys": {"k1": B64_1}, "active": {"*": text}},
        {"keys": {"k1": B64_1}, "active": {text: "k-nope"}},
    ):
        with pytest.raises(CodecConfigError) as info:
            EnvKeySource({"CODEC_KEYRING": json.dumps(doc)}).load()
        assert_no_material(str(info.value), material, MAT_1)
    # A ring that really uses such an id still never prints it.
    ring = KeyRing({text: MAT_1}, {"*": text}, source="test")
    assert text not in repr(ring) and text not in repr(ring.active_for("x"))
    assert "redacted" in repr(ring)


def test_directory_source_owners_file(tmp_path: Path) -> None:
    root = write_secret_dir(tmp_path / "s", active="*=k-2026-11\n")
    (root / "owners").write_text("# recorded by keyops\nk-2026-05 = business, billing\n")
    ring = DirectoryKeySource(root).load()
    assert ring.namespaces_of("k-2026-05") == {"business", "billing"}
    (root / "owners").write_text("k-2026-05\n")
    with pytest.raises(CodecConfigError, match="line 1 of the owners file"):
        DirectoryKeySource(root).load()


def test_directory_source_compression_file(tmp_path: Path) -> None:
    root = write_secret_dir(tmp_path / "s", active="*=k-2026-11\n")
    (root / "compression").write_text("# opt-in, see SPEC 4\nretrieval=4096\n*=0\n")
    ring = DirectoryKeySource(root).load()
    assert ring.compression_threshold_for("retrieval") == 4096
    assert ring.compression_threshold_for("agents") == 0
    (root / "compression").write_text("retrieval=yes\n")
    with pytest.raises(CodecConfigError, match="line 1 of the compression file"):
        DirectoryKeySource(root).load()
