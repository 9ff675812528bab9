"""What the tests of the dev stack's cluster mode share: whether a cluster can run here, and a
configuration on free ports of its own."""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import brought_up, free_ports

from devstack import cluster, frontdoor
from devstack.config import PORTS, StackConfig
from devstack.stack import Stack


def cluster_unavailable_reason() -> str | None:
    """Why no cluster can start on this machine (the server not built, HAProxy not installed),
    or None."""
    if reason := cluster.server_build_missing():
        return reason
    if frontdoor.binary() is None:
        return frontdoor.INSTALL_HINT
    return None


def free_port_block(size: int) -> int:
    """The first port of ``size`` consecutive free loopback ports, all below the kernel's
    ephemeral range and at or below cluster.MAX_MEMBERSHIP_PORT (free ports the kernel hands out
    are above both)."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(20000, cluster.MAX_MEMBERSHIP_PORT - size)
        if all(_bindable(port) for port in range(start, start + size)):
            return start
    raise RuntimeError(f"no block of {size} free ports found below {cluster.MAX_MEMBERSHIP_PORT}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def isolated_cluster_config(data_dir: Path) -> StackConfig:
    """A cluster stack's configuration on free ports, in ``data_dir``. Not under pytest's
    tmp_path: PostgreSQL runs as an unprivileged user (as root), and every pytest session on the
    machine makes /tmp/pytest-of-root 0700 again, locking it out mid-run."""
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=False))
    ports["cluster_base"] = free_port_block(cluster.NODES * cluster.NODE_BLOCK)
    return StackConfig(data_dir=data_dir, ports=ports, kind="cluster")


@contextmanager
def running_cluster() -> Iterator[Stack]:
    """A whole cluster-mode stack on its own ports and data directory, the demo knowledge base
    ingested (as :func:`harness.running_stack` does for the dev server); stopped and removed after."""
    data_dir = Path(tempfile.mkdtemp(prefix="cluster-stack-"))
    try:
        with brought_up(Stack(isolated_cluster_config(data_dir))) as stack:
            yield stack
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
