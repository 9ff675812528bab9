"""What an upgrade of the chart changes, rendered before and after: only what the values asked.

A new codec-server image (or a new tag for the platform images) must leave the agent pools
byte-identical, build id included, or Kubernetes would replace their pods and strand pinned
conversations; adding an agent version must not touch the running version's pools; retiring one
must leave the platform parts (retrieval, business, codec server, blob volume) as they were; and
the routing values must name versions the release runs.
"""

from __future__ import annotations

import pytest
from support.helm_chart import CHART, SKIP_WITHOUT_HELM, env_of, helm, pod_spec, render

pytestmark = SKIP_WITHOUT_HELM

AGENT_POOLS = {"agent-worker", "llm-worker", "embed-worker"}
PLATFORM = {"retrieval-worker", "business-worker", "codec-server", "blobs"}
V1, V2 = "2026.12.01-1", "2026.12.06-1"


def component_of(doc: dict) -> str:
    """Its component, or "" for the release-wide objects (ServiceAccount, dashboards)."""
    return doc["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")


def by_name(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def agent_docs(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {k: d for k, d in by_name(docs).items() if component_of(d) in AGENT_POOLS}


def build_ids(docs: list[dict]) -> set[str]:
    return {
        env_of(pod_spec(d)["containers"][0])["TEMPORAL_WORKER_BUILD_ID"]["value"]
        for d in docs
        if d["kind"] == "Deployment" and component_of(d) in AGENT_POOLS
    }


def versions(*build_ids: str, current: str, ramp: str = "", percentage: int = 0) -> list[str]:
    args = [a for i, b in enumerate(build_ids) for a in ("--set", f"agent.versions[{i}].buildId={b}")]
    args += ["--set", f"agent.rollout.current={current}"]
    if ramp:
        args += ["--set", f"agent.rollout.ramp.buildId={ramp}", "--set", f"agent.rollout.ramp.percentage={percentage}"]
    return args


@pytest.mark.parametrize(
    "change", [["--set", "codecServer.image.tag=2026.12.07-1"], ["--set", "image.tag=2026.12.07-1"]], ids=str
)
def test_a_new_codec_server_image_leaves_the_agent_pools_untouched(change: list[str]) -> None:
    before = render(*versions(V1, current=V1))
    after = render(*versions(V1, current=V1), *change)
    assert agent_docs(before) and agent_docs(after) == agent_docs(before)
    assert build_ids(after) == build_ids(before) == {V1}
    codec = [k for k, d in by_name(after).items() if k[0] == "Deployment" and component_of(d) == "codec-server"]
    [key] = codec
    image = pod_spec(by_name(after)[key])["containers"][0]["image"]
    assert image.endswith(":2026.12.07-1") and image != pod_spec(by_name(before)[key])["containers"][0]["image"]


def test_adding_a_version_leaves_the_running_versions_pools_untouched() -> None:
    one = agent_docs(render(*versions(V1, current=V1)))
    two = agent_docs(render(*versions(V1, V2, current=V1, ramp=V2, percentage=20)))
    assert set(one) < set(two)
    assert {k: two[k] for k in one} == one, "v1's pools changed when v2 was added"
    added = [d for k, d in two.items() if k not in one and d["kind"] == "Deployment"]
    assert {component_of(d) for d in added} == AGENT_POOLS
    assert build_ids(added) == {V2}
    assert {pod_spec(d)["containers"][0]["image"].rsplit(":", 1)[1] for d in added} == {V2}


def test_retiring_a_version_removes_only_its_pools() -> None:
    both = by_name(render(*versions(V1, V2, current=V2)))
    after = by_name(render(*versions(V2, current=V2)))
    removed = {k: d for k, d in both.items() if k not in after}
    assert removed and {component_of(d) for d in removed.values()} <= AGENT_POOLS
    assert build_ids(list(removed.values())) == {V1}
    platform = {k: d for k, d in both.items() if component_of(d) in PLATFORM and k[0] != "Job"}
    assert {component_of(d) for d in platform.values()} == PLATFORM
    assert {k: after[k] for k in platform} == platform


def test_the_rollout_hooks_carry_the_routing_and_the_versions_to_keep() -> None:
    docs = render(*versions(V1, V2, current=V1, ramp=V2, percentage=20))
    jobs = {d["metadata"]["annotations"]["helm.sh/hook"]: d for d in docs if d["kind"] == "Job"}
    guard = pod_spec(jobs["pre-upgrade"])["containers"][0]["args"]
    assert guard == ["python", "-m", "rollout", "guard", "--keep", f"{V1},{V2}", "--deployment", "support-agent"]
    apply = pod_spec(jobs["post-install,post-upgrade"])["containers"][0]["args"]
    assert apply == [
        "python", "-m", "rollout", "apply", V1, "--ramp", V2, "20", "--wait", "300", "--deployment", "support-agent"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (versions(V1, V2, current=""), "agent.rollout.current must name the version new conversations go to"),
        (versions(V1, current=V2), f'agent.rollout.current "{V2}" is not in agent.versions'),
        (versions(V1, V2, current=V1, ramp="v9", percentage=5), 'agent.rollout.ramp.buildId "v9" is not in'),
        (versions(V1, V2, current=V1, ramp=V1, percentage=5), "is already current"),
        (versions(V1, V1, current=V1), f'agent.versions lists build id "{V1}" twice'),
    ],
    ids=["no-current", "current-not-running", "ramp-not-running", "ramp-is-current", "duplicate"],
)
def test_routing_to_a_version_the_release_does_not_run_is_refused(args: list[str], message: str) -> None:
    result = helm("template", "agents", str(CHART), *args)
    assert result.returncode != 0 and "kind:" not in result.stdout
    assert message in result.stderr, result.stderr
