"""The process manager behind `make up`/`make down`, with real processes and real ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.processes import ProcessManager, ProcessSpec, StackError, http_ok, port_in_use


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http_server(port: int) -> ProcessSpec:
    return ProcessSpec(
        name="web",
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ports=[port],
        ready=http_ok(f"http://127.0.0.1:{port}/"),
        start_timeout_s=20,
    )


@pytest.fixture
def manager(tmp_path: Path):
    mgr = ProcessManager(tmp_path / "run", tmp_path / "logs", "127.0.0.1")
    yield mgr
    mgr.stop("web")
    mgr.stop("dies")


def test_start_waits_for_readiness_and_a_second_start_is_harmless(manager: ProcessManager) -> None:
    port = _free_port()
    first = manager.start(_http_server(port))
    assert http_ok(f"http://127.0.0.1:{port}/")()
    second = manager.start(_http_server(port))
    assert second.pid == first.pid  # already running: nothing new started
    assert manager.stop("web") is True
    assert not port_in_use("127.0.0.1", port)
    assert manager.stop("web") is False  # nothing left to stop


def test_port_taken_by_a_stranger_is_named(manager: ProcessManager) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(StackError, match=rf"web: port {port} on 127.0.0.1 is already in use"):
            manager.start(_http_server(port))


def test_process_dying_at_start_names_its_log_file(manager: ProcessManager) -> None:
    spec = ProcessSpec(
        name="dies",
        argv=[sys.executable, "-c", "import sys; print('bad config'); sys.exit(3)"],
        ports=[],
        ready=lambda: False,
    )
    with pytest.raises(StackError) as err:
        manager.start(spec)
    log_path = manager.log_path("dies")
    assert str(err.value) == f"dies exited with code 3 during start-up; see {log_path}"
    assert "bad config" in log_path.read_text()


def test_stop_never_kills_a_process_that_reused_the_pid(manager: ProcessManager, tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # A stale pid file naming a live process that this stack did not start (other start time).
        (tmp_path / "run").mkdir(parents=True, exist_ok=True)
        (tmp_path / "run" / "web.json").write_text(
            f'{{"name": "web", "pid": {stranger.pid}, "start_time": "1", "log_path": "x"}}'
        )
        assert manager.running("web") is None
        assert manager.stop("web") is False
        time.sleep(0.2)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
