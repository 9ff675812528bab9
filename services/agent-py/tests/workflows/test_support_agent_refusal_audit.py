"""Guardrail refusals the hostile model of the integration tests does not make (a refund in
another currency, a second refund of one message), each audited with its conversation."""

from __future__ import annotations

from agent_doubles import Agents, say, use


async def test_a_wrong_currency_and_a_burst_are_refused_and_audited(agents: Agents) -> None:
    before = len(agents.refunds_of("ORD-1005"))  # Edsger's, delivered, paid in EUR
    agents.model.script += [
        use("refund_order", order_id="ORD-1005", amount_cents=100, currency="USD"),
        use("refund_order", order_id="ORD-1005", amount_cents=100, reason="scratched"),
        use("refund_order", order_id="ORD-1005", amount_cents=100, reason="and again"),
        say("Refunded 1.00 EUR; a second refund waits for a person."),
    ]
    cid = await agents.start("cust-edsger")

    reply = await agents.conversations.send(cid, "Please refund 1 EUR on order ORD-1005, it arrived scratched")

    assert [r.amount_cents for r in agents.refunds_of("ORD-1005")[before:]] == [100]  # the first, asked for
    assert reply.approvals_requested == ["APR-1"]
    audit = (await agents.conversations.status(cid)).refusals
    assert audit.totals == {"wrong_currency": 1, "refund_burst": 1}
    currency, burst = audit.records
    assert currency.detail == "order ORD-1005 was paid in EUR; a refund is in EUR, not USD"
    assert (burst.approval_id, burst.turn, burst.idempotency_key) == ("APR-1", 1, f"{cid}/step-3")
    assert burst.detail.endswith("waits for a person (APR-1): a refund was already paid for this message")
