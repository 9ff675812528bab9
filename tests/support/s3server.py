"""A real S3-compatible server for tests: SeaweedFS (Apache-2.0), built by `make s3-server`.

One ``weed server`` process (master, volume server, filer, S3 gateway) on free ports, with its
own data directory and working directory (it reads configuration files from its working
directory), one identity with read/write access, stopped by its PID. Stopped and started again
on the same ports and directory, it keeps its buckets: tests use that for an outage.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from harness import free_ports
from types_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "ops" / "devstack" / "seaweedfs.version").read_text().strip()
BINARY = ROOT / ".tools" / "seaweedfs" / VERSION / "weed"
ACCESS_KEY = "blob-tests"
SECRET_KEY = "blob-tests-secret-0123456789abcdef"
REGION = "us-east-1"
# weed server's services, each with an HTTP and a gRPC port (the gRPC default is HTTP + 10000,
# which free-port picking cannot promise).
_SERVICES = ("master", "volume", "filer", "s3")


def binary_or_skip() -> Path:
    if not BINARY.exists():
        pytest.skip(f"SeaweedFS {VERSION} is not built: run `make s3-server` (about 10 minutes, once)")
    return BINARY


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
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self, secret_key: str = SECRET_KEY) -> S3Client:
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret_key, region_name=REGION
        ).client(
            "s3",
            endpoint_url=self.endpoint,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2),
        )

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def start(self) -> None:
        binary = binary_or_skip()
        if not self.ports:
            names = [f"{s}{suffix}" for s in _SERVICES for suffix in ("", ".grpc")]
            self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps(_identities()))
        store = self.data_dir / "data"
        store.mkdir(exist_ok=True)
        argv = [
            str(binary),
            "server",
            f"-dir={store}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-filer",
            "-s3",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=64",
            # Its unix sockets in its own directory, not /tmp (a killed server leaves them).
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
        ]
        for service in _SERVICES:
            argv += [f"-{service}.port={self.ports[service]}", f"-{service}.port.grpc={self.ports[service + '.grpc']}"]
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
        # weed server names its in-process gRPC sockets by port, in /tmp, and a killed one leaves them.
        for service in _SERVICES:
            Path(f"/tmp/seaweedfs-{service}-grpc-{self.ports[service + '.grpc']}.sock").unlink(missing_ok=True)


def _identities() -> dict[str, object]:
    return {
        "identities": [
            {
                "name": "blob-tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


@contextmanager
def running_s3_server(data_dir: Path) -> Iterator[S3Server]:
    server = S3Server(data_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
