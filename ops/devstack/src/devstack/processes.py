"""Start, watch and stop the stack's processes, each with its own log file and pid file.

A pid file records the pid and the process start time from /proc, so ``down`` stops exactly
the processes this stack started and never a stranger that reused a pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A stack operation failed; the message is one line that says what and where to look."""


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    ports: list[int]
    ready: Callable[[], bool]
    env: dict[str, str | None] = field(default_factory=dict)
    """Added to the parent's environment; a None value removes that variable."""
    start_timeout_s: float = 60.0
    user: str | None = None
    """Run as this system user (PostgreSQL refuses to run as root); None: as ourselves."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError):
            return False

    return check


def _start_time(pid: int) -> str | None:
    try:
        # Field 22 of /proc/<pid>/stat; the command name (field 2) may contain spaces.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # exited, not yet reaped
        return None
    return fields[19]


@dataclass
class RunningProcess:
    name: str
    pid: int
    start_time: str
    log_path: str

    def alive(self) -> bool:
        return _start_time(self.pid) == self.start_time


class ProcessManager:
    def __init__(self, run_dir: Path, log_dir: Path, host: str) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.host = host

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def running(self, name: str) -> RunningProcess | None:
        try:
            proc = RunningProcess(**json.loads(self._pid_file(name).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return proc if proc.alive() else None

    def start(self, spec: ProcessSpec) -> RunningProcess:
        """Start ``spec`` unless it already runs; wait until its readiness check passes."""
        return self.start_all([spec])[0]

    def start_all(self, specs: list[ProcessSpec]) -> list[RunningProcess]:
        """Launch every spec that is not running, then wait for all: start-up overlaps."""
        launched: list[tuple[ProcessSpec, RunningProcess, subprocess.Popen[bytes] | None]] = []
        try:
            for spec in specs:
                existing = self.running(spec.name)
                if existing is not None:
                    launched.append((spec, existing, None))
                else:
                    launched.append((spec, *self._launch(spec)))
            for spec, _proc, popen in launched:
                if popen is not None:
                    self._wait_ready(spec, popen)
        except StackError:
            for spec, _, popen in launched:
                if popen is not None:
                    self.stop(spec.name)
            raise
        return [proc for _, proc, _ in launched]

    def _launch(self, spec: ProcessSpec) -> tuple[RunningProcess, subprocess.Popen[bytes]]:
        for port in spec.ports:
            if port_in_use(self.host, port):
                raise StackError(
                    f"{spec.name}: port {port} on {self.host} is already in use by another "
                    f"process; free it or override the port (see ops/devstack/src/devstack/config.py)"
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(spec.name)
        with open(log_path, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {spec.name}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                spec.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={k: v for k, v in {**os.environ, **spec.env}.items() if v is not None},
                start_new_session=True,  # own process group: down stops its children too
                user=spec.user,
            )
        proc = RunningProcess(spec.name, popen.pid, _start_time(popen.pid) or "", str(log_path))
        self._pid_file(spec.name).write_text(json.dumps(vars(proc)))
        return proc, popen

    def _wait_ready(self, spec: ProcessSpec, popen: subprocess.Popen[bytes]) -> None:
        log_path = self.log_path(spec.name)
        deadline = time.monotonic() + spec.start_timeout_s
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                self._pid_file(spec.name).unlink(missing_ok=True)
                raise StackError(f"{spec.name} exited with code {popen.returncode} during start-up; see {log_path}")
            if spec.ready():
                return
            time.sleep(0.1)
        raise StackError(f"{spec.name} was not ready after {spec.start_timeout_s:.0f}s; see {log_path}")

    def stop(self, name: str, timeout_s: float = 15.0) -> bool:
        """Stop a process this manager started (SIGTERM, then SIGKILL). True if one was running."""
        proc = self.running(name)
        if proc is None:
            self._pid_file(name).unlink(missing_ok=True)
            return False
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.alive():
            _reap(proc.pid)
            time.sleep(0.1)
        if proc.alive():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(proc.pid)
        self._pid_file(name).unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    # Our own children stay zombies (and "alive" by /proc) until waited for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
