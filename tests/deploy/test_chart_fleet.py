"""Fleet conventions of the chart, on rendered manifests: it works as a subchart with a parent's
globals, images take a registry and a digest, every long-running pod takes the release-wide
scheduling and extension settings, NetworkPolicies let only what is listed through, and
`helm test` runs the system check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from support.helm_chart import (
    CHART,
    COMPONENT_DOCKERFILES,
    OFF_BY_DEFAULT,
    SKIP_WITHOUT_HELM,
    component_of,
    env_of,
    helm,
    pod_spec,
    render,
)

pytestmark = SKIP_WITHOUT_HELM

LONG_RUNNING = {"Deployment", "StatefulSet"}
DIGEST = "sha256:" + "ab" * 32


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in LONG_RUNNING]


def test_the_chart_works_as_a_subchart_with_the_parents_globals(tmp_path: Path) -> None:
    parent = tmp_path / "platform"
    (parent / "charts").mkdir(parents=True)
    # files/ links into ops/ and nexus/: a parent vendors the chart with the links resolved.
    shutil.copytree(CHART, parent / "charts" / "durable-agents", symlinks=False)
    (parent / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": "platform",
                "version": "1.0.0",
                "dependencies": [{"name": "durable-agents", "version": "*"}],
            }
        )
    )
    (parent / "values.yaml").write_text(
        yaml.safe_dump(
            {
                # Globals of other subcharts must not fail this chart's strict schema.
                "global": {"imageRegistry": "mirror.example.com", "imagePullSecrets": ["mirror"], "storageClass": "x"},
                "durable-agents": {"modelServer": {"enabled": True}},
            }
        )
    )
    result = helm("template", "platform", str(parent))
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    pods = [pod_spec(d) for d in workloads(docs)]
    assert len(pods) >= 7
    for spec in pods:
        assert all(c["image"].startswith("mirror.example.com/") for c in spec["containers"])
        assert {"name": "mirror"} in spec["imagePullSecrets"]


def test_images_take_a_registry_and_a_digest() -> None:
    docs = render("--set", "image.registry=reg.example.com:5000/", "--set", f"agent.image.digest={DIGEST}")
    images = {component_of(d): pod_spec(d)["containers"][0]["image"] for d in workloads(docs)}
    assert images["agent-worker"] == f"reg.example.com:5000/durable-agents/agent-worker:0.1.0@{DIGEST}"
    assert images["codec-server"] == "reg.example.com:5000/durable-agents/codec-server:0.1.0"
    error = helm("template", "agents", str(CHART), "--set", "agent.image.digest=latest").stderr
    assert "/agent/image/digest" in error


def test_every_long_running_pod_takes_the_release_wide_settings() -> None:
    docs = render(
        "--set",
        "modelServer.enabled=true",
        "--set",
        "approvalPortal.enabled=true",
        "--set",
        "approvalPortal.auth.principals.existingSecret=leads",
        "--set",
        "priorityClassName=fleet-high",
        "--set",
        "extraEnv[0].name=FLEET_REGION",
        "--set",
        "extraEnv[0].value=eu-west-1",
        "--set",
        "envFrom[0].configMapRef.name=fleet-env",
        "--set",
        "extraVolumes[0].name=ca-bundle",
        "--set",
        "extraVolumes[0].configMap.name=ca-bundle",
        "--set",
        "extraVolumeMounts[0].name=ca-bundle",
        "--set",
        "extraVolumeMounts[0].mountPath=/etc/ssl/fleet",
        "--set",
        "sidecars[0].name=log-shipper",
        "--set",
        "sidecars[0].image=fluent-bit:3",
        "--set",
        "podDisruptionBudget.maxUnavailable=2",
    )
    seen = set()
    for doc in workloads(docs):
        spec, component = pod_spec(doc), component_of(doc)
        seen.add(component)
        main, *sidecars = spec["containers"]
        assert spec["priorityClassName"] == "fleet-high", component
        assert env_of(main)["FLEET_REGION"]["value"] == "eu-west-1", component
        assert {"configMapRef": {"name": "fleet-env"}} in main["envFrom"], component
        assert {"name": "ca-bundle", "mountPath": "/etc/ssl/fleet"} in main["volumeMounts"], component
        assert {"name": "ca-bundle", "configMap": {"name": "ca-bundle"}} in spec["volumes"], component
        assert [s["name"] for s in sidecars] == ["log-shipper"], component
        keys = [c["topologyKey"] for c in spec["topologySpreadConstraints"]]
        assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"], component
        for constraint in spec["topologySpreadConstraints"]:
            assert constraint["labelSelector"]["matchLabels"].items() <= doc["spec"]["selector"]["matchLabels"].items()
    # The rollout hooks and the `helm test` Pod run and go: not long-running pods (the portal is on here).
    assert seen == set(COMPONENT_DOCKERFILES) - {"rollout", "system-check"} - (OFF_BY_DEFAULT - {"approval-portal"})
    assert {p["spec"]["maxUnavailable"] for p in docs if p["kind"] == "PodDisruptionBudget"} == {2}


NETWORK = [
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "networkPolicy.temporal.to[0].ipBlock.cidr=10.20.0.0/16",
    "--set",
    "networkPolicy.modelProvider.to[0].ipBlock.cidr=203.0.113.0/24",
    "--set",
    "networkPolicy.codecServerFrom[0].podSelector.matchLabels.app=temporal-ui",
]


def policies_for(docs: list[dict], component: str) -> list[dict]:
    return [
        p
        for p in docs
        if p["kind"] == "NetworkPolicy" and component in p["spec"]["podSelector"]["matchExpressions"][0]["values"]
    ]


def egress_cidrs(policies: list[dict]) -> set[str]:
    return {
        peer["ipBlock"]["cidr"]
        for p in policies
        for rule in p["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    }


def test_network_policies_let_through_only_what_is_listed() -> None:
    docs = render(*NETWORK)
    codec = policies_for(docs, "codec-server")
    [ingress] = [rule for p in codec for rule in p["spec"].get("ingress", [])]
    assert ingress["from"] == [{"podSelector": {"matchLabels": {"app": "temporal-ui"}}}]
    assert ingress["ports"] == [{"port": 8404, "protocol": "TCP"}]
    assert egress_cidrs(codec) == set(), "the codec server talks to nobody but DNS"
    assert egress_cidrs(policies_for(docs, "agent-worker")) == {"10.20.0.0/16"}
    assert egress_cidrs(policies_for(docs, "llm-worker")) == {"10.20.0.0/16", "203.0.113.0/24"}
    assert egress_cidrs(policies_for(docs, "business-worker")) == {"10.20.0.0/16"}
    for rule in (r for p in policies_for(docs, "agent-worker") for r in p["spec"]["egress"]):
        assert rule.get("to"), "an egress rule without peers would allow every destination"
    for component in ("agent-worker", "codec-server", "rollout", "setup", "system-check", "retrieval-worker"):
        types = {t for p in policies_for(docs, component) for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, component


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "networkPolicy.enabled=true"], "needs networkPolicy.temporal.to"),
        (NETWORK[:4], "needs networkPolicy.modelProvider.to"),
    ],
    ids=["no-temporal-peers", "no-model-peers"],
)
def test_network_policies_refuse_an_empty_peer_list(args: list[str], message: str) -> None:
    result = helm("template", "agents", str(CHART), *args)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_helm_test_runs_the_system_check() -> None:
    [pod] = [d for d in render() if d["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    [container] = pod["spec"]["containers"]
    assert container["args"] == ["python", "-m", "agent", "check"]
    assert env_of(container)["CODEC_KEYRING_DIR"]["value"] == "/etc/codec-keys"
    assert not [d for d in render("--set", "systemCheck.enabled=false") if d["kind"] == "Pod"]
