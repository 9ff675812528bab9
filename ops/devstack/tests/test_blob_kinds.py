"""``make up BLOBS=s3`` without starting anything: the kind remembered per data directory, the
settings the agent worker gets, SeaweedFS's ports beside the gateway's."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import s3
from devstack.config import StackConfig
from devstack.stack import Stack


def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs: str | None) -> StackConfig:
    monkeypatch.setenv("DEVSTACK_DATA_DIR", str(tmp_path))
    return StackConfig.from_env("dev", None, blobs)


def test_the_blob_kind_is_remembered_per_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config(tmp_path, monkeypatch, None).blobs == "local"
    config(tmp_path, monkeypatch, "s3").remember_kinds()
    assert config(tmp_path, monkeypatch, None).blobs == "s3"
    with pytest.raises(ValueError, match="BLOBS must be one of local, s3, got 'gcs'"):
        config(tmp_path, monkeypatch, "gcs")


def test_the_agent_worker_gets_the_bucket_the_standard_aws_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = config(tmp_path, monkeypatch, "s3")
    env = s3.worker_env(c)
    assert env["AGENT_BLOB_STORE"] == "s3" and env["AGENT_BLOB_S3_BUCKET"] == s3.BUCKET
    assert env["AWS_ENDPOINT_URL_S3"] == f"http://127.0.0.1:{c.ports['s3']}"
    # The generated secret, kept private in the data directory and the same on every call.
    secret = tmp_path / "s3-secret-key"
    assert env["AWS_SECRET_ACCESS_KEY"] == secret.read_text().strip() == s3.worker_env(c)["AWS_SECRET_ACCESS_KEY"]
    assert secret.stat().st_mode & 0o077 == 0
    # A profile or session token from the caller's shell never reaches the worker.
    assert env["AWS_PROFILE"] is None and env["AWS_SESSION_TOKEN"] is None
    ports = s3.service_ports(c.ports["s3"])
    assert ports["s3"] == c.ports["s3"] and sorted(ports.values()) == list(range(c.ports["s3"], c.ports["s3"] + 8))


def test_local_blobs_ignore_an_inherited_store_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_BLOB_STORE", "s3")
    stack = Stack(config(tmp_path, monkeypatch, "local"))
    [agent] = [s for s in stack.specs() if s.name == "agent-worker"]
    assert agent.env["AGENT_BLOB_STORE"] == "local"
    assert s3.NAME not in stack.process_names()
