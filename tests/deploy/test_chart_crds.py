"""The chart's custom resources against the CRDs of the projects that own them.

Every rendered ScaledObject, TriggerAuthentication (KEDA), ServiceMonitor and PrometheusRule
(Prometheus Operator) is validated against the ``openAPIV3Schema`` of the CRD kept in
deploy/helm/crds (source and version in its README), strictly: where the API server would prune
a field its CRD does not declare (the resource then silently does less than the chart meant), the
validation here fails. Then what the resources must do: each autoscaled pool of each agent version
gets a KEDA temporal trigger on its own task queue and build id; the ServiceMonitor keeps the
SDK's ``namespace`` label and attaches ``release``.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support.helm_chart import REPO, SKIP_WITHOUT_HELM, component_of, env_of, pod_spec, render

CRDS = REPO / "deploy" / "helm" / "crds"
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}
POOLS = ("agentWorker", "llmWorker", "embedWorker")
V1, V2 = "2026.12.01-1", "2026.12.06-1"
# Two versions (one ramping), every pool autoscaled, both Prometheus Operator kinds, API-key auth.
EVERYTHING = [
    "-f",
    str(REPO / "deploy" / "helm" / "durable-agents" / "examples" / "temporal-cloud-api-key.yaml"),
    "--set",
    f"agent.versions[0].buildId={V1}",
    "--set",
    f"agent.versions[1].buildId={V2}",
    "--set",
    f"agent.rollout.current={V1}",
    "--set",
    f"agent.rollout.ramp.buildId={V2}",
    "--set",
    "agent.rollout.ramp.percentage=10",
    "--set",
    "autoscaling.keda.enabled=true",
    *[a for pool in POOLS for a in ("--set", f"{pool}.autoscaling.enabled=true")],
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "metrics.prometheusRule.enabled=true",
    "--set",
    "metrics.prometheusRule.runbookBaseUrl=https://runbooks.example.com",
]
MTLS = [
    "-f",
    str(REPO / "deploy" / "helm" / "durable-agents" / "examples" / "self-hosted.yaml"),
    "--set",
    "autoscaling.keda.enabled=true",
    "--set",
    "agentWorker.autoscaling.enabled=true",
]

pytestmark = SKIP_WITHOUT_HELM


def strict(schema: Any) -> Any:
    """The schema with every object closed: fields it does not declare are errors, not pruned."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if isinstance(schema.get("pattern"), str) and "(?i)" in schema["pattern"]:
            # Go's RE2 takes an inline flag anywhere; Python's re only at the start.
            schema["pattern"] = "(?i)" + schema["pattern"].replace("(?i)", "")
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the strict schema of that served version."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # metadata is ObjectMeta, validated by the API server itself, not the CRD.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                found[(f"{group}/{version['name']}", kind)] = strict(schema)
    return found


def validate(doc: dict) -> None:
    schema = crd_schemas().get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"no CRD kept for {doc['apiVersion']} {doc['kind']} in {CRDS}"
    try:
        jsonschema.Draft7Validator(schema).validate(doc)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} does not match its CRD at {where}: {err.message}")


def test_the_kept_crds_are_the_ones_the_chart_renders() -> None:
    assert {kind for _, kind in crd_schemas()} == CRD_KINDS


@pytest.mark.parametrize("args", [EVERYTHING, MTLS], ids=["cloud-api-key-two-versions", "self-hosted-mtls"])
def test_every_custom_resource_validates_against_its_crd(args: list[str]) -> None:
    docs = [d for d in render(*args) if d["kind"] in CRD_KINDS]
    assert {d["kind"] for d in docs} == CRD_KINDS
    for doc in docs:
        validate(doc)


def test_strict_validation_catches_a_field_the_crd_does_not_declare() -> None:
    """The check can fail: a misspelt trigger field would be pruned by the API server."""
    (scaled, *_) = [d for d in render(*EVERYTHING) if d["kind"] == "ScaledObject"]
    scaled["spec"]["minReplicas"] = 1  # KEDA's field is minReplicaCount
    with pytest.raises(pytest.fail.Exception, match="Additional properties are not allowed"):
        validate(scaled)


