"""The ``agent chat`` and ``agent demo`` commands, run as a person runs them (subprocesses).

Orders used here (the session shares one business database): ORD-1006 (approved 6 EUR),
ORD-1004 (the demo's 150 USD, refunded once however often the demo runs).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor

from harness import agent, ok, refunds_of

from devstack.stack import Stack
from httpkit.testing import JwksIssuer


def test_chat_commands_drive_a_conversation(stack: Stack) -> None:
    cid = ok(
        agent(
            stack,
            "chat",
            "start",
            "--customer-id",
            "cust-barbara",
            "--approval-threshold",
            "5",
            "--approval-timeout",
            "10m",
        )
    ).strip()
    assert re.fullmatch(r"support-[0-9a-f]{12}", cid)

    out = ok(agent(stack, "chat", "send", cid, "How long do refunds take?"))
    assert out.startswith("agent:") and "sources: [refund-policy] Refund policy" in out
    assert "turn 1 · sim-gpt ·" in out

    out = ok(agent(stack, "chat", "send", cid, "Please refund €6 on order ORD-1006"))
    assert f"waiting for a person: APR-1. Decide with `agent chat approve {cid} APR-1`" in out

    out = ok(agent(stack, "chat", "approvals", cid))
    assert "APR-1" in out and "refund 6.00 EUR on ORD-1006" in out and "pending" in out

    out = ok(agent(stack, "chat", "approve", cid, "APR-1", "--note", "receipt checked", "--approver", "lead-cli"))
    refund_id = re.search(r"APR-1: executed \(refund (RF-[0-9a-f]{16})\)", out)
    assert refund_id, out

    out = ok(agent(stack, "chat", "show", cid))
    assert f"Conversation {cid}" in out and "step: waiting_for_message · turns: 2" in out
    assert "tokens: 5 model call(s) (sim-gpt ×5)" in out  # 2 per message, 1 to announce the refund
    assert f"refund {refund_id.group(1)} of 6.00 EUR on ORD-1006 (approved by lead-cli)  [key {cid}/step-3]" in out
    assert "customer · turn 1" in out and "How long do refunds take?" in out

    out = ok(agent(stack, "chat", "end", cid))
    assert f"Conversation {cid} ended: ended by the customer" in out and "2 turn(s)" in out


def test_chat_errors_are_one_sentence_with_an_exit_code(stack: Stack) -> None:
    cid = ok(agent(stack, "chat", "start", "--customer-id", "cust-barbara")).strip()
    cases = {
        "unknown": (("chat", "send", "test-no-such-conversation", "Hello"), {}),
        "empty": (("chat", "send", cid, ""), {}),
        "no approval": (("chat", "reject", cid, "APR-7"), {}),
        "bad threshold": (("chat", "start", "--approval-threshold", "lots"), {}),
        "unreachable": (("chat", "show", cid), {"TEMPORAL_ADDRESS": "127.0.0.1:1", "AGENT_CLIENT_PATIENCE_S": "2"}),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        outputs = pool.map(lambda case: agent(stack, *case[0], env=case[1]), cases.values())
        results = dict(zip(cases, outputs, strict=False))

    assert (results["unknown"].returncode, results["unknown"].stdout.strip()) == (
        3,
        "agent: there is no conversation test-no-such-conversation; start one with `agent chat start`",
    )
    assert results["empty"].returncode == 4
    assert results["empty"].stdout.strip() == (
        f"agent: conversation {cid} refused this: the message is empty; type what you need help with"
    )
    assert results["no approval"].returncode == 4
    assert "has no approval 'APR-7' (pending: none is pending)" in results["no approval"].stdout
    assert results["bad threshold"].returncode == 2
    assert "'lots' is not an amount; use e.g. 100 or 100.00" in results["bad threshold"].stderr
    assert results["unreachable"].returncode == 2
    assert "cannot reach the Temporal server at 127.0.0.1:1 for 2 s" in results["unreachable"].stdout
    assert "waiting up to 2 s for the Temporal server at 127.0.0.1:1" in results["unreachable"].stderr
    ok(agent(stack, "chat", "end", cid))


def test_demo_runs_the_scripted_conversation_and_refunds_once(stack: Stack) -> None:
    demo_id = f"test-demo-{uuid.uuid4().hex[:8]}"
    first = ok(agent(stack, "demo", "--id", demo_id))
    for shown in (
        "1. customer: How long do refunds take?",
        "sources: [refund-policy] Refund policy",
        "waiting for a person: APR-1",
        "current step: waiting_for_approval: APR-1; nothing has been paid.",
        "approving APR-1 again is refused",
        f"idempotency key {demo_id}/step-3",
        "6. end of the conversation",
    ):
        assert shown in first, shown
    refund = re.search(r"APR-1: executed \(refund (RF-[0-9a-f]{16})\)", first)
    assert refund, first

    # Again, with the same conversation id: the same key, so the same refund, paid once.
    again = ok(agent(stack, "demo", "--id", demo_id))
    assert f"APR-1: executed (refund {refund.group(1)})" in again
    with sqlite3.connect(stack.config.data_dir / "business.sqlite3") as conn:
        rows = conn.execute(
            "SELECT refund_id, amount_cents, currency FROM refunds WHERE idempotency_key = ?", (f"{demo_id}/step-3",)
        ).fetchall()
    assert rows == [(refund.group(1), 15000, "USD")]


def as_customer(stack: Stack, customer_id: str) -> dict[str, str]:
    return {"AGENT_TOKEN_FILE": str(stack.agent_principals.customer_token_file(customer_id))}


def test_a_conversation_acts_only_for_its_authenticated_customer(stack: Stack) -> None:
    grace = as_customer(stack, "cust-grace")
    # A customer's own token: the conversation is hers, whatever --customer says.
    cid = ok(agent(stack, "chat", "start", "--customer", "Mallory Example", env=grace)).strip()
    out = ok(agent(stack, "chat", "send", cid, "Please look up order ORD-1001", env=grace))
    assert "lookup_order failed" in out and "ORD-1001 does not belong to customer cust-grace" in out, out
    assert "Ada" not in out and "Mechanical keyboard" not in out  # nothing of the other customer's order
    out = ok(agent(stack, "chat", "send", cid, "Please refund €5 on order ORD-1001, it arrived broken", env=grace))
    assert "does not belong to customer cust-grace" in out and '"status": "refunded"' not in out, out
    assert refunds_of(stack, cid, "refund_id") == []
    # Her own order is hers to see.
    own = ok(agent(stack, "chat", "send", cid, "Where is my order ORD-1002?", env=grace))
    assert 'lookup_order returned: {"order_id": "ORD-1002", "customer": "Grace Hopper"' in own, own
    show = ok(agent(stack, "chat", "show", cid, env=grace))
    assert "for customer cust-grace (customer cust-grace)" in show, show

    cases = {
        "no identity": (
            ("chat", "start", "--customer-id", "cust-ada"),
            {"AGENT_PRINCIPALS_FILE": "", "AGENT_TOKEN_FILE": ""},
        ),
        "unknown token": (("chat", "start"), {"AGENT_TOKEN": "not-a-known-token"}),
        "operator names no customer": (("chat", "start"), {}),
        "customer acts for another": (("chat", "start", "--customer-id", "cust-ada"), grace),
        "another customer speaks": (("chat", "send", cid, "Hello"), as_customer(stack, "cust-ada")),
        "customer decides": (("chat", "approve", cid, "APR-1"), grace),
    }
    with ThreadPoolExecutor(len(cases)) as pool:
        results = dict(zip(cases, pool.map(lambda c: agent(stack, *c[0], env=c[1]), cases.values()), strict=True))
    expected = {
        "no identity": (2, "agent: no authenticated identity: set AGENT_PRINCIPALS_FILE"),
        "unknown token": (2, "agent: the token is not one of the principals this deployment knows"),
        "operator names no customer": (2, "agent: operator local-support-lead must name the customer to act for"),
        "customer acts for another": (4, "agent: cust-grace may act only for customer cust-grace, not cust-ada"),
        "another customer speaks": (4, f"agent: cust-ada may not speak in conversation {cid}"),
        "customer decides": (4, "agent: cust-grace may not decide approvals"),
    }
    for name, (code, start) in expected.items():
        done = results[name]
        assert (done.returncode, done.stdout.startswith(start)) == (code, True), (name, done.stdout, done.stderr)


def test_an_oidc_token_starts_a_conversation_for_its_verified_customer(stack: Stack) -> None:
    issuer_url = "https://login.example.test/realms/support"
    with JwksIssuer(audience="agent-cli-test", issuer=issuer_url, subject="grace@example.com").serve() as idp:
        oidc = {
            "AGENT_OIDC_ISSUER": issuer_url,
            "AGENT_OIDC_AUDIENCE": "agent-cli-test",
            "AGENT_OIDC_JWKS_URL": idp.url,
        }
        grace = {**oidc, "AGENT_TOKEN": idp.mint(customer_id="cust-grace")}
        cid = ok(agent(stack, "chat", "start", "--customer", "Mallory Example", env=grace)).strip()
        show = ok(agent(stack, "chat", "show", cid, env=grace))
        assert f"for customer cust-grace (customer grace@example.com (OIDC {issuer_url}))" in show, show
        out = ok(agent(stack, "chat", "send", cid, "Please look up order ORD-1001", env=grace))
        assert "ORD-1001 does not belong to customer cust-grace" in out, out
        # The refusal is audited with the conversation, for people and for audit pipelines.
        out = ok(agent(stack, "chat", "refusals", cid, env=grace))
        assert f"Conversation {cid}: 1 guardrail refusal(s): other_customer ×1" in out, out
        audit = json.loads(ok(agent(stack, "chat", "refusals", cid, "--json", env=grace)))
        assert audit["totals"] == {"other_customer": 1}, audit
        assert audit["records"][0]["tool"] == "lookup_order" and "does not belong" in audit["records"][0]["detail"]
        show = ok(agent(stack, "chat", "show", cid, env=grace))
        assert f"1 guardrail refusal(s): other_customer ×1 (agent chat refusals {cid})" in show, show

        refused = {
            "expired": (
                {**oidc, "AGENT_TOKEN": idp.mint(customer_id="cust-grace", expires_in=-600)},
                ("chat", "start"),
                2,
                "agent: the bearer token has expired",
            ),
            "forged": (
                {**oidc, "AGENT_TOKEN": idp.mint(key=idp.stranger, customer_id="cust-ada")},
                ("chat", "start"),
                2,
                "agent: the bearer token signature does not verify",
            ),
            "another customer": (
                grace,
                ("chat", "start", "--customer-id", "cust-ada"),
                4,
                "agent: grace@example.com may act only for customer cust-grace, not cust-ada",
            ),
        }
        for name, (env, args, code, start) in refused.items():
            done = agent(stack, *args, env=env)
            assert (done.returncode, done.stdout.startswith(start)) == (code, True), (name, done.stdout, done.stderr)
            assert env["AGENT_TOKEN"] not in done.stdout + done.stderr  # a token is never printed
