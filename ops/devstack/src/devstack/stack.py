"""The dev stack: Temporal dev server, offline model server, and the three workers.

Order matters: the server first (namespaces, Nexus endpoints), then the model server the
agent needs, then the handlers (retrieval, business) before the agent that calls them.

In cluster mode (``StackConfig.kind == "cluster"``, see :mod:`devstack.cluster`) the dev server's
place is taken by PostgreSQL and three server nodes with mTLS and the JWT authorizer; everything
else is the same processes, given the credentials through Temporal's environment configuration.

With ``StackConfig.db == "postgres"`` (:mod:`devstack.worker_databases`) the business and
retrieval workers keep their records in PostgreSQL (the stack's own server, or the cluster's)
and run as several replicas each.

With ``StackConfig.blobs == "s3"`` (:mod:`devstack.s3`) the agent worker keeps its blobs in a
bucket of the stack's own SeaweedFS, started with the model and codec servers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agent.llm.settings import SIMULATOR_MODEL
from devstack import cluster, frontdoor, mcp, portal, postgres, prometheus, s3, webui, worker_databases
from devstack.config import NAMESPACES, REPO_ROOT, StackConfig
from devstack.pki import SERVER_NAME, ClusterPki, TokenIssuer, ensure_pki, ensure_token_issuer
from devstack.processes import ProcessManager, ProcessSpec, RunningProcess, StackError, http_ok, port_in_use
from devstack.secrets import AgentPrincipals, CodecTokens, ensure_agent_principals, ensure_codec_tokens, ensure_keyring
from devstack.temporal_setup import (
    ensure_namespaces,
    ensure_nexus_endpoints,
    ensure_search_attributes,
    server_healthy,
    temporal_cli,
)

# Variables that would point a dev-stack worker somewhere else (a Cloud API key, TLS files,
# a TOML profile); the stack names its own server explicitly instead.
_INHERITED_TEMPORAL_PREFIX = "TEMPORAL_"
# How long `up` waits for the server (the front door, on a cluster) to pass its health check.
SERVER_HEALTHY_TIMEOUT_S = 90.0


def retrieval_worker_path() -> Path:
    return Path(os.environ.get("DEVSTACK_RETRIEVAL_WORKER_BIN", REPO_ROOT / "bin" / "retrieval-worker"))


def retrieval_worker_binary() -> Path:
    path = retrieval_worker_path()
    if not path.exists():
        raise StackError(f"the Go retrieval worker is not built ({path} is missing); run `make build`")
    return path


def knowledge_base_dir() -> Path:
    """The demo knowledge base; `make demo` and the test harness ingest it through IngestWorkflow
    (the retrieval worker no longer seeds it at start-up)."""
    return REPO_ROOT / "ops" / "demo" / "knowledge-base"


@dataclass
class ProcessStatus:
    name: str
    running: RunningProcess | None
    url: str


# Worker Deployment Versioning works on the dev server as shipped; these only make a retired
# version show as drained within seconds instead of the server's default minutes (it rechecks
# visibility every refresh interval, after a grace period for visibility to catch up), so a
# rollout drill (`make drill-rollout`) sees the whole cycle. A production cluster keeps its defaults.
DEV_DYNAMIC_CONFIG = (
    'matching.wv.VersionDrainageStatusRefreshInterval="2s"',
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="5s"',
    # The caller's retries of a Nexus start back off exponentially from 1 s with no cap below an
    # hour, so after a 15 s outage (the cluster drill's PostgreSQL kill) the next try came after
    # the order lookup's 30 s deadline and the turn answered without its refund. Capped, a start
    # is retried within 5 s of the outage's end. The chart README recommends it for clusters.
    'component.nexusoperations.retryPolicy.maxInterval="5s"',
)


class Stack:
    def __init__(
        self, config: StackConfig, *, external_temporal: str | None = None, business_replicas: int | None = None
    ) -> None:
        """``external_temporal``: address of a server someone else runs (no dev server started).
        ``business_replicas``: business workers to run on PostgreSQL (default
        worker_databases.BUSINESS_REPLICAS; always one on the embedded store)."""
        self.config = config
        self.external_temporal = external_temporal
        self.processes = ProcessManager(config.run_dir, config.log_dir, config.host)
        self.cluster = cluster.ClusterPaths.of(config) if config.kind == "cluster" and not external_temporal else None
        self.worker_pg = self._worker_postgres()
        default_replicas = worker_databases.BUSINESS_REPLICAS
        self.business_replicas = 1 if self.worker_pg is None else business_replicas or default_replicas

    def _worker_postgres(self) -> postgres.Instance | None:
        """The server that holds the workers' databases (DB=postgres): the cluster's, or our own."""
        c = self.config
        if c.db != "postgres":
            return None
        if self.cluster:
            return cluster.postgres_instance(c, self.cluster)
        root = c.data_dir / "postgres"
        return postgres.Instance(root, c.host, c.ports["postgres"], "postgres", c.data_dir / "postgres-admin-password")

    @property
    def own_postgres(self) -> bool:
        """Whether this stack starts a PostgreSQL of its own for the workers (not the cluster's)."""
        return self.worker_pg is not None and self.cluster is None

    def _server_processes(self) -> list[str]:
        """The processes that are the Temporal server, in start order."""
        database = ["postgres"] if self.own_postgres else []
        if self.external_temporal:
            return database
        if self.cluster:
            return ["postgres", *(cluster.node_name(n) for n in range(cluster.NODES)), frontdoor.NAME]
        return [*database, "temporal"]

    def credentials(self, principal: str) -> dict[str, str]:
        """Temporal's environment configuration for ``principal`` (a name in
        cluster.TOKEN_PERMISSIONS): the client certificate, the CA and server name to verify the
        frontend by, and the principal's JWT as the API key. Empty for the dev server."""
        if self.cluster is None:
            return {}
        pki = ensure_pki(self.cluster.pki)
        token = ensure_token_issuer(self.cluster.auth).token(principal, cluster.TOKEN_PERMISSIONS[principal])
        return {
            "TEMPORAL_TLS": "true",
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca_cert),
            "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
            "TEMPORAL_API_KEY": token,
        }

    def secret_files(self) -> dict[str, Path]:
        """Client variables whose values are secrets, by the file that holds each: what
        ``devstack env`` prints instead of the value."""
        if self.cluster is None:
            return {}
        return {"TEMPORAL_API_KEY": ensure_token_issuer(self.cluster.auth).token_file("operator")}

    @property
    def temporal_address(self) -> str:
        return self.external_temporal or self.config.temporal_address

    def _keyring_env(self) -> dict[str, str | None]:
        # Exactly one key source may be set (SPEC section 5.2): the stack's own file.
        return {
            "CODEC_KEYRING_FILE": str(self.config.keyring_path),
            "CODEC_KEYRING_DIR": None,
            "CODEC_KEYRING": None,
        }

    def _worker_env(self, namespace: str, principal: str, **extra: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(_INHERITED_TEMPORAL_PREFIX)}
        env.update(self._keyring_env())
        env.update(self.credentials(principal))
        env.update(TEMPORAL_ADDRESS=self.temporal_address, TEMPORAL_NAMESPACE=namespace, **extra)
        return env

    @property
    def codec_tokens(self) -> CodecTokens:
        return ensure_codec_tokens(self.config.data_dir)

    @property
    def agent_principals(self) -> AgentPrincipals:
        return ensure_agent_principals(self.config.data_dir)

    def specs(self) -> list[ProcessSpec]:
        """Every process of the stack, in start order: Temporal, the servers, the workers, the scraper."""
        specs: list[ProcessSpec] = []
        if self.own_postgres:
            assert self.worker_pg is not None
            specs.append(postgres.spec(self.worker_pg))
        if self.cluster:
            specs += self._cluster_specs()
        elif self.external_temporal is None:
            specs.append(self._dev_server_spec())
        specs += self._server_specs() + self._worker_specs()
        specs.append(
            portal.spec(self.config, self._worker_env("agents", "operator"), self.agent_principals.principals_file)
        )
        specs.append(mcp.spec(self.config, self._worker_env("agents", "agent-worker")))
        if scraper := self._scraper_spec():
            specs.append(scraper)
        return specs

    def _dev_server_spec(self) -> ProcessSpec:
        c, p, host = self.config, self.config.ports, self.config.host
        return ProcessSpec(
            name="temporal",
            argv=[
                temporal_cli(),
                "server",
                "start-dev",
                "--ip",
                host,
                "--port",
                str(p["temporal"]),
                "--ui-port",
                str(p["temporal_ui"]),
                "--http-port",
                str(p["temporal_http"]),
                "--metrics-port",
                str(p["temporal_metrics"]),
                "--db-filename",
                str(c.data_dir / "temporal.sqlite"),
                "--ui-disable-news-fetch",
                "--ui-codec-endpoint",
                c.codec_server_url,
                *[arg for kv in DEV_DYNAMIC_CONFIG for arg in ("--dynamic-config-value", kv)],
                *[arg for ns in NAMESPACES for arg in ("--namespace", ns)],
            ],
            ports=[p["temporal"], p["temporal_ui"], p["temporal_http"], p["temporal_metrics"]],
            ready=lambda: port_in_use(host, p["temporal"]) and server_healthy(self.temporal_address),
        )

    def _server_specs(self) -> list[ProcessSpec]:
        """The model server, the codec server and (BLOBS=s3) SeaweedFS."""
        c, p, host = self.config, self.config.ports, self.config.host
        python = sys.executable
        blob_server = [s3.spec(c)] if self._blob_server_names() else []
        return blob_server + [
            ProcessSpec(
                name="model-server",
                argv=[python, "-m", "modelserver", "--host", host, "--port", str(p["model_server"])],
                ports=[p["model_server"]],
                ready=http_ok(f"http://{host}:{p['model_server']}/healthz"),
                env={"MODEL_SERVER_LEDGER_PATH": str(c.data_dir / "model-ledger.jsonl")},
            ),
            ProcessSpec(
                name="codec-server",
                argv=[python, "-m", "codec_server", "--host", host, "--port", str(p["codec_server"])],
                ports=[p["codec_server"]],
                ready=http_ok(f"{c.codec_server_url}/healthz"),
                env={
                    **self._keyring_env(),
                    "CODEC_SERVER_TOKENS_FILE": str(self.codec_tokens.tokens_file),
                    "CODEC_SERVER_JWKS_URL": None,
                    "CODEC_SERVER_AUTH_DISABLED": None,
                    # The dev server's UI has no login, so it cannot send a token: on loopback
                    # only, anonymous callers may decode (never encode), and are audited as such.
                    "CODEC_SERVER_ANONYMOUS_ROLE": "decode",
                    "CODEC_SERVER_CORS_ORIGINS": ",".join(c.ui_origins),
                    "CODEC_SERVER_AUDIT_LOG": str(c.log_dir / "codec-audit.jsonl"),
                    # agents calls the Nexus endpoints, so its histories hold their results,
                    # encrypted under the target namespaces' keys (codec-server/README.md).
                    "CODEC_SERVER_NEXUS_ENDPOINTS_FILE": str(REPO_ROOT / "nexus" / "endpoints.json"),
                    "CODEC_SERVER_NEXUS_CALLERS": "agents",
                },
            ),
        ]

    def _worker_specs(self) -> list[ProcessSpec]:
        c, p, host = self.config, self.config.ports, self.config.host
        python = sys.executable
        model_env: dict[str, str] = {}
        if not os.environ.get("OPENAI_BASE_URL") and not os.environ.get("OPENAI_API_KEY"):
            model_env = {"OPENAI_BASE_URL": c.model_server_url, "OPENAI_API_KEY": "sim", "AGENT_MODEL": SIMULATOR_MODEL}
        return [
            *self._retrieval_specs(),
            *self._business_specs(),
            ProcessSpec(
                name="agent-worker",
                argv=[python, "-m", "agent.worker"],
                ports=[p["agent_worker"], p["agent_metrics"]],
                ready=http_ok(f"http://{host}:{p['agent_worker']}/readyz"),
                env=self._worker_env(
                    "agents",
                    "agent-worker",
                    HEALTH_HOST=host,
                    AGENT_HEALTH_PORT=str(p["agent_worker"]),
                    METRICS_HOST=host,
                    AGENT_METRICS_PORT=str(p["agent_metrics"]),
                    AGENT_BLOB_DIR=str(c.data_dir / "agent-blobs"),
                    **model_env,
                    **(s3.worker_env(c) if c.blobs == "s3" else {"AGENT_BLOB_STORE": "local"}),
                ),
            ),
        ]

    def _blob_server_names(self) -> list[str]:
        """Names only: building SeaweedFS's spec writes its identity file and secret, which
        `down` and `status` must not do."""
        return [s3.NAME] if self.config.blobs == "s3" else []

    def _worker_databases(self) -> dict[str, worker_databases.WorkerDatabase]:
        assert self.worker_pg is not None
        return {
            name: worker_databases.database(self.worker_pg, self.config.data_dir, name)
            for name in (worker_databases.BUSINESS, worker_databases.RETRIEVAL)
        }

    def _retrieval_specs(self) -> list[ProcessSpec]:
        c, p, host = self.config, self.config.ports, self.config.host
        binary = retrieval_worker_binary()
        backend: dict[str, str] = {}
        replicas = 1
        if self.worker_pg is not None:
            backend, replicas = worker_databases.retrieval_env(self._worker_databases()["retrieval"], binary)
        specs = []
        for replica in range(1, replicas + 1):
            port = p[_replica_port("retrieval_worker", replica)]
            specs.append(
                ProcessSpec(
                    name=_replica_name("retrieval-worker", replica),
                    argv=[str(binary)],
                    ports=[port],
                    ready=http_ok(f"http://{host}:{port}/readyz"),
                    env=self._worker_env(
                        "retrieval",
                        "retrieval-worker",
                        RETRIEVAL_HTTP_ADDR=f"{host}:{port}",
                        RETRIEVAL_DATA_DIR=str(c.data_dir / "retrieval"),
                        **backend,
                    ),
                )
            )
        return specs

    def _business_specs(self) -> list[ProcessSpec]:
        c, p, host = self.config, self.config.ports, self.config.host
        store: dict[str, str | None] = {"BUSINESS_DB_PATH": str(c.data_dir / "business.sqlite3")}
        if self.worker_pg is not None:
            store = {**worker_databases.business_env(self._worker_databases()["business"]), "BUSINESS_DB_PATH": None}
        specs = []
        for replica in range(1, self.business_replicas + 1):
            health = p[_replica_port("business_worker", replica)]
            metrics = p[_replica_port("business_metrics", replica)]
            specs.append(
                ProcessSpec(
                    name=_replica_name("business-worker", replica),
                    argv=[sys.executable, "-m", "business.worker"],
                    ports=[health, metrics],
                    ready=http_ok(f"http://{host}:{health}/readyz"),
                    env=self._worker_env(
                        "business",
                        "business-worker",
                        HEALTH_HOST=host,
                        BUSINESS_HEALTH_PORT=str(health),
                        METRICS_HOST=host,
                        BUSINESS_METRICS_PORT=str(metrics),
                        **store,
                    ),
                )
            )
        return specs

    def _prepare_worker_databases(self, log) -> None:
        """DB=postgres: the workers' databases and roles, and their schemas (migrate)."""
        assert self.worker_pg is not None
        databases = worker_databases.ensure(self.worker_pg, self.config.data_dir)
        log(f"{'business migrate':17} {worker_databases.migrate_business(databases['business'])}")
        binary = retrieval_worker_binary()
        if worker_databases.retrieval_speaks_postgres(binary):
            log(f"{'retrieval migrate':17} {worker_databases.migrate_retrieval(databases['retrieval'], binary)}")
        else:
            log(
                f"{'retrieval-worker':17} this build has no PostgreSQL backend yet: embedded index, one replica "
                "(devstack/worker_databases.py)"
            )

    def _scraper_spec(self) -> ProcessSpec | None:
        """Prometheus, when installed: the stack works without it, and `up` says how to install it."""
        c, host = self.config, self.config.host
        scraper = prometheus.spec(c, skip_jobs=("temporal",) if self.external_temporal else ())
        if scraper and self.cluster:
            # Node 1 is the "temporal" job (it listens on the dev server's metrics port);
            # the other nodes are scraped beside it.
            prometheus.add_targets(
                c,
                "temporal-nodes",
                {
                    **{
                        cluster.node_name(n): f"{host}:{cluster.node_port(c, n, 'metrics')}"
                        for n in range(1, cluster.NODES)
                    },
                    frontdoor.NAME: f"{host}:{c.ports['frontdoor_metrics']}",
                },
            )
        return scraper

    def _cluster_specs(self) -> list[ProcessSpec]:
        assert self.cluster is not None
        if reason := cluster.server_build_missing():
            raise StackError(reason)
        cluster.check_ports(self.config)
        pki = ensure_pki(self.cluster.pki)
        issuer = ensure_token_issuer(self.cluster.auth)
        c = self.config
        # The health API needs no token, but the frontend accepts nobody without a certificate.
        tls_only = {k: v for k, v in self.credentials("admin").items() if k != "TEMPORAL_API_KEY"}

        def node_ready(node: int) -> bool:
            address = f"{c.host}:{cluster.node_port(c, node, 'frontend')}"
            return port_in_use(c.host, cluster.node_port(c, node, "frontend")) and server_healthy(address, tls_only)

        self.cluster.dynamic_config.write_text(json.dumps(cluster.dynamic_config(DEV_DYNAMIC_CONFIG), indent=2))
        return [
            cluster.postgres_spec(c, self.cluster),
            *cluster.node_specs(c, self.cluster, pki, issuer, node_ready),
            frontdoor.spec(c, self.cluster.root / "frontdoor.cfg", cluster.frontdoor_backends(c)),
            *self._ui_specs(pki, issuer),
        ]

    def _ui_specs(self, pki: ClusterPki, issuer: TokenIssuer) -> list[ProcessSpec]:
        """The cluster's Web UI when built (it starts with the workers, after the front door)."""
        assert self.cluster is not None
        issuer.token(webui.PRINCIPAL, cluster.TOKEN_PERMISSIONS[webui.PRINCIPAL])
        ui = webui.spec(self.config, self.cluster.root / "ui", pki, issuer.token_file(webui.PRINCIPAL))
        return [ui] if ui else []

    def worker_names(self, base: str) -> list[str]:
        """The replicas of one worker (``business-worker``, ``business-worker-2``, ...)."""
        if base == "business-worker":
            count = self.business_replicas
        elif self.worker_pg is not None and worker_databases.retrieval_speaks_postgres(retrieval_worker_path()):
            count = worker_databases.RETRIEVAL_REPLICAS
        else:
            count = 1
        return [_replica_name(base, replica) for replica in range(1, count + 1)]

    def process_names(self) -> list[str]:
        names = [
            *self._blob_server_names(),
            "model-server",
            "codec-server",
            *self.worker_names("retrieval-worker"),
            *self.worker_names("business-worker"),
            "agent-worker",
            portal.NAME,
            mcp.NAME,
        ]
        # The cluster's UI is optional like Prometheus: without its build the stack runs without it.
        if self.cluster and (webui.binary() or self.processes.running(webui.NAME)):
            names.append(webui.NAME)
        # Optional: without the binary a missing Prometheus is no failure (status exits 0).
        if prometheus.binary() or self.processes.running("prometheus"):
            names.append("prometheus")
        return [*self._server_processes(), *names]

    def up(self, log=print) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_keyring(self.config.keyring_path)
        ensure_agent_principals(self.config.data_dir)
        if self.external_temporal:
            self._prepare_server()
        specs = self.specs()
        # The database first (a cluster's schema is applied before any node starts), then the
        # servers (the workers need them), then the workers together. A cluster's first node
        # starts before the others: on a new database the nodes race to write the cluster's
        # metadata, and a node that loses exits. The front door comes with the first node: the
        # setup reaches the cluster through it.
        database = [n for n in self._server_processes() if n == "postgres"]
        nodes = [n for n in self._server_processes() if n.startswith("temporal")]
        door = [n for n in self._server_processes() if n == frontdoor.NAME]
        blob_server = self._blob_server_names()
        groups = [database, [*nodes[:1], *door, "model-server", "codec-server", *blob_server], nodes[1:]]
        named = {name for group in groups for name in group}
        phases = [[s for s in specs if s.name in group] for group in groups]
        phases.append([s for s in specs if s.name not in named])
        for phase in phases:
            already = {s.name for s in phase if self.processes.running(s.name)}
            for spec, proc in zip(phase, self.processes.start_all(phase), strict=False):
                state = "already running" if spec.name in already else "started"
                log(f"{spec.name:17} {state} (pid {proc.pid}, log {proc.log_path})")
            if phase is phases[0] and self.cluster:
                cluster.ensure_schemas(self.config, self.cluster)
            if phase is phases[0] and self.worker_pg is not None:
                self._prepare_worker_databases(log)
            if phase is phases[1] and self.external_temporal is None:
                self._prepare_server()
            if phase is phases[1] and blob_server:
                s3.ensure_bucket(self.config)
        if self.cluster:
            log(f"Temporal cluster   {self.temporal_address} (mTLS + JWT; `python -m devstack env` for the CLI)")
            log(f"Temporal UI        {self.config.ui_url}" if webui.binary() else webui.BUILD_HINT)
        elif self.external_temporal is None:
            log(f"Temporal UI        {self.config.ui_url}")
        log(f"Approval portal    {portal.url(self.config)} (sign in with {self.agent_principals.operator_token_file})")
        if prometheus.binary() is None:
            log(prometheus.INSTALL_HINT)
        else:
            log(f"Prometheus         {prometheus.url(self.config)}")

    def _prepare_server(self) -> None:
        # Namespaces, endpoints and search attributes are cluster-level changes: the admin token.
        admin = self.credentials("admin")
        # Every process reported ready, but a cluster answers its health check only once the
        # nodes have joined the ring and the front door has seen a frontend live: wait for that.
        deadline = time.monotonic() + SERVER_HEALTHY_TIMEOUT_S
        while not server_healthy(self.temporal_address, admin):
            if time.monotonic() > deadline:
                raise StackError(
                    f"the Temporal server at {self.temporal_address} does not answer "
                    f"(waited {SERVER_HEALTHY_TIMEOUT_S:.0f} s; `make logs` shows its processes' logs)"
                )
            time.sleep(1)
        ensure_namespaces(self.temporal_address, NAMESPACES, admin)
        ensure_nexus_endpoints(self.temporal_address, admin)
        ensure_search_attributes(self.temporal_address, admin)

    def restart_workers(self, log=print) -> None:
        """Stop and start every process that reads the key ring at start-up (the codec server and
        the workers), leaving the Temporal server and the model server up: how a rotated key ring
        takes effect."""
        keep = (*self._server_processes(), "model-server", "prometheus", *self._blob_server_names())
        specs = [s for s in self.specs() if s.name not in keep]
        for spec in reversed(specs):
            if self.processes.stop(spec.name):
                log(f"{spec.name:17} stopped")
        for spec, proc in zip(specs, self.processes.start_all(specs), strict=False):
            log(f"{spec.name:17} started (pid {proc.pid}, log {proc.log_path})")

    def down(self, log=print) -> None:
        for name in reversed(self.process_names()):
            if self.processes.stop(name):
                log(f"{name:17} stopped")
        if self._blob_server_names():
            s3.remove_grpc_sockets(self.config)

    def status(self) -> list[ProcessStatus]:
        p, host = self.config.ports, self.config.host
        urls = {
            "temporal": f"{host}:{p['temporal']} (UI {self.config.ui_url})",
            "postgres": f"postgresql://{host}:{p['postgres']}"
            + (" (databases business, retrieval)" if self.worker_pg is not None else ""),
            **{
                cluster.node_name(n): f"{host}:{cluster.node_port(self.config, n, 'frontend')} (mTLS + JWT)"
                for n in range(cluster.NODES)
            },
            frontdoor.NAME: f"{host}:{p['temporal']} -> the live nodes' frontends (TLS passes through)",
            webui.NAME: f"{self.config.ui_url} (codec endpoint {self.config.codec_server_url})",
            "model-server": f"http://{host}:{p['model_server']}/v1",
            "codec-server": self.config.codec_server_url,
            s3.NAME: f"{s3.endpoint(self.config)} (bucket {s3.BUCKET} of the agent's blobs)",
            **{
                _replica_name(base, n): f"http://{host}:{p[_replica_port(port, n)]}/readyz"
                for base, port in (("retrieval-worker", "retrieval_worker"), ("business-worker", "business_worker"))
                for n in (1, 2, 3)
                if _replica_port(port, n) in p
            },
            "agent-worker": f"http://{host}:{p['agent_worker']}/readyz",
            portal.NAME: portal.url(self.config),
            mcp.NAME: mcp.url(self.config),
            "prometheus": prometheus.url(self.config),
        }
        return [ProcessStatus(n, self.processes.running(n), urls[n]) for n in self.process_names()]

    def ring_summary(self) -> str | None:
        """How many live nodes each role's ring has, as the nodes record it; None for the dev
        server, or when the database does not answer (its own status line says so)."""
        if self.cluster is None or not self.processes.running("postgres"):
            return None
        try:
            members = cluster.ring_members(self.config, self.cluster)
        except StackError:
            return None
        counts = [f"{role} {sum(1 for r, _ in members if r == role)}" for role in cluster.ROLES]
        return f"{', '.join(counts)} (of {cluster.NODES} nodes)"

    def client_env(self) -> dict[str, str]:
        """What a client (CLI, test) needs to talk to this stack: its server, its keys, and an
        identity (the local support lead, who may act for any customer)."""
        principals = self.agent_principals
        return {
            # The operator's token: write access to the stack's namespaces, no cluster admin.
            **self.credentials("operator"),
            "TEMPORAL_ADDRESS": self.temporal_address,
            "CODEC_KEYRING_FILE": str(self.config.keyring_path),
            "AGENT_PRINCIPALS_FILE": str(principals.principals_file),
            "AGENT_TOKEN_FILE": str(principals.operator_token_file),
        }


def _replica_name(base: str, replica: int) -> str:
    return base if replica == 1 else f"{base}-{replica}"


def _replica_port(base: str, replica: int) -> str:
    """The name of a replica's port in StackConfig.ports (config.PORTS lists them)."""
    return base if replica == 1 else f"{base}_{replica}"