def test_each_version_of_each_pool_scales_on_its_own_backlog() -> None:
    docs = render(*EVERYTHING)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    triggers = {}
    for scaled in (d for d in docs if d["kind"] == "ScaledObject"):
        target = deployments[scaled["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "an autoscaled Deployment must leave replicas to KEDA"
        [container] = pod_spec(target)["containers"]
        env = {k: v.get("value") for k, v in env_of(container).items()}
        [trigger] = scaled["spec"]["triggers"]
        assert trigger["type"] == "temporal"
        meta = trigger["metadata"]
        # The workflow pool also polls the mcp queue (external MCP tools); it scales on its workflows.
        assert env["AGENT_WORKER_QUEUES"] in (meta["taskQueue"], f"{meta['taskQueue']},mcp")
        assert meta["workerDeploymentName"] == env["TEMPORAL_DEPLOYMENT_NAME"] == "support-agent"
        assert meta["workerDeploymentBuildId"] == env["TEMPORAL_WORKER_BUILD_ID"]
        assert meta["namespace"] == env["TEMPORAL_NAMESPACE"] and meta["endpoint"] == env["TEMPORAL_ADDRESS"]
        assert int(meta["targetQueueSize"]) >= 1 and "activationTargetQueueSize" in meta
        assert trigger["authenticationRef"]["name"]
        triggers[(component_of(target), meta["workerDeploymentBuildId"])] = meta["queueTypes"]
    assert triggers == {
        (pool, build): kinds
        for build in (V1, V2)
        for pool, kinds in (
            ("agent-worker", "workflow,activity"),
            ("llm-worker", "activity"),
            ("embed-worker", "activity"),
        )
    }
    [auth] = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "apiKey", "name": "temporal-cloud-api-key", "key": "api-key"}
    ]


def test_without_keda_autoscaled_pools_get_a_cpu_hpa() -> None:
    docs = render(*[a for pool in POOLS for a in ("--set", f"{pool}.autoscaling.enabled=true")])
    assert not [d for d in docs if d["kind"] == "ScaledObject"]
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert {component_of(h) for h in hpas} == {"agent-worker", "llm-worker", "embed-worker"}
    for hpa in hpas:
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_the_llm_pool_rate_limit_is_the_task_queues_not_a_pods() -> None:
    """queueRatePerSecond reaches the llm pool as AGENT_LLM_QUEUE_RATE, which the worker passes
    to Temporal as max_task_queue_activities_per_second: one limit for every replica."""
    docs = render("--set", "llmWorker.queueRatePerSecond=40", "--set", "llmWorker.autoscaling.enabled=true")
    [llm] = [d for d in docs if d["kind"] == "Deployment" and component_of(d) == "llm-worker"]
    assert env_of(pod_spec(llm)["containers"][0])["AGENT_LLM_QUEUE_RATE"]["value"] == "40"
    worker = (REPO / "services" / "agent-py" / "src" / "agent" / "worker.py").read_text()
    assert 'max_task_queue_activities_per_second=rate_setting("AGENT_LLM_QUEUE_RATE")' in worker


def test_service_monitor_keeps_the_sdk_namespace_label_and_adds_release() -> None:
    [monitor] = [d for d in render(*EVERYTHING) if d["kind"] == "ServiceMonitor"]
    for endpoint in monitor["spec"]["endpoints"]:
        relabel = endpoint["relabelings"]
        assert {"sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "kubernetes_namespace"} in relabel
        assert {"action": "labeldrop", "regex": "namespace"} in relabel
        assert {"targetLabel": "release", "replacement": "agents"} in relabel


def crd_file(kind: str) -> Path:
    return next(p for p in CRDS.glob("*.yaml") if yaml.safe_load(p.read_text())["spec"]["names"]["kind"] == kind)


def test_the_crd_readme_names_source_and_version_of_each_file() -> None:
    readme = (CRDS / "README.md").read_text()
    for kind in CRD_KINDS:
        name = crd_file(kind).name
        [line] = [line for line in readme.splitlines() if line.startswith(f"| `{name}`")]
        assert re.search(r"\| v\d+\.\d+\.\d+ \([0-9a-f]{40}\) \|$", line), f"{name}: no version and commit: {line}"
