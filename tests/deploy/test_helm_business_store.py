"""The chart's two business stores: the embedded SQLite store (a StatefulSet of one pod, the
default) and PostgreSQL (a Deployment with replicas, a PodDisruptionBudget and a migration hook
Job), and the values schema refusing what cannot work (issue 17)."""

from __future__ import annotations

import pytest
from support.helm_chart import CHART, SKIP_WITHOUT_HELM, component_of, env_of, helm, render

pytestmark = SKIP_WITHOUT_HELM

POSTGRES = ["-f", str(CHART / "examples" / "business-postgres.yaml")]


def of(docs: list[dict], kind: str, component: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and component_of(d) == component]


def refused(*args: str) -> str:
    result = helm("template", "agents", str(CHART), *args)
    assert result.returncode != 0, f"helm template {' '.join(args)} succeeded but must fail"
    return result.stderr


def test_postgres_store_is_a_deployment_with_a_budget_and_a_migration_hook_first() -> None:
    docs = render(*POSTGRES)
    assert of(docs, "StatefulSet", "business-worker") == []
    [deployment] = of(docs, "Deployment", "business-worker")
    assert deployment["spec"]["replicas"] == 3
    [budget] = of(docs, "PodDisruptionBudget", "business-worker")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    [job] = of(docs, "Job", "business-migrate")
    hooks = job["metadata"]["annotations"]
    assert hooks["helm.sh/hook"] == "pre-install,pre-upgrade"
    [migrate] = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["python", "-m", "business", "migrate"]
    [worker] = deployment["spec"]["template"]["spec"]["containers"]
    for container in (worker, migrate):
        env = env_of(container)
        assert env["BUSINESS_STORE"]["value"] == "postgres"
        assert env["BUSINESS_DATABASE_URL"]["value"].startswith("postgresql://business@")
        assert env["BUSINESS_DATABASE_PASSWORD_FILE"]["value"] == "/etc/business-database/password"
        assert "BUSINESS_DB_PATH" not in env
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["database-password"]["readOnly"] is True
    secret = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}["database-password"]["secret"]
    assert secret["secretName"] == "business-db"
    assert env_of(worker)["BUSINESS_DATABASE_POOL_MAX"]["value"] == "8"
    # No volume claim: the pods are stateless.
    assert "volumeClaimTemplates" not in deployment["spec"]
    assert [d for d in docs if d["kind"] == "Service" and component_of(d) == "business-worker"]


def test_sqlite_store_keeps_the_single_pod_statefulset() -> None:
    docs = render()
    [sts] = of(docs, "StatefulSet", "business-worker")
    assert sts["spec"]["replicas"] == 1
    assert of(docs, "Deployment", "business-worker") == [] and of(docs, "Job", "business-migrate") == []
    assert env_of(sts["spec"]["template"]["spec"]["containers"][0])["BUSINESS_DB_PATH"]["value"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "businessWorker.replicas=2"], "replicas"),
        (["--set", "businessWorker.store=sqlite", "--set", "businessWorker.replicas=3"], "replicas"),
        (["--set", "businessWorker.store=postgres"], "database"),
        ([*POSTGRES, "--set", "businessWorker.database.existingSecret="], "existingSecret"),
        ([*POSTGRES, "--set", "businessWorker.database.url=postgresql://business:hunter2@db/business"], "url"),
        (["--set", "businessWorker.store=mysql"], "store"),
    ],
    ids=[
        "replicas-on-sqlite",
        "replicas-on-explicit-sqlite",
        "postgres-without-database",
        "no-secret",
        "password-in-url",
        "unknown-store",
    ],
)
def test_schema_refuses_what_cannot_work(args: list[str], message: str) -> None:
    error = refused(*args)
    assert "values don't meet the specifications of the schema" in error and message in error, error
