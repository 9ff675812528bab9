"""These tests start no Temporal server and no worker process: only Temporal's test server."""

from __future__ import annotations

import os
from pathlib import Path

from agent_doubles import Agents

TEST_SERVER_MAIN = "io.temporal.testserver.TestServer"


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found.append((child, cmdline.strip()))
        todo.extend(children.get(child, []))
    return found


async def test_only_the_test_server_runs_beside_the_tests(agents: Agents) -> None:
    # The session is up: the workers of every queue poll, a conversation can run.
    assert await agents.env.get_current_time()
    processes = _descendants(os.getpid())

    assert any(TEST_SERVER_MAIN in cmd for _, cmd in processes), processes
    others = [cmd for _, cmd in processes if TEST_SERVER_MAIN not in cmd and "temporal-test-server/run" not in cmd]
    assert others == [], f"processes other than the test server were started: {others}"
    for _, cmd in processes:
        for word in ("temporal server", "agent.worker", "business.worker", "retrieval-worker", "modelserver"):
            assert word not in cmd, cmd
