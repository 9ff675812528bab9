"""The agent loop of SupportAgentWorkflow: the model picks tools, their results (failures
included) go back to it, and every message gets one answer."""

from __future__ import annotations

import json

from agent_doubles import Agents, raw_call, say, use

from agent.support.policy import Guardrail
from agent.support.replies import TOO_MANY_ROUNDS
from nexus_contracts.retrieval import IndexDocument


def _tool_results(agents: Agents) -> list[dict[str, object]]:
    """What the tools answered, as the model was shown it in its last request."""
    last = agents.model.requests[-1]
    return [json.loads(m.content or "{}") for m in last.messages if m.role == "tool"]


async def test_a_search_answers_with_the_documents_it_cites(agents: Agents) -> None:
    agents.retrieval.collections["kb"] = {
        "returns#0": IndexDocument(
            "returns#0", 1, "Returns policy", "items may be returned within 30 days", {"source_id": "returns"}
        )
    }
    agents.model.script += [use("search_knowledge", query="returned within days"), say("Within 30 days.")]
    cid = await agents.start()

    reply = await agents.conversations.send(cid, "How long do I have to return an item?")

    assert reply.text == "Within 30 days."
    assert reply.tools_used == ["search_knowledge"]
    assert [c.doc_id for c in reply.citations] == ["returns"]
    assert _tool_results(agents)[0]["hits"][0]["doc_id"] == "returns"
    # The system prompt leads every request, and the tools offered are the support tools.
    first = agents.model.requests[0]
    assert first.messages[0].role == "system"
    assert {t["function"]["name"] for t in first.tools} >= {"search_knowledge", "refund_order"}


async def test_a_small_refund_is_made_once_with_the_conversations_key(agents: Agents) -> None:
    before = len(agents.refunds_of("ORD-1005"))
    agents.model.script += [
        use("refund_order", order_id="ORD-1005", amount_cents=500, reason="scratched"),
        say("Refunded 5.00 EUR."),
    ]
    cid = await agents.start("cust-edsger")

    reply = await agents.conversations.send(cid, "Please refund 5 EUR on order ORD-1005, it arrived scratched")

    refunds = agents.refunds_of("ORD-1005")[before:]
    assert [r.amount_cents for r in refunds] == [500]
    assert refunds[0].idempotency_key.startswith(cid)
    status = await agents.conversations.status(cid)
    assert [a.kind for a in status.actions] == ["refund"]
    assert reply.tools_used == ["refund_order"]


async def test_tool_failures_are_answers_the_model_reads(agents: Agents) -> None:
    agents.model.script += [
        use("lookup_order", order_id="ORD-9999"),
        use("no_such_tool"),
        raw_call("lookup_order", "{not json"),
        say("I could not find that order."),
    ]
    cid = await agents.start()

    # Temporal's test server retries a Nexus NOT_FOUND until the operation's timeout although the
    # handler marks it non-retryable (a real server answers at once; tests/integration show it), so
    # that timeout is skipped here rather than waited for.
    async with agents.time_passing():
        reply = await agents.conversations.send(cid, "Where is order ORD-9999?")

    errors = [r["error"]["type"] for r in _tool_results(agents)]
    assert errors == ["NOT_FOUND", "UNKNOWN_TOOL", "INVALID_ARGUMENTS"]
    assert reply.text == "I could not find that order."
    assert reply.error is None


async def test_another_customers_order_is_refused_and_nothing_is_refunded(agents: Agents) -> None:
    before = len(agents.refunds_of("ORD-1001"))
    agents.model.script += [
        use("lookup_order", order_id="ORD-1001"),
        use("refund_order", order_id="ORD-1001", amount_cents=500, reason="broken"),
        say("I cannot help with that order."),
    ]
    cid = await agents.start("cust-grace")

    await agents.conversations.send(cid, "Please refund 5 EUR on order ORD-1001, it arrived broken")

    results = _tool_results(agents)
    assert [r["error"]["type"] for r in results] == ["UNAUTHORIZED", "UNAUTHORIZED"]
    assert "Ada" not in json.dumps(results)
    assert agents.refunds_of("ORD-1001")[before:] == []
    assert ("get_order", "cust-grace", "ORD-1001") in {
        (r["operation"], r["customer_id"], r["target"]) for r in agents.business.refusals()
    }


async def test_a_refund_above_the_order_total_is_refused_before_the_business_service(agents: Agents) -> None:
    agents.model.script += [
        use("refund_order", order_id="ORD-1005", amount_cents=999_999, reason="broken"),
        say("That is more than the order."),
    ]
    cid = await agents.start("cust-edsger")

    await agents.conversations.send(cid, "Refund order ORD-1005 please, it is broken")

    (result,) = _tool_results(agents)
    assert result["error"]["type"] == "BAD_REQUEST"
    assert "order total" in result["error"]["message"]
    status = await agents.conversations.status(cid)
    assert [(r.rule, r.tool) for r in status.refusals.records] == [(Guardrail.ABOVE_REMAINING, "refund_order")]


async def test_a_model_that_keeps_calling_tools_still_answers(agents: Agents) -> None:
    agents.model.then = lambda _: use("lookup_order", order_id="ORD-1001")
    cid = await agents.start(max_tool_rounds=3)

    reply = await agents.conversations.send(cid, "Where is order ORD-1001?")

    # Two rounds of tools, then the last round may not call one: the model is asked without tools.
    assert [r.tool_choice for r in agents.model.requests] == ["auto", "auto", "none"]
    assert reply.text == TOO_MANY_ROUNDS
