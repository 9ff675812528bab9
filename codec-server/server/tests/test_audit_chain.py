"""The audit log is a hash chain: edits, deletions and reordering are found and named, also
when two server processes share the file and across restarts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from codec_server_testing import Issuer, b64, post, run_server

from payload_codec.auditlog import GENESIS, chained_line, verify

PLAIN = {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'"audited"')}
CHAIN_KEY = b"k" * 32


@pytest.fixture(scope="module")
def shared_log(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two server processes appending to one file at the same time, then a third after both
    stopped (a restart): one chain throughout."""
    tmp = tmp_path_factory.mktemp("audit-chain")
    log, key_file = tmp / "audit.jsonl", tmp / "chain.key"
    for name in "abc":
        (tmp / name).mkdir()
    key_file.write_bytes(CHAIN_KEY + b"\n")
    env = {
        "CODEC_SERVER_AUDIT_LOG": str(log),
        "CODEC_SERVER_AUDIT_CHAIN_KEY_FILE": str(key_file),
        "CODEC_SERVER_MAX_BODY_BYTES": str(1 << 20),
    }
    with run_server(tmp / "a", issuer, env) as a, run_server(tmp / "b", issuer, env) as b:
        # A line longer than one read-back step (4 000 digests, about 80 KB) that the other
        # process must read whole to continue the chain.
        many = post(b, "/encode", {"payloads": [PLAIN] * 4000}).json()
        assert post(a, "/decode", many).status_code == 200
        for i in range(4):
            post(a if i % 2 else b, "/decode", {"payloads": [PLAIN]}, who="bob" if i % 3 else "alice")
        post(a, "/decode", {"payloads": [PLAIN]}, who=None)  # refusals are chained too
    with run_server(tmp / "c", issuer, env) as c:
        post(c, "/encode", {"payloads": [PLAIN]})
    return log


def keyops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keyops", *args], capture_output=True, text=True, timeout=60)


def test_the_chain_spans_processes_and_restarts(shared_log: Path) -> None:
    lines = shared_log.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 9))
    assert json.loads(lines[0])["prev"] == GENESIS
    key_file = shared_log.parent / "chain.key"
    done = keyops("audit-verify", "--audit-log", str(shared_log), "--chain-key-file", str(key_file), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) | {"head": "-"} == {
        "ok": True,
        "entries": 8,
        "legacy_lines": 0,
        "head_seq": 8,
        "head": "-",
        "problem": None,
    }
    # Without the key the hashes do not match: the file was chained under one.
    assert verify(lines).problem is not None


def tampered(lines: list[str], how: str) -> list[str]:
    out = list(lines)
    if how == "edit":
        out[2] = out[2].replace('"subject":"bob"', '"subject":"eve"').replace('"subject":"alice"', '"subject":"eve"')
    elif how == "delete":
        del out[2]
    elif how == "reorder":
        out[2], out[3] = out[3], out[2]
    elif how == "rechain":
        # Edit line 3 and recompute its hash as an editor without the key can: SHA-256, no key.
        entry = json.loads(out[2])
        entry["subject"] = "eve"
        out[2], _ = chained_line({k: v for k, v in entry.items() if k != "chain"}, entry["seq"], entry["prev"])
    elif how == "garbage":
        out.insert(4, "not a line the server wrote")
    return out


@pytest.mark.parametrize(
    "how, line, kind, fragment",
    [
        ("edit", 3, "altered", "line 3 (seq 3) was altered"),
        ("delete", 3, "removed", "seq 3 removed before line 3 (seq 4)"),
        ("reorder", 3, "reordered", "line 3 (seq 4) is out of order: seq 3 should come first (it is at line 4)"),
        ("rechain", 3, "altered", "line 3 (seq 3) was altered"),
        ("garbage", 5, "altered", "line 5 is not a chained audit entry"),
    ],
)
def test_tampering_is_found_at_the_first_bad_entry(
    shared_log: Path, how: str, line: int, kind: str, fragment: str
) -> None:
    result = verify(tampered(shared_log.read_text().splitlines(), how), CHAIN_KEY)
    assert result.problem is not None
    assert (result.problem.line, result.problem.kind) == (line, kind), result.problem
    assert fragment in result.problem.message
    assert result.entries == line - 1, "entries before the problem still count as verified"


def test_without_a_key_a_rechained_edit_shows_at_the_next_entry(tmp_path: Path) -> None:
    lines, prev = [], GENESIS
    for seq in range(1, 5):
        line, prev = chained_line({"subject": f"user{seq}"}, seq, prev)
        lines.append(line)
    assert verify(lines).ok
    edited = tampered(lines, "rechain")
    edited[2] = edited[2].replace('"subject":"user3"', '"subject":"eve"')
    entry = json.loads(edited[2])
    edited[2], _ = chained_line({k: v for k, v in entry.items() if k != "chain"}, 3, entry["prev"])
    problem = verify(edited).problem
    assert problem is not None and (problem.line, problem.kind) == (4, "altered")
    assert "does not chain to the entry before it" in problem.message
    log = tmp_path / "audit.jsonl"
    log.write_text("\n".join(edited) + "\n")
    done = keyops("audit-verify", "--audit-log", str(log))
    assert done.returncode == 1 and "audit log NOT intact: line 4 (seq 4) does not chain" in done.stdout


def test_lines_from_before_chaining_are_counted_not_verified() -> None:
    line, _ = chained_line({"subject": "x"}, 1, GENESIS)
    result = verify(['{"event":"codec_request","subject":"old"}', line])
    assert result.ok and result.legacy_lines == 1 and result.entries == 1
