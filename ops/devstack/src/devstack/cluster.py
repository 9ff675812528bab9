"""The cluster mode of the dev stack (``make up STACK=cluster``): a self-hosted Temporal cluster
as a platform team runs it, on loopback: PostgreSQL, three ``temporal-server`` nodes in one
membership ring, mTLS everywhere and the JWT authorizer.

Every node runs every role (frontend, internal-frontend, history, matching, worker). Split roles
pay off when roles scale apart; here the point is that any one node can be killed and the
cluster keeps every role (issue 16's drill kills nodes one by one), with three processes instead
of the twelve a role-per-process layout with the same redundancy would take on two cores.

Ports: clients reach the nodes' frontends through the front door (:mod:`devstack.frontdoor`), which
listens where the dev server does (``temporal``, ``temporal_http``), so every client and test that
knows the dev stack finds the cluster at the same address; node 1's metrics are on the dev
server's ``temporal_metrics`` (Prometheus job ``temporal``). Every other port is
``cluster_base + NODE_BLOCK * node + offset``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack import postgres
from devstack.config import REPO_ROOT, StackConfig
from devstack.pki import PERMISSIONS_CLAIM, SERVER_NAME, ClusterPki, TokenIssuer
from devstack.processes import ProcessSpec, StackError
from devstack.secrets import write_private

NODES = 3
ROLES = ("frontend", "internal-frontend", "history", "matching", "worker")
NODE_BLOCK = 16
_OFFSETS = {
    "frontend": 0,
    "frontend_membership": 1,
    "frontend_http": 2,
    "internal_frontend": 3,
    "internal_frontend_membership": 4,
    "internal_frontend_http": 5,
    "history": 6,
    "history_membership": 7,
    "matching": 8,
    "matching_membership": 9,
    "worker": 10,
    "worker_membership": 11,
    "metrics": 12,
}
# Fixed for the life of the database: history shards cannot be re-partitioned. Four is enough
# for three nodes to each own some (and take over the others') on a laptop.
HISTORY_SHARDS = 4
DATABASES = {"temporal": "temporal", "temporal_visibility": "visibility"}
DB_USER = "temporal"

# Who may do what, in the server's default claim mapper's terms ("<namespace>:<role>", and
# "temporal-system:<role>" for the whole cluster: the mapper's literal, not "system"): each worker
# only its own namespace, the operator (the shell's CLI) the three namespaces, and the stack's
# setup the cluster (namespaces, endpoints, search attributes are admin calls).
TOKEN_PERMISSIONS: dict[str, list[str]] = {
    "admin": ["temporal-system:admin"],
    "operator": ["agents:write", "retrieval:write", "business:write"],
    "agent-worker": ["agents:write"],
    "retrieval-worker": ["retrieval:write"],
    "business-worker": ["business:write"],
    # The Web UI's own identity (devstack.webui): it reads, changes nothing. Cluster-wide, because
    # the UI lists namespaces and reads the cluster's info (calls of the cluster's scope).
    "web-ui": ["temporal-system:read"],
}


VERSION_FILE = REPO_ROOT / "ops" / "devstack" / "temporal-server.version"


def server_dir() -> Path:
    """Where `make temporal-server` puts the build of the pinned version (VERSION_FILE, which the
    Makefile reads too); DEVSTACK_TEMPORAL_SERVER_DIR points at another build."""
    if override := os.environ.get("DEVSTACK_TEMPORAL_SERVER_DIR"):
        return Path(override)
    return REPO_ROOT / ".tools" / "temporal-server" / VERSION_FILE.read_text().strip()


def server_build_missing() -> str | None:
    """Why the cluster cannot start for want of a build, or None when it is there."""
    missing = [p for p in (server_binary(), sql_tool(), schema_dir()) if not p.exists()]
    if missing:
        return f"the Temporal server is not built ({missing[0]} is missing); run `make temporal-server`"
    return None


def server_binary() -> Path:
    return server_dir() / "bin" / "temporal-server"


def sql_tool() -> Path:
    return server_dir() / "bin" / "temporal-sql-tool"


def schema_dir() -> Path:
    return server_dir() / "schema" / "v12"


def node_name(node: int) -> str:
    return f"temporal-{node + 1}"


def node_port(config: StackConfig, node: int, what: str) -> int:
    if node == 0 and what == "metrics":
        return config.ports["temporal_metrics"]
    return config.ports["cluster_base"] + NODE_BLOCK * node + _OFFSETS[what]


def frontdoor_backends(config: StackConfig) -> dict[str, dict[str, int]]:
    """The nodes' frontend ports, gRPC and HTTP, by node name: what the front door balances over."""
    return {
        protocol: {node_name(n): node_port(config, n, what) for n in range(NODES)}
        for protocol, what in (("grpc", "frontend"), ("http", "frontend_http"))
    }


def node_ports(config: StackConfig, node: int) -> list[int]:
    return [node_port(config, node, what) for what in _OFFSETS]


