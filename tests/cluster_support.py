"""What the tests of the dev stack's cluster mode share: whether a cluster can run here, and a
configuration on free ports of its own."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import brought_up, free_port_block, isolated_config

from devstack import cluster, frontdoor, s3
from devstack.config import StackConfig
from devstack.stack import Stack


def cluster_unavailable_reason() -> str | None:
    """Why no cluster can start on this machine (the server not built, HAProxy not installed),
    or None."""
    if reason := cluster.server_build_missing():
        return reason
    if frontdoor.binary() is None:
        return frontdoor.INSTALL_HINT
    return None


def isolated_cluster_config(data_dir: Path) -> StackConfig:
    """A cluster stack's configuration on free ports, in ``data_dir``. Not under pytest's
    tmp_path: PostgreSQL runs as an unprivileged user (as root), and every pytest session on the
    machine makes /tmp/pytest-of-root 0700 again, locking it out mid-run."""
    config = isolated_config(data_dir)
    # Every node's block at or below the highest membership port the server's schema can keep.
    cluster_base = free_port_block(
        cluster.NODES * cluster.NODE_BLOCK,
        below=cluster.MAX_MEMBERSHIP_PORT + 1,
        taken=s3.service_ports(config.ports["s3"]).values(),
    )
    return dataclasses.replace(config, ports={**config.ports, "cluster_base": cluster_base}, kind="cluster")


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
