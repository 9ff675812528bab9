"""The chart's approval portal and re-ingestion schedule (issue 19): off by default, refused
when half configured, and wired the way their processes read it."""

from __future__ import annotations

import pytest
from support.helm_chart import CHART, SKIP_WITHOUT_HELM, component_of, env_of, helm, render

pytestmark = SKIP_WITHOUT_HELM

PORTAL = ["--set", "approvalPortal.enabled=true", "--set", "approvalPortal.auth.principals.existingSecret=leads"]
SCHEDULE = ["--set", "reingestSchedule.enabled=true", "--set", "reingestSchedule.documents.existingClaim=kb-docs"]


def workloads(docs: list[dict]) -> dict[str, dict]:
    return {component_of(d): d for d in docs if d["kind"] in ("Deployment", "Job", "StatefulSet")}


def refused(*args: str) -> str:
    result = helm("template", "agents", str(CHART), *args)
    assert result.returncode != 0 and "kind:" not in result.stdout
    return result.stderr


def test_both_are_off_by_default() -> None:
    assert not {"approval-portal", "reingest-schedule"} & set(workloads(render()))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--set", "approvalPortal.enabled=true"], "needs a way to sign in"),
        ([*PORTAL, "--set", "approvalPortal.session.existingSecret="], "session.existingSecret"),
        ([*PORTAL, "--set", "approvalPortal.auth.oidc.issuer=https://idp"], "audience and approvalPortal.auth.oidc"),
        ([*PORTAL, "--set", "approvalPortal.ingress.enabled=true"], "needs tlsSecret"),
        (["--set", "reingestSchedule.enabled=true"], "needs the documents"),
        ([*SCHEDULE, "--set", "agentWorker.enabled=false"], "needs agentWorker.enabled"),
    ],
)
def test_half_configured_is_refused_in_one_sentence(args: list[str], says: str) -> None:
    assert says in refused(*args)


def test_the_portal_reads_its_secrets_from_files_and_probes_readiness() -> None:
    portal = workloads(render(*PORTAL))["approval-portal"]
    spec = portal["spec"]["template"]["spec"]
    [container] = spec["containers"]
    env = env_of(container)
    assert env["AGENT_PRINCIPALS_FILE"]["value"] == "/etc/approval-portal/principals/principals.json"
    assert env["PORTAL_SESSION_SECRET_FILE"]["value"] == "/etc/approval-portal/session/secret"
    assert env["TEMPORAL_NAMESPACE"]["value"] == "agents" and env["CODEC_KEYRING_DIR"]["value"] == "/etc/codec-keys"
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    assert secrets["session"] == "approval-portal-session" and secrets["principals"] == "leads"
    assert all(m["readOnly"] for m in container["volumeMounts"] if m["name"] != "tmp")
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert portal["spec"]["replicas"] == 2


def test_the_schedule_hook_runs_agent_schedule_create_and_the_agent_pool_reads_the_documents() -> None:
    docs = workloads(render(*SCHEDULE, "--set", "reingestSchedule.cron=0 3 * * *"))
    job = docs["reingest-schedule"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("durable-agents/agent-worker:")
    command = container["command"]
    assert command[:6] == ["python", "-m", "agent", "schedule", "create", "/srv/documents"]
    assert "--replace" in command and command[command.index("--cron") + 1] == "0 3 * * *" and "--every" not in command
    assert command[command.index("--catchup-window") + 1] == "10m"
    for component, mounted in (("reingest-schedule", True), ("agent-worker", True), ("llm-worker", False)):
        spec = docs[component]["spec"]["template"]["spec"]
        mounts = [m for c in spec["containers"] for m in c["volumeMounts"] if m["name"] == "documents"]
        assert bool(mounts) == mounted, component
        if mounted:
            assert mounts[0] == {"name": "documents", "mountPath": "/srv/documents", "readOnly": True}
            [volume] = [v for v in spec["volumes"] if v["name"] == "documents"]
            assert volume["persistentVolumeClaim"] == {"claimName": "kb-docs", "readOnly": True}


def test_network_policies_cover_the_portal_and_the_schedule_hook() -> None:
    peers = {
        "enabled": "true",
        "temporal.to[0].ipBlock.cidr": "10.20.0.0/16",
        "modelProvider.to[0].ipBlock.cidr": "203.0.113.0/24",
        "approvalPortalFrom[0].podSelector.matchLabels.app": "ingress",
    }
    docs = render(*PORTAL, *SCHEDULE, *(a for k, v in peers.items() for a in ("--set", f"networkPolicy.{k}={v}")))
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]

    def selecting(component: str) -> list[dict]:
        return [p for p in policies if component in p["spec"]["podSelector"]["matchExpressions"][0]["values"]]

    [portal] = selecting("approval-portal")
    [ingress] = portal["spec"]["ingress"]
    assert {"podSelector": {"matchLabels": {"app": "ingress"}}} in ingress["from"]
    assert ingress["ports"] == [{"port": 8405, "protocol": "TCP"}]
    cidrs = {
        peer["ipBlock"]["cidr"] for rule in portal["spec"]["egress"] for peer in rule.get("to", []) if "ipBlock" in peer
    }
    assert cidrs == {"10.20.0.0/16"}
    assert selecting("reingest-schedule")
