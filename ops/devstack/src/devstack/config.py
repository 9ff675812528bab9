"""The one place the dev stack's ports, paths and settings come from.

Every value has a default and an environment override (``DEVSTACK_*``), so two stacks or a
stack and the test suite never need to share a port.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]

# name -> (environment override, default port)
PORTS: dict[str, tuple[str, int]] = {
    "temporal": ("DEVSTACK_TEMPORAL_PORT", 7233),
    "temporal_ui": ("DEVSTACK_TEMPORAL_UI_PORT", 8233),
    "temporal_http": ("DEVSTACK_TEMPORAL_HTTP_PORT", 7243),
    "temporal_metrics": ("DEVSTACK_TEMPORAL_METRICS_PORT", 7235),
    "model_server": ("DEVSTACK_MODEL_SERVER_PORT", 8400),
    "retrieval_worker": ("DEVSTACK_RETRIEVAL_WORKER_PORT", 8401),
    "business_worker": ("DEVSTACK_BUSINESS_WORKER_PORT", 8402),
    "agent_worker": ("DEVSTACK_AGENT_WORKER_PORT", 8403),
    "codec_server": ("DEVSTACK_CODEC_SERVER_PORT", 8404),
    "approval_portal": ("DEVSTACK_APPROVAL_PORTAL_PORT", 8405),
    "mcp_server": ("DEVSTACK_MCP_SERVER_PORT", 8406),
    # Python workers serve the Temporal SDK's Prometheus exporter (SDK and custom metrics) on a
    # port of its own: the core SDK binds it, so it cannot share the health server's port.
    "business_metrics": ("DEVSTACK_BUSINESS_METRICS_PORT", 8412),
    "agent_metrics": ("DEVSTACK_AGENT_METRICS_PORT", 8413),
    "prometheus": ("DEVSTACK_PROMETHEUS_PORT", 9090),
    # DB=postgres only: the second and third business worker replicas, the second retrieval one.
    "business_worker_2": ("DEVSTACK_BUSINESS_WORKER_2_PORT", 8422),
    "business_metrics_2": ("DEVSTACK_BUSINESS_METRICS_2_PORT", 8432),
    "business_worker_3": ("DEVSTACK_BUSINESS_WORKER_3_PORT", 8442),
    "business_metrics_3": ("DEVSTACK_BUSINESS_METRICS_3_PORT", 8452),
    "retrieval_worker_2": ("DEVSTACK_RETRIEVAL_WORKER_2_PORT", 8421),
    # Cluster mode (devstack.cluster) and DB=postgres: the PostgreSQL server, and the first of the block of ports
    # its server nodes take beyond the dev server's (cluster.NODES * cluster.NODE_BLOCK).
    "postgres": ("DEVSTACK_POSTGRES_PORT", 5433),
    "cluster_base": ("DEVSTACK_CLUSTER_BASE_PORT", 7300),
    # BLOBS=s3 only: SeaweedFS's S3 gateway (devstack.s3); its master, volume server and filer
    # take the next seven ports.
    "s3": ("DEVSTACK_S3_PORT", 8460),
    # Cluster mode's front door (devstack.frontdoor) serves its own metrics here; it listens for
    # clients on the dev server's ports ("temporal", "temporal_http").
    "frontdoor_metrics": ("DEVSTACK_FRONTDOOR_METRICS_PORT", 7236),
}

# What `make up STACK=...` may start: the embedded dev server, or a self-hosted cluster.
STACK_KINDS = ("dev", "cluster")
# Where the workers keep their records (`make up DB=...`): embedded files (SQLite, the retrieval
# worker's own index) or databases in PostgreSQL (devstack.worker_databases), which lets them
# run as several replicas.
DB_KINDS = ("embedded", "postgres")

# Where the agent worker keeps its blobs (`make up BLOBS=...`): a directory, or a bucket of the
# stack's own S3-compatible server (devstack.s3).
BLOB_KINDS = ("local", "s3")

NAMESPACES = ("agents", "retrieval", "business")
DB_KIND_FILE = "db-kind"
BLOB_KIND_FILE = "blob-kind"


def _port(name: str) -> int:
    env, default = PORTS[name]
    raw = os.environ.get(env)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{env} must be a port number between 1 and 65535, got {raw!r}")
    return int(raw)


def _kind(setting: str, given: str | None, kinds: tuple[str, ...], remembered: Path) -> str:
    """``given``, else the kind ``remembered`` holds, else the first of ``kinds``; checked."""
    if given is None:
        try:
            given = remembered.read_text().strip()
        except OSError:
            given = kinds[0]
    if given not in kinds:
        raise ValueError(f"{setting} must be one of {', '.join(kinds)}, got {given!r}")
    return given


@dataclass(frozen=True)
class StackConfig:
    """Where a stack listens and keeps its files. Tests build one with free ports and a temp dir."""

    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    host: str = "127.0.0.1"
    kind: str = "dev"
    db: str = "embedded"
    blobs: str = "local"

    @classmethod
    def from_env(cls, kind: str = "dev", db: str | None = None, blobs: str | None = None) -> StackConfig:
        """``kind`` is one of STACK_KINDS; each keeps its state in a data directory of its own
        (histories on one are not on the other), unless DEVSTACK_DATA_DIR names one. ``db`` is
        one of DB_KINDS and ``blobs`` of BLOB_KINDS; unset, the ones this data directory was last
        brought up with."""
        if kind not in STACK_KINDS:
            raise ValueError(f"STACK must be one of {', '.join(STACK_KINDS)}, got {kind!r}")
        default_dir = REPO_ROOT / ".data" / ("devstack" if kind == "dev" else f"devstack-{kind}")
        data_dir = Path(os.environ.get("DEVSTACK_DATA_DIR", default_dir)).resolve()
        db = _kind("DB", db, DB_KINDS, data_dir / DB_KIND_FILE)
        blobs = _kind("BLOBS", blobs, BLOB_KINDS, data_dir / BLOB_KIND_FILE)
        ports = {name: _port(name) for name in PORTS}
        return cls(data_dir=data_dir, ports=ports, kind=kind, db=db, blobs=blobs)

    def remember_kinds(self) -> None:
        """Record the DB and blob kinds, so `down`, `status` and the next `up` mean the same stores."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / DB_KIND_FILE).write_text(self.db + "\n")
        (self.data_dir / BLOB_KIND_FILE).write_text(self.blobs + "\n")

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.ports['temporal']}"

    @property
    def model_server_url(self) -> str:
        return f"http://{self.host}:{self.ports['model_server']}/v1"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ports['temporal_ui']}"

    @property
    def codec_server_url(self) -> str:
        return f"http://{self.host}:{self.ports['codec_server']}"

    @property
    def ui_origins(self) -> list[str]:
        """Both spellings a browser may use for the local UI: the codec server grants CORS to these."""
        return [f"http://{h}:{self.ports['temporal_ui']}" for h in (self.host, "localhost")]

    def metrics_targets(self) -> dict[str, str]:
        """Prometheus scrape job -> ``host:port`` serving ``/metrics``, one per stack process."""
        jobs = {
            "temporal": "temporal_metrics",
            "model-server": "model_server",
            "retrieval-worker": "retrieval_worker",
            "business-worker": "business_metrics",
            "agent-worker": "agent_metrics",
            "codec-server": "codec_server",
            "approval-portal": "approval_portal",
            "mcp-server": "mcp_server",
        }
        return {job: f"{self.host}:{self.ports[port]}" for job, port in jobs.items()}

    @property
    def keyring_path(self) -> Path:
        return self.data_dir / "keyring.json"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"
