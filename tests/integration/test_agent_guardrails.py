"""Rules held in code whatever the model asks: refunds within the order's remaining amount and
the conversation's cap, a person for an order not yet delivered, another customer's order never
touched, and a token budget after which a person takes over. Each refusal is counted by rule."""

from __future__ import annotations

import uuid

from harness import counted_since, guardrail_counts, refunds_of
from temporalio.client import Client

from agent.chat.client import Conversations
from agent.support.types import ConversationSettings, ConversationStart
from agent.testing import calls_of, ledger
from devstack.stack import Stack


async def start(chat: Conversations, customer_id: str, **settings: object) -> str:
    cid = f"test-guard-{uuid.uuid4().hex[:10]}"
    config = ConversationSettings(**settings)  # type: ignore[arg-type]
    await chat.start(ConversationStart(settings=config, customer_id=customer_id), cid)
    return cid


async def test_refunds_stay_within_the_order_and_the_conversations_cap(stack: Stack, agents_client: Client) -> None:
    chat = Conversations(agents_client)
    before = guardrail_counts(stack)
    # ORD-1005 is Edsger's (delivered, €67). No approvals here: only the rules in code.
    # One turn per run: the cap and the refusal audit hold across continue-as-new.
    cid = await start(
        chat,
        "cust-edsger",
        approval_threshold_cents=1_000_000,
        max_refund_cents_per_conversation=1000,
        max_turns_per_run=1,
    )
    first = await chat.send(cid, "Please refund €6 on order ORD-1005")
    assert '"status": "refunded"' in first.text, first.text
    capped = await chat.send(cid, "Please refund €6 on order ORD-1005")
    assert "this conversation has reached the refunds it may make" in capped.text, capped.text
    above = await chat.send(cid, "Please refund €500 on order ORD-1005")
    assert "the order total is 67.00 EUR" in above.text, above.text
    assert refunds_of(stack, cid, "amount_cents") == [600]
    # Another customer's order: refused below the model, counted.
    other = await chat.send(cid, "Please refund €1 on order ORD-1001")
    assert "ORD-1001 does not belong to customer cust-edsger" in other.text, other.text
    assert refunds_of(stack, cid, "amount_cents") == [600]

    # ORD-1006 is Barbara's and only shipped: even €1, under any threshold, waits for a person.
    shipped = await start(chat, "cust-barbara", approval_threshold_cents=1_000_000)
    reply = await chat.send(shipped, "Please refund €1 on order ORD-1006")
    assert reply.approvals_requested == ["APR-1"] and refunds_of(stack, shipped, "amount_cents") == []

    counted = counted_since(stack, before)
    # The simulator asks for the refund and, for ORD-1001, looks the order up too: both refused.
    assert counted == {"conversation_refund_cap": 1, "above_remaining": 1, "other_customer": 2, "not_delivered": 1}, (
        counted
    )
    # Counted and audited alike: each conversation lists the refusals it made.
    edsger = (await chat.status(cid)).refusals
    assert edsger.totals == {"conversation_refund_cap": 1, "above_remaining": 1, "other_customer": 2}
    assert [(r.rule, r.run_index) for r in edsger.records] == [
        ("conversation_refund_cap", 1),
        ("above_remaining", 2),
        ("other_customer", 3),
        ("other_customer", 3),
    ], edsger.records
    (barbara,) = (await chat.status(shipped)).refusals.records
    assert (barbara.rule, barbara.tool, barbara.approval_id) == ("not_delivered", "refund_order", "APR-1")
    assert barbara.detail == "refund 1.00 EUR on ORD-1006 waits for a person (APR-1): the goods are not delivered yet"


async def test_past_its_token_budget_a_conversation_goes_to_a_person(stack: Stack, agents_client: Client) -> None:
    chat = Conversations(agents_client)
    cid = await start(chat, "cust-ada", max_conversation_tokens=1)
    assert (await chat.send(cid, "Hello")).error is None  # the first call is within the budget
    model = stack.config.model_server_url.removesuffix("/v1")
    paid = len(calls_of(ledger(model), cid))
    reply = await chat.send(cid, "Hello again")
    assert reply.error == "budget_spent" and "a person takes it over from here: ticket TCK-" in reply.text, reply
    assert len(calls_of(ledger(model), cid)) == paid, "the model was called past the budget"
    status = await chat.status(cid)
    assert [a.kind for a in status.actions] == ["ticket"]
    assert status.usage.total_tokens == sum(c["usage"]["total_tokens"] for c in calls_of(ledger(model), cid))
    again = await chat.send(cid, "Anyone there?")
    assert again.error == "budget_spent" and (await chat.status(cid)).actions == status.actions  # one ticket
