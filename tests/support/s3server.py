"""A real S3-compatible server for tests: SeaweedFS (Apache-2.0), built by `make s3-server`,
run with the dev stack's command line (:mod:`devstack.s3`) but on free ports of its own.

One ``weed server`` process with its own data and working directory, one identity with
read/write access, stopped by its PID. Stopped and started again on the same ports and
directory, it keeps its buckets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from harness import free_ports
from types_boto3_s3 import S3Client

from agent.blobs.settings import s3_client
from devstack import s3

ACCESS_KEY = "blob-tests"
SECRET_KEY = "blob-tests-secret-0123456789abcdef"


@dataclass
class S3Server:
    """A running ``weed server``; ``stop()`` and ``start()`` keep ports and data."""

    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """What a worker needs to keep its blobs in ``bucket`` here (the standard AWS variables)."""
        return {
            "AGENT_BLOB_STORE": "s3",
            "AGENT_BLOB_S3_BUCKET": bucket,
            "AGENT_BLOB_S3_PREFIX": prefix,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_REGION": s3.REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> S3Client:
        """A client built as the workers build theirs (``agent.blobs.settings``)."""
        return s3_client(self.env(""))

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def start(self) -> None:
        if not s3.BINARY.exists():
            pytest.skip(s3.BUILD_HINT)
        if not self.ports:
            names = s3.port_names()
            self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        argv = s3.weed_argv(self.data_dir, self.ports, ACCESS_KEY, SECRET_KEY, "127.0.0.1")
        log = (self.data_dir / "weed.log").open("ab")
        self.process = subprocess.Popen(
            argv, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 90) -> None:
        """Until the gateway answers a signed call (the filer and a volume are up behind it)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        probe = self.client()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited ({self.process.returncode}); see {self.data_dir / 'weed.log'}")
            try:
                probe.list_buckets()
                return
            except (BotoCoreError, ClientError):
                if time.monotonic() > deadline:
                    log = self.data_dir / "weed.log"
                    raise RuntimeError(f"weed server not ready after {timeout_s:.0f} s; see {log}") from None
                time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM to the server's own process group (it was started in a new session), SIGKILL
        after a few seconds (its filer can take twenty to drain)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for socket in s3.grpc_sockets(self.ports):
            socket.unlink(missing_ok=True)


@contextmanager
def running_s3_server(data_dir: Path) -> Iterator[S3Server]:
    server = S3Server(data_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
