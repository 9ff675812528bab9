"""rotate / activate / retire on both key ring layouts, through the library and the CLI."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from keyops_testing import KEY_A, KEY_B, MATERIAL, all_b64_material, plain, write_dir_ring, write_file_ring

from keyops import _fs
from keyops.cli import main
from keyops.errors import KeyOpsError
from keyops.store import DirectoryStore, FileStore, activate, retire, rotate
from payload_codec import DirectoryKeySource, EncryptionCodec, FileKeySource, KeyRing

NEW_ID = re.compile(r"^default-\d{8}-[0-9a-f]{6}$")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_old_keys_kept(before: KeyRing, after: KeyRing) -> None:
    for key_id in before.key_ids:
        assert after.key(key_id).material == before.key(key_id).material


def test_rotate_file_adds_key_switches_active_and_keeps_old_keys(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_file_ring(path, KEY_A, (KEY_A, KEY_B))
    before = FileKeySource(path).load()
    old_payload = EncryptionCodec(before, "agents").encode_one(plain("old"))

    rotation = rotate(FileStore(path), "*")

    after = FileKeySource(path).load()
    assert NEW_ID.match(rotation.new_key_id)
    assert rotation.previous_key_id == KEY_A and rotation.key_count == 3
    assert after.active == {"*": rotation.new_key_id}
    assert len(after.key(rotation.new_key_id).material) == 32
    assert after.key(rotation.new_key_id).material not in MATERIAL.values()
    _assert_old_keys_kept(before, after)
    # Histories written under the old key still decode with the rotated ring.
    assert EncryptionCodec(after, "agents").decode_one(old_payload).data == b'"old"'
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"], "no temp file left behind"


def test_rotate_one_namespace_leaves_the_default(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_file_ring(path)
    rotation = rotate(FileStore(path), "business")
    after = FileKeySource(path).load()
    assert rotation.new_key_id.startswith("business-")
    assert after.active == {"*": KEY_A, "business": rotation.new_key_id}
    # Rotating the default afterwards names the namespace that keeps its own key.
    again = rotate(FileStore(path), "*")
    assert again.unaffected == {"business": rotation.new_key_id}


def test_rotate_directory_writes_key_file_and_active(tmp_path: Path) -> None:
    directory = tmp_path / "secret"
    write_dir_ring(directory)
    before = DirectoryKeySource(directory).load()

    rotation = rotate(DirectoryStore(directory), "*")

    after = DirectoryKeySource(directory).load()
    assert after.active == {"*": rotation.new_key_id}
    _assert_old_keys_kept(before, after)
    key_file = directory / f"{rotation.new_key_id}.key"
    assert _mode(key_file) == 0o600 and _mode(directory / "active") == 0o600
    # The operator's comment survives; the default line is replaced, not duplicated.
    assert (directory / "active").read_text() == f"# managed by keyops\n*={rotation.new_key_id}\n"
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["active", f"{KEY_A}.key", f"{rotation.new_key_id}.key"]
    )


def test_stage_then_activate_then_retire(tmp_path: Path) -> None:
    directory = tmp_path / "secret"
    write_dir_ring(directory)
    store = DirectoryStore(directory)
    staged = rotate(store, "*", activate=False)
    assert not staged.activated
    assert DirectoryKeySource(directory).load().active == {"*": KEY_A}
    with pytest.raises(KeyOpsError, match="is the active key for"):
        retire(store, KEY_A)
    switched = activate(store, "*", staged.new_key_id)
    assert switched.previous_key_id == KEY_A
    assert DirectoryKeySource(directory).load().active == {"*": staged.new_key_id}
    assert retire(store, KEY_A) == 1
    assert KEY_A not in DirectoryKeySource(directory).load()


def test_write_is_atomic_a_failed_rename_leaves_the_old_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keyring.json"
    write_file_ring(path)
    original = path.read_bytes()

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fs.os, "replace", fail)
    with pytest.raises(KeyOpsError, match="previous file is unchanged"):
        rotate(FileStore(path), "*")
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]


def test_a_broken_ring_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text('{"keys": {"k1": "dG9vIHNob3J0"}, "active": {"*": "k1"}}')
    with pytest.raises(KeyOpsError, match="not usable"):
        rotate(FileStore(path), "*")
    assert "dG9vIHNob3J0" in path.read_text()


def test_missing_ring_needs_create(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    with pytest.raises(KeyOpsError, match="--create"):
        rotate(FileStore(path), "*")
    rotation = rotate(FileStore(path), "*", create=True)
    assert FileKeySource(path).load().active == {"*": rotation.new_key_id}
    assert _mode(path) == 0o600


@pytest.mark.parametrize("layout", ["file", "dir"])
def test_cli_prints_ids_and_next_steps_never_material(
    tmp_path: Path, layout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / ("keyring.json" if layout == "file" else "secret")
    (write_file_ring if layout == "file" else write_dir_ring)(target)
    flag = "--keyring-file" if layout == "file" else "--keyring-dir"

    assert main(["rotate", "--namespace", "*", flag, str(target)]) == 0
    human = capsys.readouterr()
    assert main(["rotate", "--namespace", "*", flag, str(target), "--json"]) == 0
    machine = capsys.readouterr()

    result = json.loads(machine.out)
    assert result["previous_key_id"] != result["new_key_id"]
    assert result["new_key_id"] in human.out + machine.out
    assert "make restart-workers" in human.out and "rollout restart" in human.out
    printed = human.out + human.err + machine.out + machine.err
    secrets = all_b64_material([target])
    assert len(secrets) == 4  # the two test keys and the two keys the CLI made
    for secret in secrets:
        assert secret not in printed
        assert secret.rstrip("=") not in printed


def test_cli_errors_are_one_sentence_and_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rotate", "--namespace", "*", "--keyring-file", str(tmp_path / "nope.json")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("keyops: there is no key ring at") and err.count("\n") == 1
    assert "Traceback" not in err
    code = main(["rotate", "--namespace", "bad ns!", "--keyring-file", str(tmp_path / "nope.json")])
    assert code == 1 and "not a namespace name" in capsys.readouterr().err


def test_new_ring_file_mode_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        rotation = rotate(FileStore(tmp_path / "k.json"), "agents", create=True)
    finally:
        os.umask(old)
    assert rotation.new_key_id.startswith("agents-")
    assert _mode(tmp_path / "k.json") == 0o600


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_a_replaced_namespace_key_keeps_its_owner_until_retired(tmp_path: Path, layout: str) -> None:
    """The codec server refuses keys of other namespaces; a business key must stay business's
    after business rotates away from it, and retiring it leaves a loadable ring."""
    where = tmp_path / ("keyring.json" if layout == "file" else "ring")
    if layout == "file":
        write_file_ring(where)
        store: FileStore | DirectoryStore = FileStore(where)
    else:
        write_dir_ring(where)
        store = DirectoryStore(where)
    first = rotate(store, "business").new_key_id
    second = rotate(store, "business").new_key_id
    rotate(store, "*")
    ring = store.load()
    assert ring.active["business"] == second
    assert ring.namespaces_of(first) == {"business"}, "the replaced business key is still business's"
    assert ring.namespaces_of(KEY_A) == {"*"}, "the old default key stays shared"
    activate(store, "business", first)
    assert store.load().namespaces_of(second) == {"business"}
    retire(store, second)
    assert second not in store.load().owners
