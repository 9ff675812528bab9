"""SeaweedFS as the dev stack's S3-compatible blob store (``make up BLOBS=s3``), and the one
place its command line is built (the tests' S3 server, ``tests/support/s3server.py``, runs the
same).

``weed server`` is one process: master, volume server, filer and S3 gateway, built by
``make s3-server`` (Apache-2.0; MinIO's server is AGPL). The gateway listens on the ``s3``
port, the other three services and every gRPC port on the next seven. One identity may read
and write; its secret is generated into the data directory. The agent worker gets the bucket
through the standard AWS variables, as a deployment would (``agent.blobs.settings``).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from agent.blobs.settings import s3_client
from devstack.config import REPO_ROOT, StackConfig
from devstack.processes import ProcessSpec, StackError, http_ok
from devstack.secrets import write_private

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

NAME = "seaweedfs"
VERSION = (REPO_ROOT / "ops" / "devstack" / "seaweedfs.version").read_text().strip()
BINARY = REPO_ROOT / ".tools" / "seaweedfs" / VERSION / "weed"
BUILD_HINT = f"SeaweedFS {VERSION} is not built: run `make s3-server` (about 10 minutes, once)"
BUCKET = "agent-blobs"
ACCESS_KEY = "devstack"
REGION = "us-east-1"
# Each with an HTTP and a gRPC port: weed's default gRPC port is HTTP + 10000, which a stack's
# port settings cannot promise free.
SERVICES = ("s3", "master", "volume", "filer")


def binary() -> Path:
    if not BINARY.exists():
        raise StackError(BUILD_HINT)
    return BINARY


def port_names() -> list[str]:
    """``<service>`` and ``<service>.grpc`` for each service: the ports ``weed_argv`` needs."""
    return [f"{s}{suffix}" for s in SERVICES for suffix in ("", ".grpc")]


def service_ports(s3_port: int) -> dict[str, int]:
    """Port name -> port: the gateway on ``s3_port``, the rest after it."""
    return {name: s3_port + i for i, name in enumerate(port_names())}


def weed_argv(data_dir: Path, ports: dict[str, int], access_key: str, secret_key: str, host: str) -> list[str]:
    """``weed server`` keeping everything in ``data_dir`` (run it there: it reads configuration
    files from its working directory), one identity allowed everything."""
    identities = {
        "identities": [
            {
                "name": access_key,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    config = data_dir / "s3.json"
    write_private(config, json.dumps(identities))
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary()),
        "server",
        f"-dir={data_dir / 'data'}",
        f"-ip={host}",
        f"-ip.bind={host}",
        "-filer",
        "-s3",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=64",
        # Its unix sockets in its own directory, not /tmp.
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        f"-s3.localSocket={data_dir / 's3.sock'}",
    ]
    for service in SERVICES:
        argv += [f"-{service}.port={ports[service]}", f"-{service}.port.grpc={ports[service + '.grpc']}"]
    return argv


def grpc_sockets(ports: dict[str, int]) -> list[Path]:
    """The in-process gRPC sockets weed server names by port in /tmp; a killed server leaves them."""
    return [Path(f"/tmp/seaweedfs-{s}-grpc-{ports[s + '.grpc']}.sock") for s in SERVICES]


def remove_grpc_sockets(config: StackConfig) -> None:
    for socket in grpc_sockets(service_ports(config.ports["s3"])):
        socket.unlink(missing_ok=True)


def data_dir(config: StackConfig) -> Path:
    return config.data_dir / "seaweedfs"


def secret_key(config: StackConfig) -> str:
    path = config.data_dir / "s3-secret-key"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24))
    return path.read_text().strip()


def endpoint(config: StackConfig) -> str:
    return f"http://{config.host}:{config.ports['s3']}"


def spec(config: StackConfig) -> ProcessSpec:
    ports = service_ports(config.ports["s3"])
    directory = data_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    return ProcessSpec(
        name=NAME,
        argv=weed_argv(directory, ports, ACCESS_KEY, secret_key(config), config.host),
        ports=list(ports.values()),
        ready=http_ok(f"{endpoint(config)}/healthz"),
        start_timeout_s=90.0,
    )


def worker_env(config: StackConfig) -> dict[str, str | None]:
    """What the agent worker needs to keep its blobs in the stack's bucket."""
    return {
        "AGENT_BLOB_STORE": "s3",
        "AGENT_BLOB_S3_BUCKET": BUCKET,
        "AGENT_BLOB_S3_PREFIX": None,
        "AWS_ENDPOINT_URL_S3": endpoint(config),
        "AWS_ENDPOINT_URL": None,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": secret_key(config),
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
    }


def stack_client(config: StackConfig) -> S3Client:
    """A client of the stack's bucket, built as the agent worker builds its own."""
    return s3_client({k: v for k, v in worker_env(config).items() if v is not None})


def ensure_bucket(config: StackConfig, timeout_s: float = 60.0) -> None:
    """Create the bucket unless it is there; the gateway answers before its filer does, so retry."""
    s3 = stack_client(config)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                s3.create_bucket(Bucket=BUCKET)
            return
        except (BotoCoreError, ClientError) as err:
            if time.monotonic() > deadline:
                raise StackError(f"SeaweedFS at {endpoint(config)} did not create the bucket {BUCKET}: {err}") from None
            time.sleep(0.5)
