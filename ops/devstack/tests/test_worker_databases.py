"""``make up DB=postgres`` without starting anything: which processes and settings it means."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.config import StackConfig
from devstack.stack import Stack


def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: str | None) -> StackConfig:
    monkeypatch.setenv("DEVSTACK_DATA_DIR", str(tmp_path))
    return StackConfig.from_env("dev", db)


def test_the_db_kind_is_remembered_per_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config(tmp_path, monkeypatch, None).db == "embedded"
    config(tmp_path, monkeypatch, "postgres").remember_kinds()
    assert config(tmp_path, monkeypatch, None).db == "postgres"
    assert config(tmp_path, monkeypatch, "embedded").db == "embedded"
    with pytest.raises(ValueError, match="DB must be one of embedded, postgres, got 'mysql'"):
        config(tmp_path, monkeypatch, "mysql")


def test_postgres_runs_business_replicas_on_the_stacks_own_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(config(tmp_path, monkeypatch, "postgres"))
    names = stack.process_names()
    assert names[:2] == ["postgres", "temporal"]
    assert {"business-worker", "business-worker-2"} <= set(names) and "business-worker-3" not in names
    specs = stack._business_specs()
    assert [s.name for s in specs] == ["business-worker", "business-worker-2"]
    for spec in specs:
        assert spec.env["BUSINESS_STORE"] == "postgres"
        assert (
            spec.env["BUSINESS_DATABASE_URL"]
            == f"postgresql://business@127.0.0.1:{stack.config.ports['postgres']}/business"
        )
        assert spec.env["BUSINESS_DATABASE_PASSWORD_FILE"] == str(tmp_path / "db-passwords" / "business")
        assert spec.env["BUSINESS_DB_PATH"] is None
    # Each replica its own probe and metrics ports.
    assert len({port for s in specs for port in s.ports}) == 4
    assert len(Stack(stack.config, business_replicas=3)._business_specs()) == 3


def test_embedded_runs_one_business_worker_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = Stack(config(tmp_path, monkeypatch, None), business_replicas=3)
    assert "postgres" not in stack.process_names()
    [spec] = stack._business_specs()
    assert spec.env["BUSINESS_DB_PATH"] == str(tmp_path / "business.sqlite3") and "BUSINESS_STORE" not in spec.env
