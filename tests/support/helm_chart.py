"""Rendering deploy/helm/durable-agents with the real helm binary, for the chart's tests.

``make helm`` builds helm into ``.tools/bin``; without it the chart's tests are skipped with
:data:`SKIP_WITHOUT_HELM`'s reason.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "durable-agents"
HELM = REPO / ".tools" / "bin" / "helm"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
# Kinds that run pods: a Pod is the `helm test` hook.
WORKLOADS = {"Deployment", "StatefulSet", "Job", "Pod"}
# The image each component of the chart runs, by the Dockerfile it is built from (relative to the
# repository root, the build context of every image).
COMPONENT_DOCKERFILES = {
    "agent-worker": "services/agent-py/Dockerfile",
    "llm-worker": "services/agent-py/Dockerfile",
    "embed-worker": "services/agent-py/Dockerfile",
    "business-worker": "services/business-py/Dockerfile",
    "business-migrate": "services/business-py/Dockerfile",
    "retrieval-worker": "services/retrieval-go/Dockerfile",
    "retrieval-migrate": "services/retrieval-go/Dockerfile",
    "codec-server": "codec-server/server/Dockerfile",
    "model-server": "services/model-server/Dockerfile",
    "approval-portal": "services/approval-portal/Dockerfile",
    "reingest-schedule": "services/agent-py/Dockerfile",
    "mcp-server": "services/mcp-server/Dockerfile",
    # The rollout hook Jobs and the `helm test` Pod run the agent image's rollout and agent CLIs.
    "rollout": "services/agent-py/Dockerfile",
    "system-check": "services/agent-py/Dockerfile",
}

# Components the default values do not render: the migration Jobs (a PostgreSQL store or backend
# only: test_helm_business_store.py, test_helm_chart.py) and the opt-in approval portal and
# re-ingestion schedule hook (test_helm_portal_and_schedule.py).
OFF_BY_DEFAULT = frozenset({"business-migrate", "retrieval-migrate", "approval-portal", "reingest-schedule"})

SKIP_WITHOUT_HELM = pytest.mark.skipif(
    not HELM.exists(), reason=f"helm is not built ({HELM} is missing); run `make helm` (a few minutes, once)"
)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120, cwd=REPO)


def render_text(*args: str) -> str:
    result = helm("template", "agents", str(CHART), "--namespace", "durable-agents", *args)
    assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def render(*args: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render_text(*args)) if doc]


def pod_spec(doc: dict) -> dict:
    """The pod spec of a workload: a Pod's own, else its template's."""
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def pod_specs(docs: list[dict]) -> Iterator[tuple[str, dict]]:
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", pod_spec(doc)


def containers(docs: list[dict]) -> Iterator[tuple[str, dict, dict]]:
    for name, spec in pod_specs(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{name}/{container['name']}", container, spec


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def component_of(doc: dict) -> str:
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]
