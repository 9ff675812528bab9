"""The Helm chart in deploy/helm/durable-agents, checked without a cluster.

``helm lint --strict`` and ``helm template`` run the real helm binary (``make helm`` builds it into
``.tools/bin``; without it these tests are skipped and say so). Every rendered manifest is
validated against the Kubernetes API schemas of KUBERNETES_VERSIONS with kubernetes-validate in
strict mode (unknown fields fail), and the properties a platform team relies on are asserted on
the rendered objects: hardened containers, secrets by reference only, every environment
variable read by the process it is set for, the versioning build id,
the dashboards and alerts of ops/ shipped whole, the values schema refusing bad input, and a
README that documents every value.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from support.dockerfile import copied_from_context
from support.helm_chart import (
    CHART,
    COMPONENT_DOCKERFILES,
    EXAMPLES,
    REPO,
    SKIP_WITHOUT_HELM,
    WORKLOADS,
    component_of,
    containers,
    env_of,
    helm,
    pod_spec,
    render,
)

from nexus_contracts import load_endpoints

# The oldest and the newest minor the chart is validated against (Chart.yaml asks for >= 1.27;
# StatefulSet PVC retention policies are GA from 1.32).
KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")
# Kinds of KEDA and the Prometheus Operator: kubernetes-validate has no schema for CRDs; they
# are validated against the CRDs kept in deploy/helm/crds (tests/deploy/test_chart_crds.py).
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}
# Every optional part on, so that it is rendered, validated and hardened like the rest.
EVERYTHING_ON = [
    "--set",
    "modelServer.enabled=true",
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "metrics.prometheusRule.enabled=true",
    "--set",
    "codecServer.ingress.enabled=true",
    "--set",
    "codecServer.ingress.tlsSecret=codec-tls",
    "--set",
    "tracing.otlpEndpoint=http://otel-collector:4318",
    "--set",
    "metrics.prometheusRule.runbookBaseUrl=https://runbooks.example.com/durable-agents",
    # Two agent versions, the second ramping, every pool autoscaled by KEDA.
    "--set",
    "agent.versions[0].buildId=2026.12.01-1",
    "--set",
    "agent.versions[1].buildId=2026.12.06-1",
    "--set",
    "agent.rollout.current=2026.12.01-1",
    "--set",
    "agent.rollout.ramp.buildId=2026.12.06-1",
    "--set",
    "agent.rollout.ramp.percentage=25",
    "--set",
    "autoscaling.keda.enabled=true",
    *[a for pool in ("agentWorker", "llmWorker", "embedWorker") for a in ("--set", f"{pool}.autoscaling.enabled=true")],
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "networkPolicy.temporal.to[0].ipBlock.cidr=10.20.0.0/16",
    "--set",
    "networkPolicy.modelProvider.to[0].ipBlock.cidr=0.0.0.0/0",
    "--set",
    "networkPolicy.database.to[0].ipBlock.cidr=10.30.0.0/16",
    "--set",
    "networkPolicy.codecServerFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=ingress-nginx",
    "--set",
    "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
    "--set",
    "priorityClassName=durable-agents",
    "--set",
    "global.imageRegistry=registry.example.com",
    "--set",
    "global.imagePullSecrets[0]=registry-pull",
    "--set",
    "approvalPortal.enabled=true",
    "--set",
    "approvalPortal.auth.principals.existingSecret=agent-principals",
    "--set",
    "reingestSchedule.enabled=true",
    "--set",
    "reingestSchedule.documents.existingClaim=knowledge-base",
]
POSTGRES_RETRIEVAL = (
    "--set", "retrievalWorker.backend=postgres",
    "--set", "retrievalWorker.replicas=3",
    "--set", "retrievalWorker.database.url=postgresql://retrieval@db:5432/retrieval?sslmode=verify-full",
    "--set", "retrievalWorker.database.passwordSecret=retrieval-db",
)  # fmt: skip
# Every pool autoscaled without KEDA: CPU HorizontalPodAutoscalers.
HPA = [a for pool in ("agentWorker", "llmWorker", "embedWorker") for a in ("--set", f"{pool}.autoscaling.enabled=true")]
RENDERS = {
    "defaults": [],
    "everything-on": EVERYTHING_ON,
    "hpa": HPA,
    "retrieval-on-postgres": list(POSTGRES_RETRIEVAL),
    **{f"example-{p.stem}": ["-f", str(p)] for p in EXAMPLES},
}

pytestmark = SKIP_WITHOUT_HELM


def helm_fails(*args: str) -> str:
    """helm template that must fail: returns its error text, and proves nothing was rendered."""
    result = helm("template", "agents", str(CHART), *args)
    assert result.returncode != 0, f"helm template {' '.join(args)} succeeded but must fail"
    assert "kind:" not in result.stdout
    return result.stderr


def kinds(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def workload(docs: list[dict], kind: str, component: str) -> dict:
    found = [d for d in kinds(docs, kind) if component_of(d) == component]
    assert len(found) == 1, f"expected one {kind} for {component}, found {len(found)}"
    return found[0]


def chart_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


@pytest.fixture(scope="module", params=sorted(RENDERS), ids=str)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, render(*RENDERS[request.param])


# ---- lint and schema validation of every manifest ----


@pytest.mark.parametrize(
    "args", [[], *[["-f", str(p)] for p in EXAMPLES]], ids=["defaults", *[p.stem for p in EXAMPLES]]
)
def test_lint_strict(args: list[str]) -> None:
    result = helm("lint", "--strict", str(CHART), *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_examples_exist() -> None:
    assert {p.stem for p in EXAMPLES} >= {"self-hosted", "temporal-cloud-mtls", "temporal-cloud-api-key"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_kubernetes(rendered: tuple[str, list[dict]], version: str) -> None:
    _, docs = rendered
    checked = 0
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} is not valid for Kubernetes {version}: {err.message}")
        checked += 1
    assert checked > 10


# ---- hardening ----


def test_every_container_is_hardened(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    problems = []
    seen = 0
    for name, container, spec in containers(docs):
        seen += 1
        pod_sc, sc = spec.get("securityContext", {}), container.get("securityContext", {})
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{name}: may run as root")
        if (sc.get("runAsUser", pod_sc.get("runAsUser")) or 0) == 0:
            problems.append(f"{name}: no non-zero runAsUser")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: privilege escalation allowed")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities not dropped")
        if sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(part, {})):
                problems.append(f"{name}: no cpu and memory {part}")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: service account token mounted")
        if not name.startswith(("Job/", "Pod/")):
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    problems.append(f"{name}: no {probe}")
    assert seen >= 5
    assert not problems, "\n".join(problems)


def test_probes_use_the_endpoints_the_processes_serve() -> None:
    """Python workers: workerkit's /healthz and /readyz; Go worker: its -http-addr /healthz and
    /readyz; codec and model servers: /healthz (their only health route)."""
    docs = render(*EVERYTHING_ON)
    expected = {
        "agent-worker": ("/healthz", "/readyz", 8403),
        "llm-worker": ("/healthz", "/readyz", 8403),
        "embed-worker": ("/healthz", "/readyz", 8403),
        "business-worker": ("/healthz", "/readyz", 8402),
        "retrieval-worker": ("/healthz", "/readyz", 8401),
        "codec-server": ("/healthz", "/healthz", 8404),
        "model-server": ("/healthz", "/healthz", 8400),
        "approval-portal": ("/healthz", "/readyz", 8405),
        "mcp-server": ("/healthz", "/readyz", 8406),
    }
    seen = set()
    for doc in kinds(docs, "Deployment") + kinds(docs, "StatefulSet"):
        component = component_of(doc)
        container = doc["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        live, ready, port = expected[component]
        seen.add(component)
        for probe, path in (("livenessProbe", live), ("readinessProbe", ready)):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{component} {probe}"
            assert ports[get["port"]] == port, f"{component} {probe} probes port {ports[get['port']]}"
    assert seen == set(expected), f"no workload rendered for {sorted(set(expected) - seen)}"


def test_workers_name_their_metrics_port_and_annotate_it() -> None:
    docs = render()
    for kind, component, port in [
        ("Deployment", "agent-worker", 8413),
        ("Deployment", "llm-worker", 8413),
        ("Deployment", "embed-worker", 8413),
        ("StatefulSet", "retrieval-worker", 8401),
        ("StatefulSet", "business-worker", 8412),
    ]:
        doc = workload(docs, kind, component)
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"], component
        annotations = doc["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port), component
    for doc in render("--set", "metrics.scrapeAnnotations=false"):
        if doc["kind"] in WORKLOADS - {"Pod"}:
            assert "prometheus.io/scrape" not in doc["spec"]["template"]["metadata"].get("annotations", {})


# ---- state: single-writer stores ----


@pytest.mark.parametrize(("component", "mount"), [("retrieval-worker", "/data"), ("business-worker", "/data")])
def test_stateful_workers_are_single_replica_statefulsets_with_a_volume(component: str, mount: str) -> None:
    docs = render()
    assert not [d for d in kinds(docs, "Deployment") if component_of(d) == component]
    sts = workload(docs, "StatefulSet", component)
    assert sts["spec"]["replicas"] == 1
    claims = sts["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "data", "mountPath": mount} in container["volumeMounts"]
    services = {s["metadata"]["name"] for s in kinds(docs, "Service")}
    assert sts["spec"]["serviceName"] in services


def test_retrieval_on_postgres_is_a_stateless_deployment_after_its_migration() -> None:
    docs = render(*POSTGRES_RETRIEVAL)
    assert not [d for d in kinds(docs, "StatefulSet") if component_of(d) == "retrieval-worker"]
    deployment = workload(docs, "Deployment", "retrieval-worker")
    assert deployment["spec"]["replicas"] == 3
    spec = deployment["spec"]["template"]["spec"]
    assert "volumeClaimTemplates" not in deployment["spec"]
    assert not [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "data"]
    env = env_of(spec["containers"][0])
    assert env["RETRIEVAL_BACKEND"]["value"] == "postgres"
    assert env["RETRIEVAL_DATABASE_URL"]["value"].startswith("postgresql://retrieval@db:5432/")
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "retrieval-db", "key": "password"}
    assert "RETRIEVAL_DATA_DIR" not in env
    [pdb] = [d for d in kinds(docs, "PodDisruptionBudget") if component_of(d) == "retrieval-worker"]
    assert pdb["spec"]["maxUnavailable"] == 1
    [job] = [d for d in kinds(docs, "Job") if component_of(d) == "retrieval-migrate"]
    hook = job["metadata"]["annotations"]
    assert set(hook["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    migrate = job["spec"]["template"]["spec"]["containers"][0]
    assert migrate["args"] == ["migrate"]
    assert env_of(migrate)["PGPASSWORD"] == env["PGPASSWORD"]
    # The embedded default renders neither.
    default = render()
    assert not [d for d in kinds(default, "Job") if component_of(d) == "retrieval-migrate"]
    assert not [d for d in kinds(default, "Deployment") if component_of(d) == "retrieval-worker"]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--set", "retrievalWorker.replicas=2"), "maximum: got 2, want 1"),
        (("--set", "retrievalWorker.backend=postgres"), "/retrievalWorker/database/url"),
        (
            (
                "--set",
                "retrievalWorker.backend=postgres",
                "--set",
                "retrievalWorker.database.url=postgresql://u:pw@db/r",
            ),
            "/retrievalWorker/database/url",
        ),
        (("--set", "retrievalWorker.backend=sqlite"), "/retrievalWorker/backend"),
    ],
)
def test_schema_refuses_impossible_retrieval_settings(args: tuple[str, ...], complaint: str) -> None:
    assert complaint in helm_fails(*args)


def test_agent_pools_share_one_blob_store_claim() -> None:
    docs = render()
    claims = set()
    for component in ("agent-worker", "llm-worker", "embed-worker"):
        spec = workload(docs, "Deployment", component)["spec"]["template"]["spec"]
        blobs = next(v for v in spec["volumes"] if v["name"] == "blobs")
        claims.add(blobs["persistentVolumeClaim"]["claimName"])
        assert env_of(spec["containers"][0])["AGENT_BLOB_DIR"]["value"] == "/data/blobs"
    assert len(claims) == 1
    assert claims == {c["metadata"]["name"] for c in kinds(docs, "PersistentVolumeClaim")}
    existing = render("--set", "agent.blobStore.existingClaim=shared-blobs")
    assert not kinds(existing, "PersistentVolumeClaim")


# ---- secrets: by reference only ----

SECRET_ENV = re.compile(r"(API_KEY|TOKEN|PASSWORD|SECRET)$")


def test_secret_env_comes_from_secret_key_refs(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    assert not kinds(docs, "Secret"), "the chart must never render a Secret"
    for where, container, _ in containers(docs):
        for env in container.get("env", []):
            if not SECRET_ENV.search(env["name"]):
                continue
            # The simulator accepts any key; "sim" is what the dev stack sends as well.
            if env["name"] == "OPENAI_API_KEY" and env.get("value") == "sim":
                continue
            assert "value" not in env, f"{name}: {where} renders {env['name']} as a value"
            assert "secretKeyRef" in env["valueFrom"], f"{name}: {where} {env['name']}"


SENTINEL = "sk-SENTINEL-do-not-render-4f1c9a"


@pytest.mark.parametrize(
    "key",
    [
        "temporal.apiKey.value",
        "temporal.tls.clientKey",
        "agent.model.apiKey.value",
        "agent.embedding.apiKey.value",
        "codecServer.auth.tokens.value",
        "encryption.keyring",
        "modelServer.apiKey",
    ],
)
def test_a_secret_value_is_refused_and_never_rendered(key: str) -> None:
    """Values take Secret names only: a secret given as a value is refused by the schema
    (no such key), so it can never reach a manifest or a ConfigMap."""
    error = helm_fails("--set", f"{key}={SENTINEL}")
    assert "additional properties" in error
    assert SENTINEL not in error


def test_secret_names_only_appear_as_references() -> None:
    """Secret names given in values show up only inside secretKeyRef and secret volumes."""
    names = {
        "temporal.tls.existingSecret": "ref-temporal-tls",
        "temporal.tls.caSecret": "ref-temporal-ca",
        "temporal.apiKey.existingSecret": "ref-temporal-api-key",
        "agent.model.apiKey.existingSecret": "ref-openai",
        "agent.embedding.apiKey.existingSecret": "ref-embedding",
        "codecServer.auth.tokens.existingSecret": "ref-codec-tokens",
        "encryption.keyringSecret": "ref-codec-keys",
    }
    args = [a for k, v in names.items() for a in ("--set", f"{k}={v}")]
    docs = render(*args)
    referenced = set()
    for _, container, spec in containers(docs):
        for env in container.get("env", []):
            if ref := env.get("valueFrom", {}).get("secretKeyRef"):
                referenced.add(ref["name"])
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
    assert set(names.values()) <= referenced
    for cm in kinds(docs, "ConfigMap"):
        text = json.dumps(cm)
        assert not any(n in text for n in names.values()), cm["metadata"]["name"]


def test_the_keyring_is_mounted_read_only_wherever_payloads_are_encrypted() -> None:
    docs = render(*EVERYTHING_ON)
    for doc in kinds(docs, "Deployment") + kinds(docs, "StatefulSet"):
        component = component_of(doc)
        spec = doc["spec"]["template"]["spec"]
        container = spec["containers"][0]
        mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
        if component == "model-server":
            assert "codec-keys" not in mounts
            continue
        assert mounts["codec-keys"]["readOnly"] is True, component
        assert env_of(container)["CODEC_KEYRING_DIR"]["value"] == mounts["codec-keys"]["mountPath"], component
        volume = next(v for v in spec["volumes"] if v["name"] == "codec-keys")
        assert volume["secret"]["secretName"] == "codec-keys"
    off = render("--set", "encryption.enabled=false")
    for where, container, _ in containers(off):
        if "/setup" in where:
            continue
        assert "CODEC_KEYRING_DIR" not in env_of(container), where


def test_the_agent_uses_the_provider_or_the_simulator_consistently() -> None:
    """A hosted provider gets an embedding model it serves; the simulator gets its MiniLM."""
    hosted = env_of(workload(render(), "Deployment", "embed-worker")["spec"]["template"]["spec"]["containers"][0])
    assert "OPENAI_BASE_URL" not in hosted
    assert hosted["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "openai-api-key"
    assert hosted["EMBEDDING_MODEL"]["value"] == "text-embedding-3-small"
    docs = render("--set", "modelServer.enabled=true")
    simulated = env_of(workload(docs, "Deployment", "embed-worker")["spec"]["template"]["spec"]["containers"][0])
    service = workload(docs, "Service", "model-server")
    port = service["spec"]["ports"][0]["port"]
    assert simulated["OPENAI_BASE_URL"]["value"] == f"http://{service['metadata']['name']}:{port}/v1"
    assert simulated["EMBEDDING_MODEL"]["value"] == "all-minilm-l6-v2"
    assert simulated["AGENT_MODEL"]["value"] == "sim-gpt"
    error = helm_fails("--set", "agent.model.apiKey.existingSecret=")
    assert "the agent has no model provider" in error


# ---- Temporal connection ----


@pytest.mark.parametrize("tls_value", ["true", "false"])
def test_cloud_api_key_example_sets_tls_and_the_key_from_a_secret(tls_value: str) -> None:
    """Temporal Cloud is TLS only: TLS is on even when temporal.tls.enabled is left false."""
    docs = render(
        "-f",
        str(CHART / "examples" / "temporal-cloud-api-key.yaml"),
        "--set",
        f"temporal.tls.enabled={tls_value}",
        "--set",
        "setup.enabled=true",
    )
    workers = [c for w, c, _ in containers(docs) if "/worker" in w]
    assert len(workers) == 5
    for container in workers:
        env = env_of(container)
        assert env["TEMPORAL_TLS"]["value"] == "true"
        assert env["TEMPORAL_API_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "temporal-cloud-api-key",
            "key": "api-key",
        }
        assert env["TEMPORAL_NAMESPACE"]["value"].endswith(".a1b2c")
    assert not [j for j in kinds(docs, "Job") if component_of(j) == "setup"], (
        "Temporal Cloud endpoints are made with tcld/Terraform, not a hook"
    )


def test_cloud_mtls_example_mounts_the_client_certificate_per_namespace_address() -> None:
    docs = render("-f", str(CHART / "examples" / "temporal-cloud-mtls.yaml"))
    addresses = {}
    for where, container, spec in containers(docs):
        if "/worker" not in where:
            continue
        env = env_of(container)
        assert env["TEMPORAL_TLS"]["value"] == "true"
        assert "TEMPORAL_API_KEY" not in env
        assert env["TEMPORAL_TLS_CLIENT_CERT_PATH"]["value"] == "/etc/temporal/tls/tls.crt"
        assert env["TEMPORAL_TLS_CLIENT_KEY_PATH"]["value"] == "/etc/temporal/tls/tls.key"
        tls = next(v for v in spec["volumes"] if v["name"] == "temporal-tls")
        assert tls["secret"]["secretName"] == "temporal-cloud-client-tls"
        addresses[env["TEMPORAL_NAMESPACE"]["value"]] = env["TEMPORAL_ADDRESS"]["value"]
    assert addresses == {f"{ns}.a1b2c": f"{ns}.a1b2c.tmprl.cloud:7233" for ns in ("agents", "retrieval", "business")}


def test_self_hosted_defaults_connect_in_plain_text_to_the_frontend() -> None:
    docs = render()
    for where, container, _ in containers(docs):
        if "codec-server" in where:
            continue  # it decodes payloads; it never talks to Temporal
        env = env_of(container)
        assert "TEMPORAL_TLS" not in env and "TEMPORAL_API_KEY" not in env, where
        assert env["TEMPORAL_ADDRESS"]["value"] == "temporal-frontend.temporal.svc.cluster.local:7233"


# ---- every setting reaches a process ----

# Where a component's process reads its environment: the code its image copies (its Dockerfile
# says which), and the libraries that read standard variables themselves (Temporal's envconfig
# reads TEMPORAL_*, the openai client OPENAI_*, OpenTelemetry OTEL_*). A name none of them
# mentions would be ignored silently: the pod would start with a default instead of the
# operator's value.
PYTHON_LIBRARIES = ("temporalio", "openai", "opentelemetry")
# pgconn reads the libpq variables (PGPASSWORD, PGSSLROOTCERT, ...) of the PostgreSQL backend.
GO_LIBRARIES = ("go.temporal.io/sdk/contrib/envconfig", "go.opentelemetry.io/otel", "github.com/jackc/pgx/v5")
SOURCE_SUFFIXES = {".py", ".go", ".rs"}
# The setup hook runs a shell script of the chart's own, which the process test runs.
NOT_A_PROCESS_OF_OURS = {"setup"}


def _text_under(roots: list[Path]) -> str:
    return "\n".join(
        f.read_text(errors="replace")
        for root in roots
        for f in root.rglob("*")
        if f.suffix in SOURCE_SUFFIXES
        and f.is_file()
        and not f.name.endswith("_test.go")
        and not {"tests", "testdata"} & set(f.relative_to(root).parts)
    )


@functools.cache
def image_code(dockerfile: str) -> tuple[str, bool]:
    """The source text an image copies from the repository, and whether it is a Go image."""
    roots = [REPO / p for p in copied_from_context(REPO / dockerfile) if (REPO / p).is_dir()]
    return _text_under(roots), any((root / "go.mod").exists() for root in roots)


@pytest.fixture(scope="module")
def library_sources() -> dict[bool, str]:
    """The source text of the libraries that read standard variables: {is Go: text}."""
    import importlib.util

    python_roots = []
    for name in PYTHON_LIBRARIES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
        python_roots += [Path(p) for p in spec.submodule_search_locations]
    listed = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Path}} {{.Dir}}", "all"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO / "services" / "retrieval-go",
        check=True,
    ).stdout.splitlines()
    go_roots = [
        Path(directory)
        for path, _, directory in (line.partition(" ") for line in listed)
        if directory and any(path == lib or path.startswith(lib + "/") for lib in GO_LIBRARIES)
    ]
    assert go_roots, "the Go modules are not downloaded: run `make install`"
    return {False: _text_under(python_roots), True: _text_under(go_roots)}


def test_every_environment_variable_is_read_by_its_process(
    rendered: tuple[str, list[dict]], library_sources: dict[bool, str]
) -> None:
    unread: list[str] = []
    for doc in rendered[1]:
        component = component_of(doc) if doc["kind"] in WORKLOADS else None
        if component is None or component in NOT_A_PROCESS_OF_OURS:
            continue
        assert component in COMPONENT_DOCKERFILES, f"{component}: name the Dockerfile of its image"
        own, is_go = image_code(COMPONENT_DOCKERFILES[component])
        spec = pod_spec(doc)
        for container in spec.get("initContainers", []) + spec["containers"]:
            for name in env_of(container):
                quoted = (f'"{name}"', f"'{name}'")
                if not any(q in own or q in library_sources[is_go] for q in quoted):
                    unread.append(f"{component}: {name}")
    assert not unread, "set by the chart but read by no code of the process: " + ", ".join(sorted(set(unread)))


# ---- versioning ----


def build_ids(docs: list[dict]) -> dict[str, tuple[str, str, str]]:
    """component -> (deployment name, build id, image tag) of every versioned workload."""
    found = {}
    for doc in kinds(docs, "Deployment") + kinds(docs, "StatefulSet"):
        container = doc["spec"]["template"]["spec"]["containers"][0]
        env = env_of(container)
        if "TEMPORAL_WORKER_BUILD_ID" in env:
            component = component_of(doc)
            tag = container["image"].rsplit(":", 1)[1]
            found[component] = (env["TEMPORAL_DEPLOYMENT_NAME"]["value"], env["TEMPORAL_WORKER_BUILD_ID"]["value"], tag)
    return found


def test_the_agents_build_id_is_theirs_alone() -> None:
    """The agents' build id is the agent image's tag (or agent.versions), never image.tag: a new
    tag for the platform images must not make a new agent version."""
    ids = build_ids(render())
    assert set(ids) == {"agent-worker", "llm-worker", "embed-worker"}
    assert {v for v in ids.values()} == {("support-agent", chart_app_version(), chart_app_version())}
    tagged = build_ids(render("--set", "image.tag=2026.12.06-1"))
    assert {v[1:] for v in tagged.values()} == {(chart_app_version(), chart_app_version())}
    own = build_ids(render("--set", "agent.image.tag=abc123"))
    assert {v[1:] for v in own.values()} == {("abc123", "abc123")}
    pinned = build_ids(render("--set", "versioning.buildId=v7", "--set", "retrievalWorker.versioned=true"))
    assert pinned.pop("retrieval-worker") == ("retrieval", "v7", chart_app_version())
    assert {v[1] for v in pinned.values()} == {chart_app_version()}, "versioning.buildId is not the agents'"
    assert build_ids(render("--set", "versioning.enabled=false")) == {}


# ---- dashboards, alerts, Nexus endpoints: ops/ and nexus/ shipped whole ----


def test_dashboards_ship_every_file_of_ops_grafana_with_the_sidecar_label() -> None:
    docs = render()
    shipped = {}
    for cm in kinds(docs, "ConfigMap"):
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1":
            for key, text in cm["data"].items():
                shipped[key] = json.loads(text)
    files = sorted((REPO / "ops" / "grafana" / "dashboards").glob("*.json"))
    assert files
    assert shipped == {f.name: json.loads(f.read_text()) for f in files}
    assert not [
        c
        for c in kinds(render("--set", "metrics.dashboards.enabled=false"), "ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]


RUNBOOKS = "https://runbooks.example.com/durable-agents"


def test_prometheus_rule_holds_every_alert_of_ops_prometheus_scoped_to_the_release() -> None:
    """Every alert, with each selector's release="" made this release's and each runbook_url a
    URL under the configured base; nothing else changed."""
    assert not kinds(render(), "PrometheusRule"), "off by default"
    error = helm_fails("--set", "metrics.prometheusRule.enabled=true")
    assert "needs metrics.prometheusRule.runbookBaseUrl" in error
    rules = kinds(
        render(
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            f"metrics.prometheusRule.runbookBaseUrl={RUNBOOKS}/",
        ),
        "PrometheusRule",
    )
    assert len(rules) == 1
    shipped = {r["alert"]: r for g in rules[0]["spec"]["groups"] for r in g["rules"] if "alert" in r}
    expected = {}
    for path in sorted((REPO / "ops" / "prometheus" / "rules").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            expected.update({r["alert"]: r for r in group["rules"] if "alert" in r})
    assert expected and set(shipped) == set(expected)
    for name, rule in expected.items():
        got = shipped[name]
        assert 'release=""' in rule["expr"], f'{name}: its selectors must carry release="" (ops/prometheus/rules)'
        assert got["expr"] == rule["expr"].replace('release=""', 'release="agents"'), name
        assert 'release=""' not in got["expr"]
        assert got["annotations"]["runbook_url"] == f"{RUNBOOKS}/{name}.md"
        assert {k: v for k, v in got.items() if k not in ("expr", "annotations")} == {
            k: v for k, v in rule.items() if k not in ("expr", "annotations")
        }


def test_service_monitor_selects_every_metrics_service() -> None:
    docs = render(*EVERYTHING_ON)
    (monitor,) = kinds(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    selected = [s for s in kinds(docs, "Service") if selector.items() <= s["metadata"]["labels"].items()]
    assert {component_of(s) for s in selected} == {
        "agent-worker",
        "llm-worker",
        "embed-worker",
        "retrieval-worker",
        "business-worker",
        "codec-server",
        "model-server",
        "approval-portal",
        "mcp-server",
    }
    for service in selected:
        assert {p["name"] for p in service["spec"]["ports"]} & ports, service["metadata"]["name"]


def test_setup_hook_creates_the_endpoints_of_nexus_endpoints_json() -> None:
    docs = render("--set", "temporal.namespaces.retrieval.name=search")
    (job,) = [j for j in kinds(docs, "Job") if component_of(j) == "setup"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (cm,) = [c for c in kinds(docs, "ConfigMap") if "endpoints.txt" in c.get("data", {})]
    lines = [line.split("|") for line in cm["data"]["endpoints.txt"].splitlines() if line]
    names = {"retrieval": "search"}
    assert [(n, ns, tq) for n, ns, tq, _ in lines] == [
        (e.name, names.get(e.target_namespace, e.target_namespace), e.target_task_queue) for e in load_endpoints()
    ]
    assert "AgentPendingApprovals" in cm["data"]["setup.sh"]


def test_codec_server_lets_the_agents_namespace_decode_its_nexus_targets_keys() -> None:
    """The agents namespace's histories hold Nexus results under the targets' keys
    (codec-server/README.md): the codec server learns the targets, renamed as the cluster names
    them, and that agents is the caller."""
    docs = render("--set", "temporal.namespaces.retrieval.name=search", "--set", "temporal.namespaces.agents.name=bots")
    (server,) = [d for d in kinds(docs, "Deployment") if component_of(d) == "codec-server"]
    env = env_of(server["spec"]["template"]["spec"]["containers"][0])
    assert env["CODEC_SERVER_NEXUS_CALLERS"]["value"] == "bots"
    (cm,) = [c for c in kinds(docs, "ConfigMap") if "endpoints.json" in c.get("data", {})]
    targets = [e["target_namespace"] for e in json.loads(cm["data"]["endpoints.json"])["endpoints"]]
    names = {"retrieval": "search"}
    assert targets == [names.get(e.target_namespace, e.target_namespace) for e in load_endpoints()]
    mount = env["CODEC_SERVER_NEXUS_ENDPOINTS_FILE"]["value"]
    volumes = {v["name"]: v for v in server["spec"]["template"]["spec"]["volumes"]}
    mounts = server["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    (nexus,) = [m for m in mounts if mount.startswith(m["mountPath"] + "/")]
    assert volumes[nexus["name"]]["configMap"]["name"] == cm["metadata"]["name"]


def test_a_packaged_chart_carries_the_linked_files(tmp_path: Path) -> None:
    """files/ links into ops/ and nexus/; `helm package` must resolve them, or a chart pushed to
    a registry would ship without dashboards, alerts and endpoints."""
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (package,) = tmp_path.glob("durable-agents-*.tgz")
    docs = [
        d
        for d in yaml.safe_load_all(
            helm(
                "template",
                "agents",
                str(package),
                "--set",
                "metrics.prometheusRule.enabled=true",
                "--set",
                f"metrics.prometheusRule.runbookBaseUrl={RUNBOOKS}",
            ).stdout
        )
        if d
    ]
    dashboards = [c for c in kinds(docs, "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) == len(list((REPO / "ops" / "grafana" / "dashboards").glob("*.json")))
    assert kinds(docs, "PrometheusRule")[0]["spec"]["groups"]
    assert {component_of(j) for j in kinds(docs, "Job")} == {"setup", "rollout"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["port-forward svc/agents-durable-agents-codec-server", "Worker Deployment Versioning"]),
        (["-f", str(CHART / "examples" / "temporal-cloud-mtls.yaml")], ["https://codec.example.com", "tcld"]),
        (["--set", "modelServer.enabled=true"], ["OFFLINE SIMULATOR"]),
    ],
    ids=["defaults", "cloud", "simulator"],
)
def test_notes_say_what_was_installed_and_what_to_do_next(args: list[str], expected: list[str]) -> None:
    result = helm("install", "agents", str(CHART), "--dry-run=client", "--namespace", "durable-agents", *args)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    for text in expected:
        assert text in notes


# ---- values: schema and documentation ----


def test_schema_rejects_a_wrong_type() -> None:
    error = helm_fails("--set", "agentWorker.replicas=many")
    assert "/agentWorker/replicas" in error and "want integer" in error


def test_schema_rejects_an_unknown_top_level_key() -> None:
    error = helm_fails("--set", "agentWorkers.replicas=2")
    assert "agentWorkers" in error


def test_schema_rejects_cloud_without_credentials() -> None:
    error = helm_fails("--set", "temporal.mode=cloud")
    assert "/temporal/tls/existingSecret" in error and "/temporal/apiKey/existingSecret" in error


def test_templates_refuse_cloud_without_credentials_even_without_the_schema() -> None:
    error = helm_fails("--skip-schema-validation", "--set", "temporal.mode=cloud")
    assert "temporal.mode is cloud but no credentials are given" in error


def test_codec_server_needs_authentication() -> None:
    error = helm_fails("--set", "codecServer.auth.tokens.existingSecret=")
    assert "the codec server needs authentication" in error


def test_cors_origins_must_be_origins() -> None:
    error = helm_fails("--set", "codecServer.corsOrigins[0]=*")
    assert "/codecServer/corsOrigins/0" in error


def leaf_keys(node: dict, prefix: str = "") -> Iterator[str]:
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            yield from leaf_keys(value, path)
        else:
            yield path


def test_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set(re.findall(r"^\| `([^`]+)` \|", (CHART / "README.md").read_text(), flags=re.MULTILINE))
    keys = list(leaf_keys(values))
    assert len(keys) > 100
    missing = [k for k in keys if k not in documented]
    assert not missing, f"values missing from the README table: {missing}"
    stale = sorted(documented - set(keys))
    assert not stale, f"README documents values that do not exist: {stale}"


def test_every_value_has_a_comment() -> None:
    """values.yaml explains each key in a '# --' line right above it, or above its parent
    (resources: requests and limits are described once)."""
    commented: dict[int, bool] = {}  # indentation -> whether the open parent there is commented
    uncommented = []
    previous = ""
    for line in (CHART / "values.yaml").read_text().splitlines():
        match = re.match(r"^( *)([A-Za-z_]\w*):\s*(.*)$", line)
        if match:
            indent = len(match.group(1))
            commented = {i: c for i, c in commented.items() if i < indent}
            has_comment = previous.strip().startswith("# --")
            covered = has_comment or any(commented.values())
            if match.group(3) == "":
                commented[indent] = has_comment
            elif not covered:
                uncommented.append(line.strip())
        previous = line
    assert not uncommented, f"values without a '# --' comment: {uncommented}"
