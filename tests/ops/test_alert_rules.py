"""The alert rules: every alert has a runbook and both a firing and a quiet test case (a new
alert without them fails here).

promtool itself (`check rules`, and `test rules` over those cases) runs once, in `make test-rules`
(Makefile), which `make test` runs and which installs promtool first; it is not repeated here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "ops" / "prometheus" / "rules").glob("*.yaml"))
TESTS = sorted((REPO / "ops" / "prometheus" / "tests").glob("*.yaml"))
RUNBOOKS = REPO / "ops" / "runbooks"
ALERTS = [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("rule", ALERTS, ids=[r["alert"] for r in ALERTS])
def test_alert_has_severity_annotations_and_runbook(rule: dict) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    assert rule["annotations"]["runbook_url"] == f"ops/runbooks/{rule['alert']}.md"
    runbook = (REPO / rule["annotations"]["runbook_url"]).read_text()
    for section in ("**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Mitigation.**"):
        assert section in runbook, f"{rule['alert']} runbook lacks {section}"


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing, quiet = set(), set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in ALERTS}
    assert names - firing == set(), "alerts without a case that fires"
    assert names - quiet == set(), "alerts without a case that stays quiet"
