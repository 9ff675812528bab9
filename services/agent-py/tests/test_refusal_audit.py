"""The refusal audit: one call counts and records a refusal; records are bounded, totals are not.

Workflow-side code, run here outside a workflow with its two workflow calls (the clock and the
metric) replaced; the real thing runs in tests/integration/test_agent_hostile_model.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from agent.support import audit
from agent.support.audit import REFUSALS_KEPT, RefusalLog
from agent.support.policy import Guardrail
from agent.support.types import RefusalAudit

NOW = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    rules: list[str] = []
    monkeypatch.setattr(audit, "workflow", SimpleNamespace(now=lambda: NOW))
    monkeypatch.setattr(audit, "record_guardrail_refusal", rules.append)
    return rules


def test_every_refusal_is_counted_and_recorded(counted: list[str]) -> None:
    log = RefusalLog(RefusalAudit(), run_index=2)
    log.tool_refused("lookup_order", {"result": "fine"}, None, 1, "c/step-1")  # no rule: nothing
    error = {"error": {"type": "UNKNOWN_TOOL", "message": "there is no tool named 'transfer_funds'"}}
    log.tool_refused("transfer_funds", error, Guardrail.UNKNOWN_TOOL, 1, "c/step-2")
    approval = {"status": "pending_approval", "approval_id": "APR-1", "amount": "1.00 USD", "order_id": "ORD-1002"}
    log.tool_refused("refund_order", approval, Guardrail.NOT_DELIVERED, 2, "c/step-3")
    log.record(Guardrail.TOKEN_BUDGET, "model", "6012 model tokens spent, the budget is 6000", 3)

    assert counted == ["unknown_tool", "not_delivered", "token_budget"]
    assert log.audit.totals == {"unknown_tool": 1, "not_delivered": 1, "token_budget": 1}
    unknown, person, budget = log.audit.records
    assert (unknown.detail, unknown.idempotency_key, unknown.approval_id) == (
        "there is no tool named 'transfer_funds'",
        "c/step-2",
        None,
    )
    assert person.detail == "refund 1.00 USD on ORD-1002 waits for a person (APR-1): the goods are not delivered yet"
    assert (person.approval_id, person.turn, person.run_index, person.at) == ("APR-1", 2, 2, NOW)
    assert (budget.tool, budget.idempotency_key) == ("model", None)


def test_records_are_bounded_and_totals_count_every_one(counted: list[str]) -> None:
    log = RefusalLog(RefusalAudit(totals={"bad_arguments": 7}), run_index=1)
    for n in range(REFUSALS_KEPT + 5):
        log.record(Guardrail.BAD_ARGUMENTS, "refund_order", f"attempt {n}", n)
    assert len(log.audit.records) == REFUSALS_KEPT and log.audit.records[0].detail == "attempt 5"
    assert log.audit.totals == {"bad_arguments": 7 + REFUSALS_KEPT + 5} and len(counted) == REFUSALS_KEPT + 5


def test_a_carried_audit_is_continued_in_place(counted: list[str]) -> None:
    carried = RefusalAudit(totals={"other_customer": 1})
    log = RefusalLog(carried, run_index=3)
    log.record(Guardrail.OTHER_CUSTOMER, "lookup_order", "ORD-1001 does not belong to customer cust-grace", 9)
    # The workflow's state is the carried shape: what the log records is what the next run gets.
    assert carried.totals == {"other_customer": 2} and carried.records[0].run_index == 3