# The server's PostgreSQL schema keeps membership ports in a smallint column: a node whose
# membership port is above it dies at start-up ("out of range for type smallint").
MAX_MEMBERSHIP_PORT = 32767


def check_ports(config: StackConfig) -> None:
    highest = config.ports["cluster_base"] + NODE_BLOCK * NODES - 1
    if highest > MAX_MEMBERSHIP_PORT:
        raise StackError(
            f"DEVSTACK_CLUSTER_BASE_PORT={config.ports['cluster_base']} puts cluster ports up to {highest}, but "
            f"membership ports must stay at or below {MAX_MEMBERSHIP_PORT} (the server's PostgreSQL schema "
            f"stores them as smallint); choose a base at or below {MAX_MEMBERSHIP_PORT - NODE_BLOCK * NODES + 1}"
        )


@dataclass(frozen=True)
class ClusterPaths:
    root: Path

    @classmethod
    def of(cls, config: StackConfig) -> ClusterPaths:
        return cls(config.data_dir / "cluster")

    @property
    def postgres(self) -> Path:
        """Owned by the unprivileged PostgreSQL user: PGDATA lives inside."""
        return self.root / "postgres"

    @property
    def pgdata(self) -> Path:
        return self.postgres / "data"

    @property
    def db_password(self) -> Path:
        return self.root / "db-password"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def auth(self) -> Path:
        return self.root / "auth"

    def node_config(self, node: int) -> Path:
        return self.root / f"{node_name(node)}.yaml"

    @property
    def dynamic_config(self) -> Path:
        return self.root / "dynamicconfig.yaml"


def postgres_instance(config: StackConfig, paths: ClusterPaths) -> postgres.Instance:
    """The cluster's PostgreSQL (started by devstack.postgres, which cluster mode shares)."""
    return postgres.Instance(paths.postgres, config.host, config.ports["postgres"], DB_USER, paths.db_password)


def db_password(paths: ClusterPaths) -> str:
    return postgres.generated_password(paths.db_password)


def postgres_spec(config: StackConfig, paths: ClusterPaths) -> ProcessSpec:
    return postgres.spec(postgres_instance(config, paths))


