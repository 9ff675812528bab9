"""Counting key ids per namespace, and what the report says about retiring a key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from history_fixture import EXPECTED, EXPECTED_UNENCRYPTED_LOCATIONS, build_history
from keyops_testing import KEY_A, KEY_B
from rich.console import Console

from keyops.cli import render_report
from keyops.report import NamespaceReport, Report, tally_history
from keyops.temporal import ExecutionRef

CLOSED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _ref(workflow_id: str, status: str = "COMPLETED", closed: datetime | None = CLOSED_AT) -> ExecutionRef:
    return ExecutionRef(workflow_id, f"run-{workflow_id}", "SystemCheckWorkflow", status, closed)


def test_tally_counts_payloads_per_key_id_and_where_the_plain_ones_are() -> None:
    tally = tally_history(build_history())
    assert tally.payloads == EXPECTED
    assert tally.unencrypted_locations == EXPECTED_UNENCRYPTED_LOCATIONS


def test_namespace_report_counts_workflows_per_key_and_when_references_end() -> None:
    ns = NamespaceReport("agents", retention=timedelta(days=3))
    ns.add(_ref("wf-1"), tally_history(build_history()))
    ns.add(_ref("wf-2", closed=CLOSED_AT + timedelta(hours=5)), tally_history(build_history().events[:2]))
    ns.add(_ref("wf-3", status="RUNNING", closed=None), tally_history(build_history().events[3:5]))

    assert ns.workflows == 3
    a, b = ns.keys[KEY_A], ns.keys[KEY_B]
    assert (a.payloads, a.workflows, a.open_workflows) == (5 + 4, 2, 0)
    assert (b.payloads, b.workflows, b.open_workflows) == (5 + 2, 2, 1)
    # A: no open workflow, so its last reference leaves with the newest closed history.
    assert ns.references_end_by(KEY_A) == CLOSED_AT + timedelta(hours=5) + timedelta(days=3)
    # B: a running workflow still names it; no date can be promised.
    assert ns.references_end_by(KEY_B) is None


def test_report_json_and_unreferenced_ring_keys() -> None:
    agents = NamespaceReport("agents", retention=timedelta(days=1))
    agents.add(_ref("wf-1"), tally_history(build_history()))
    business = NamespaceReport("business", retention=timedelta(days=1))
    business.add(_ref("refund-1"), tally_history(build_history().events[:1]))
    report = Report("127.0.0.1:7233", None, [agents, business], keyring_ids=frozenset({KEY_A, KEY_B, "old-key"}))

    document = json.loads(json.dumps(report.as_dict()))
    assert document["namespaces"]["agents"]["keys"][KEY_A]["payloads"] == 5
    assert document["namespaces"]["agents"]["keys"][KEY_A]["references_end_by"] == "2026-03-02T12:00:00Z"
    assert document["namespaces"]["business"]["keys"] == {
        KEY_A: {
            "payloads": 3,
            "workflows": 1,
            "open_workflows": 0,
            "last_close_time": "2026-03-01T12:00:00Z",
            "references_end_by": "2026-03-02T12:00:00Z",
        },
        "unencrypted": {
            "payloads": 2,
            "workflows": 1,
            "open_workflows": 0,
            "last_close_time": "2026-03-01T12:00:00Z",
            "references_end_by": "2026-03-02T12:00:00Z",
        },
    }
    assert document["totals"][KEY_A] == {"payloads": 8, "workflows": 2, "open_workflows": 0}
    assert document["keyring"] == {"key_ids": sorted([KEY_A, KEY_B, "old-key"]), "unreferenced": ["old-key"]}


def test_rendered_table_names_keys_and_retirable_ones() -> None:
    agents = NamespaceReport("agents", retention=timedelta(days=1))
    agents.add(_ref("wf-1"), tally_history(build_history()))
    console = Console(record=True, width=200)
    render_report(console, Report("x", None, [agents], keyring_ids=frozenset({KEY_A, KEY_B, "old-key"})))
    text = console.export_text()
    assert KEY_A in text and KEY_B in text and "unencrypted" in text
    assert "no scanned history references: old-key" in text
    assert "search_attributes.indexed_fields[]" in text
