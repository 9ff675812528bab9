"""The Grafana dashboards: rendered from ops/grafana/render.py, datasource variable everywhere,
unique panel ids, every panel has queries, sidecar ConfigMaps are valid YAML."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "ops" / "grafana" / "dashboards"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))

spec = importlib.util.spec_from_file_location("grafana_render", REPO / "ops" / "grafana" / "render.py")
render = importlib.util.module_from_spec(spec)
# dataclasses look their module up in sys.modules.
sys.modules[spec.name] = render
spec.loader.exec_module(render)


def test_json_matches_the_renderer() -> None:
    on_disk = {p.name: p.read_text() for p in DASHBOARDS}
    assert on_disk == render.rendered(), "run `.venv/bin/python ops/grafana/render.py` after editing it"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_dashboard_model(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in dashboard["panels"]:
        assert panel["targets"], f"{panel['title']} has no queries"
        assert panel["fieldConfig"]["defaults"]["unit"], f"{panel['title']} has no unit"
        for holder in (panel, *panel["targets"]):
            assert holder["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["legendFormat"], panel["title"]


def datasource_uids(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["datasource"]["uid"]] if isinstance(node.get("datasource"), dict) else []
        return found + [uid for value in node.values() for uid in datasource_uids(value)]
    if isinstance(node, list):
        return [uid for item in node for uid in datasource_uids(item)]
    return []


def test_no_hard_coded_datasource_uid() -> None:
    for path in DASHBOARDS:
        assert set(datasource_uids(json.loads(path.read_text()))) == {"${datasource}"}, path.name


def test_sidecar_configmaps() -> None:
    for path in DASHBOARDS:
        manifest = yaml.safe_load(render.configmap(path.name, path.read_text()))
        assert manifest["metadata"]["labels"] == {"grafana_dashboard": "1"}
        assert json.loads(manifest["data"][path.name]) == json.loads(path.read_text())


SERIES = re.compile(r"\b(?:temporal|agent|business|retrieval|codec|nexus)_[a-z0-9_]+(\{[^}]*\})?(?=\s*[\[)])")


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_every_query_is_narrowed_by_the_dashboard_variables(path: Path) -> None:
    """Data source, job, Temporal namespace, task queue and build id are variables, and every
    series selector of every query carries their matchers (the SDK's two on temporal_* series)."""
    dashboard = json.loads(path.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "job", "namespace", "task_queue", "build_id"}
    for name in ("job", "namespace", "task_queue", "build_id"):
        assert variables[name]["allValue"] == ".*" and variables[name]["includeAll"], name
        assert variables[name]["definition"].startswith("label_values("), name
    selectors = 0
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert not re.search(r"\b(?:by|without)\s*\([^)]*\{", target["expr"]), target["expr"]
            for match in SERIES.finditer(re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", target["expr"])):
                selector = match.group(1) or ""
                selectors += 1
                assert 'job=~"$job"' in selector and 'build_id=~"$build_id"' in selector, target["expr"]
                if match.group(0).startswith("temporal_"):
                    assert 'namespace=~"$namespace"' in selector and 'task_queue=~"$task_queue"' in selector
    assert selectors >= len(dashboard["panels"])


def test_the_rollout_dashboard_compares_versions_by_build_id() -> None:
    dashboard = json.loads((DASHBOARD_DIR / "rollout.json").read_text())
    titles = {p["title"]: p for p in dashboard["panels"]}
    for wanted in ("Workflows completed per build id", "Workflow failure ratio per build id"):
        assert wanted in titles
    assert any("latency" in t.lower() for t in titles)
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert re.search(r"by \((le, )?build_id\b", target["expr"]), panel["title"]
            assert "{{build_id}}" in target["legendFormat"], panel["title"]
