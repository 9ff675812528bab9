"""`make up`/`status`/`down` as a user runs them (through `python -m devstack`), on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import free_ports

from devstack.config import PORTS
from devstack.temporal_setup import temporal_cli

# Prometheus joins the stack when Debian's prometheus is installed, as `make test` makes sure it is.
PROCESSES = (
    "temporal",
    "model-server",
    "codec-server",
    "retrieval-worker",
    "business-worker",
    "agent-worker",
    "approval-portal",
    "mcp-server",
    "prometheus",
)


def _devstack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args], capture_output=True, text=True, env=env, timeout=180
    )


def test_up_twice_status_endpoints_and_down_leave_nothing_running(tmp_path: Path) -> None:
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=False))
    env = {**os.environ, "DEVSTACK_DATA_DIR": str(tmp_path)}
    env.update({PORTS[name][0]: str(port) for name, port in ports.items()})
    try:
        first = _devstack(env, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "started" in first.stdout
        # What `make demo` (which runs `make up`) shows a person: where to approve refunds.
        assert f"Approval portal    http://127.0.0.1:{ports['approval_portal']}" in first.stdout
        pids = {p.stem: json.loads(p.read_text())["pid"] for p in (tmp_path / "run").glob("*.json")}
        assert set(pids) == set(PROCESSES)

        second = _devstack(env, "up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count("already running") == len(PROCESSES)

        status = _devstack(env, "status")
        assert status.returncode == 0 and status.stdout.count("running (pid") == len(PROCESSES)

        listed = subprocess.run(
            [
                temporal_cli(),
                "operator",
                "nexus",
                "endpoint",
                "list",
                "--address",
                f"127.0.0.1:{ports['temporal']}",
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        endpoints = {e["spec"]["name"]: e["spec"]["target"]["worker"] for e in json.loads(listed.stdout)}
        assert endpoints == {
            "retrieval": {"namespace": "retrieval", "taskQueue": "retrieval"},
            "business": {"namespace": "business", "taskQueue": "business"},
        }
        assert (tmp_path / "logs" / "agent-worker.log").read_text().count("agent-worker ready") == 1
    finally:
        down = _devstack(env, "down")
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], name
    status = _devstack(env, "status")
    assert status.returncode == 3 and status.stdout.count("stopped") == len(PROCESSES)


def test_up_names_the_taken_port(tmp_path: Path) -> None:
    import socket

    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=False))
    env = {**os.environ, "DEVSTACK_DATA_DIR": str(tmp_path)}
    env.update({PORTS[name][0]: str(port) for name, port in ports.items()})
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["temporal_ui"]))
        blocker.listen()
        up = _devstack(env, "up")
    assert up.returncode == 1
    assert f"temporal: port {ports['temporal_ui']} on 127.0.0.1 is already in use" in up.stderr
    assert len(up.stderr.strip().splitlines()) == 1
