"""Small pieces: workflow ids, the activity's error mapping, start-up failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from business.activities import INVALID_REFUND, ORDER_NOT_FOUND, BusinessActivities
from business.service_handler import refund_workflow_id
from business.store import SqliteStore, refund_id_for
from business.worker import open_store
from nexus_contracts.business import RefundRequest
from workerkit import ConfigError


def test_workflow_id_is_stable_readable_and_collision_free() -> None:
    wid = refund_workflow_id("support-42/step-3")
    assert wid == refund_workflow_id("support-42/step-3")
    assert wid.startswith("refund-support-42-step-3-")
    # Keys that sanitise alike still get distinct workflows (and so distinct refunds).
    assert refund_workflow_id("a/b") != refund_workflow_id("a-b")
    assert refund_workflow_id("///").startswith("refund-") and len(refund_workflow_id("x" * 200)) < 120


def test_activity_applies_refund_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.sqlite3")
    try:
        acts = BusinessActivities(store)
        request = RefundRequest("ORD-1001", 2500, "cracked", "k")
        env = ActivityEnvironment()
        first = env.run(acts.apply_refund, request)
        assert env.run(acts.apply_refund, request) == first
        assert first.refund_id == refund_id_for("k")
        assert len(store.refunds_for_order("ORD-1001")) == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    ("request_", "error_type", "message"),
    [
        (RefundRequest("ORD-9", 100, "x", "k"), ORDER_NOT_FOUND, "order ORD-9 does not exist"),
        (RefundRequest("ORD-1001", 99999, "x", "k"), INVALID_REFUND, "cannot refund 999.99 EUR"),
    ],
)
def test_activity_business_errors_are_non_retryable(
    tmp_path: Path, request_: RefundRequest, error_type: str, message: str
) -> None:
    store = SqliteStore(tmp_path / "b.sqlite3")
    try:
        with pytest.raises(ApplicationError, match=message) as info:
            ActivityEnvironment().run(BusinessActivities(store).apply_refund, request_)
    finally:
        store.close()
    assert info.value.type == error_type
    assert info.value.non_retryable


def test_unwritable_db_path_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("BUSINESS_DB_PATH", str(blocker / "business.sqlite3"))
    with pytest.raises(ConfigError, match="cannot open the business database .* Set BUSINESS_DB_PATH"):
        open_store()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_without_server_exits_1_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{_free_port()}",
        "BUSINESS_HEALTH_PORT": str(_free_port()),
        "BUSINESS_DB_PATH": str(tmp_path / "b.sqlite3"),
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "none.toml"),
        # A valid key ring, so the failure under test is the unreachable server.
        "CODEC_KEYRING": '{"keys": {"k1": "' + "A" * 43 + '="}, "active": {"*": "k1"}}',
    }
    env.pop("TEMPORAL_NAMESPACE", None)
    proc = subprocess.run([sys.executable, "-m", "business"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("business-worker: cannot reach the Temporal server at 127.0.0.1:")
    assert "Traceback" not in proc.stderr


def test_worker_whose_health_port_is_taken_exits_1_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{_free_port()}",
            "BUSINESS_HEALTH_PORT": str(port),
            "BUSINESS_METRICS_PORT": str(_free_port()),
            "BUSINESS_DB_PATH": str(tmp_path / "b.sqlite3"),
            "CODEC_KEYRING": '{"keys": {"k1": "' + "A" * 43 + '="}, "active": {"*": "k1"}}',
        }
        proc = subprocess.run([sys.executable, "-m", "business"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"business-worker: cannot serve health probes: port {port} on 127.0.0.1 is already in use; "
        "stop the process using it or choose another port with BUSINESS_HEALTH_PORT."
    ], proc.stderr


def test_migrate_says_in_one_line_that_the_database_is_unreachable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BUSINESS_STORE": "postgres",
        "BUSINESS_DATABASE_URL": "postgresql://business@127.0.0.1:1/business",
        "BUSINESS_DATABASE_CONNECT_TIMEOUT": "2",
        "PGPASSWORD": "s3cret-never-shown",
    }
    done = subprocess.run(
        [sys.executable, "-m", "business", "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "business migrate: cannot reach the business database at business@127.0.0.1:1/business"
    )
    assert "s3cret" not in done.stderr + done.stdout


def test_an_unknown_store_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUSINESS_STORE", "mysql")
    with pytest.raises(ConfigError, match="BUSINESS_STORE must be one of sqlite, postgres, got 'mysql'"):
        open_store()