def _sql_tool(config: StackConfig, paths: ClusterPaths, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(sql_tool()),
            "--plugin",
            "postgres12",
            "--ep",
            config.host,
            "-p",
            str(config.ports["postgres"]),
            "-u",
            DB_USER,
            "--db",
            database,
            *args,
        ],
        # The password goes by environment, never on a command line others can read in ps.
        env={**os.environ, "SQL_PASSWORD": db_password(paths)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _psql(config: StackConfig, paths: ClusterPaths, database: str, sql: str) -> list[list[str]]:
    """Rows of ``sql`` (a constant of this module, never input), each a list of column texts."""
    return postgres.psql(postgres_instance(config, paths), database, sql)


def _database_exists(config: StackConfig, paths: ClusterPaths, database: str) -> bool:
    return postgres.database_exists(postgres_instance(config, paths), database)


# The server's persistence.ServiceType numbers, as the cluster_membership table stores roles.
_ROLES = {1: "frontend", 2: "history", 3: "matching", 4: "worker", 5: "internal-frontend"}


def ring_members(config: StackConfig, paths: ClusterPaths) -> set[tuple[str, int]]:
    """(role, membership port) of every live member of the ring, as the nodes record themselves
    in the database they discover each other through (a stopped node's row stays until it
    expires, so only recent heartbeats count)."""
    rows = _psql(
        config,
        paths,
        "temporal",
        "SELECT role, rpc_port FROM cluster_membership"
        " WHERE last_heartbeat > (now() AT TIME ZONE 'UTC') - interval '30 seconds'",
    )
    return {(_ROLES.get(int(role), role), int(port)) for role, port in rows}


def ensure_schemas(config: StackConfig, paths: ClusterPaths) -> None:
    """Both databases with their schema at the version this server build ships: created and set up
    once, then brought up to date on every start (a newer pin brings its schema upgrades)."""
    for database, schema in DATABASES.items():
        steps: list[tuple[str, ...]] = []
        if not _database_exists(config, paths, database):
            steps += [("create-database",), ("setup-schema", "-v", "0.0")]
        steps.append(("update-schema", "-d", str(schema_dir() / schema / "versioned")))
        for step in steps:
            done = _sql_tool(config, paths, database, *step)
            if done.returncode != 0:
                last = (done.stderr or done.stdout).strip().splitlines()[-1:]
                raise StackError(f"temporal-sql-tool {step[0]} failed on database {database}: {' '.join(last)}")


def _rpc(config: StackConfig, node: int, service: str) -> dict:
    rpc = {
        "grpcPort": node_port(config, node, service),
        "membershipPort": node_port(config, node, f"{service}_membership"),
        "bindOnIP": config.host,
    }
    if f"{service}_http" in _OFFSETS:
        rpc["httpPort"] = node_port(config, node, f"{service}_http")
    return {"rpc": rpc}


def _tls_pair(pki: ClusterPki) -> dict:
    # Mutual TLS: the server presents the node certificate and accepts only certificates of the
    # stack's CA; clients verify the server against the same CA under SERVER_NAME.
    return {
        "server": {
            "certFile": str(pki.node_cert),
            "keyFile": str(pki.node_key),
            "requireClientAuth": True,
            "clientCaFiles": [str(pki.ca_cert)],
        },
        "client": {"serverName": SERVER_NAME, "rootCaFiles": [str(pki.ca_cert)]},
    }


def node_config(config: StackConfig, paths: ClusterPaths, node: int, pki: ClusterPki, issuer: TokenIssuer) -> dict:
    """The server's configuration for ``node``, after the module's config/development-postgres12.yaml
    with its ports moved, TLS on both the frontend and internode, and the JWT authorizer."""
    datastore = {
        "pluginName": "postgres12",
        "connectAddr": f"{config.host}:{config.ports['postgres']}",
        "connectProtocol": "tcp",
        "user": DB_USER,
        "password": db_password(paths),
        "maxConnLifetime": "1h",
    }
    return {
        "log": {"stdout": True, "level": "info"},
        "persistence": {
            "defaultStore": "default",
            "visibilityStore": "visibility",
            "numHistoryShards": HISTORY_SHARDS,
            "datastores": {
                # Three nodes share one PostgreSQL: few connections each.
                "default": {"sql": {**datastore, "databaseName": "temporal", "maxConns": 10, "maxIdleConns": 10}},
                "visibility": {
                    "sql": {**datastore, "databaseName": "temporal_visibility", "maxConns": 4, "maxIdleConns": 4}
                },
            },
        },
        "global": {
            # Nodes find each other through the cluster_membership table in the database.
            "membership": {"maxJoinDuration": "30s", "broadcastAddress": config.host},
            "pprof": {"port": 0},
            "tls": {
                # Re-issued certificates (make up renews half-expired ones) load without a restart.
                "refreshInterval": "1m",
                "internode": _tls_pair(pki),
                "frontend": _tls_pair(pki),
            },
            "metrics": {
                "prometheus": {
                    "framework": "tally",
                    "timerType": "histogram",
                    "listenAddress": f"{config.host}:{node_port(config, node, 'metrics')}",
                }
            },
            "authorization": {
                "jwtKeyProvider": {"keySourceURIs": [issuer.jwks.as_uri()], "refreshInterval": "1m"},
                "permissionsClaimName": PERMISSIONS_CLAIM,
                "authorizer": "default",
                "claimMapper": "default",
            },
        },
        # internal-frontend: the system worker and history reach the frontend API through it, over
        # internode mTLS and without the authorizer (they carry no JWT). With it, publicClient
        # must be left out (the server's config says so).
        "services": {role: _rpc(config, node, role.replace("-", "_")) for role in ROLES},
        "clusterMetadata": {
            "enableGlobalNamespace": False,
            "failoverVersionIncrement": 10,
            "masterClusterName": "active",
            "currentClusterName": "active",
            "clusterInformation": {
                "active": {
                    "enabled": True,
                    "initialFailoverVersion": 1,
                    "rpcName": "frontend",
                    # The cluster's address is its front door's, not one node's.
                    "rpcAddress": config.temporal_address,
                    "httpAddress": f"{config.host}:{config.ports['temporal_http']}",
                }
            },
        },
        "dcRedirectionPolicy": {"policy": "noop"},
        "archival": {"history": {"state": "disabled"}, "visibility": {"state": "disabled"}},
        "namespaceDefaults": {"archival": {"history": {"state": "disabled"}, "visibility": {"state": "disabled"}}},
        "dynamicConfigClient": {"filepath": str(paths.dynamic_config), "pollInterval": "10s"},
    }


def dynamic_config(values: tuple[str, ...]) -> dict:
    """The server's dynamic config file from ``KEY=JSON`` pairs (the dev server's flag form)."""
    document = {}
    for pair in values:
        key, raw = pair.split("=", 1)
        document[key] = [{"value": json.loads(raw), "constraints": {}}]
    return document


def node_specs(
    config: StackConfig, paths: ClusterPaths, pki: ClusterPki, issuer: TokenIssuer, ready: Callable[[int], bool]
) -> list[ProcessSpec]:
    """The three server nodes; ``ready(node)`` says when a node answers (health over mTLS)."""
    specs = []
    for node in range(NODES):
        path = paths.node_config(node)
        # It holds the database password: owner only. JSON is YAML, so no YAML writer is needed.
        write_private(path, json.dumps(node_config(config, paths, node, pki, issuer), indent=2))
        specs.append(
            ProcessSpec(
                name=node_name(node),
                # Every role by name: the server's default set leaves internal-frontend out.
                argv=[
                    str(server_binary()),
                    "--config-file",
                    str(path),
                    "start",
                    *[arg for role in ROLES for arg in ("--service", role)],
                ],
                ports=node_ports(config, node),
                ready=functools.partial(ready, node),
                # A node joins the ring, acquires shards and starts its system workers: on a busy
                # two-core machine that can take a minute.
                start_timeout_s=180.0,
            )
        )
    return specs
