"""The codec server client's pieces that need no server: batching, tokens, the audit label."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from keyops import codec_client
from keyops.codec_client import CodecServerClient, _batches, read_token
from keyops.errors import KeyOpsError
from keyops.export import audit_user_agent


def test_batches_respect_count_and_size_and_keep_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec_client, "MAX_BATCH_PAYLOADS", 3)
    monkeypatch.setattr(codec_client, "MAX_BATCH_DATA_BYTES", 100)
    payloads = [Payload(data=bytes([i]) * size) for i, size in enumerate([10, 10, 10, 10, 90, 200, 5])]
    batches = [list(b) for b in _batches(payloads)]
    assert [len(b) for b in batches] == [3, 2, 1, 1]  # 10+90 fits in 100; 200 goes alone
    assert [p for b in batches for p in b] == payloads  # an oversized payload travels alone
    assert list(_batches([])) == []


def test_token_file_must_hold_one_token(tmp_path: Path) -> None:
    good = tmp_path / "token"
    good.write_text("abc.def-ghi\n")
    assert read_token(good) == "abc.def-ghi"
    bad = tmp_path / "two"
    bad.write_text("one two\n")
    with pytest.raises(KeyOpsError, match="one bearer token") as caught:
        read_token(bad)
    assert "one two" not in str(caught.value)
    with pytest.raises(KeyOpsError, match="cannot read the token file"):
        read_token(tmp_path / "missing")


def test_endpoint_must_be_http_and_token_stays_out_of_repr() -> None:
    with pytest.raises(KeyOpsError, match="http"):
        CodecServerClient("codec.example.com:8404", "secret-token")
    client = CodecServerClient("http://127.0.0.1:8404/", "secret-token")
    assert client.endpoint == "http://127.0.0.1:8404"
    assert "secret-token" not in repr(client)


def test_unreachable_codec_server_is_one_sentence() -> None:
    client = CodecServerClient("http://127.0.0.1:9", "t")
    with pytest.raises(KeyOpsError, match="cannot reach the codec server at http://127.0.0.1:9"):
        client.decode("agents", [Payload(data=b"x")], user_agent="test")


def test_audit_user_agent_names_the_export_in_header_safe_text() -> None:
    agent = audit_user_agent("agents", "order/ü 42", "run-1")
    assert agent.startswith("keyops-export/") and "ns=agents" in agent and "run=run-1" in agent
    assert "workflow=order%2F%C3%BC%2042" in agent
    agent.encode("latin-1")  # a header value must be
