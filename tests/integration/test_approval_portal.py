"""The approval portal (services/approval-portal) on the test stack: a person signs in in a real
headless Chromium, sees a waiting refund with its context decrypted, clicks Approve, and the
refund is made once; two approvers deciding one approval at once get one winner, and the other
is told who decided. Orders used: ORD-1004 (USD 249.00 + 19.00; each test refunds a few dollars)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from harness import business_rows, customer_of, refunds_of
from support.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_or_skip
from temporalio.client import Client

from agent.chat.client import Conversations
from agent.identity import principals_document
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart
from devstack import portal
from devstack.secrets import write_private
from devstack.stack import Stack

THRESHOLD_CENTS = 500


def portal_url(stack: Stack) -> str:
    return portal.url(stack.config)


def lead_token(stack: Stack) -> str:
    return stack.agent_principals.operator_token_file.read_text().strip()


async def waiting_refund(client: Client, text: str) -> str:
    """A new conversation whose refund (above 5.00) waits for a person as APR-1."""
    conversations = Conversations(client)
    cid = await conversations.start(
        ConversationStart(
            settings=ConversationSettings(approval_threshold_cents=THRESHOLD_CENTS, approval_timeout_s=600),
            customer_id=customer_of(text),
        ),
        f"test-portal-{uuid.uuid4().hex[:10]}",
    )
    reply = await conversations.send(cid, text)
    assert reply.approvals_requested == ["APR-1"], reply.text
    return cid


def audit_records(stack: Stack) -> list[dict]:
    lines = (stack.config.log_dir / "portal-audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


async def test_an_approver_signs_in_sees_the_decoded_refund_and_approves_it_once(
    stack: Stack, agents_client: Client
) -> None:
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright

    reason = f"the hinge snapped {uuid.uuid4().hex[:6]}"
    cid = await waiting_refund(agents_client, f"Please refund $6 on order ORD-1004, {reason}")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            await page.goto(portal_url(stack))
            assert page.url.endswith("/login")  # no session: the sign-in page
            await page.fill("input[name=token]", lead_token(stack))
            await page.click("text=Sign in")
            row = page.locator(f'tr[data-approval="{cid}/APR-1"]')
            await row.wait_for(timeout=30_000)
            shown = await row.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "approval-portal-pending.png"), full_page=True)
            cookies = {c["name"]: c for c in await context.cookies()}
            await row.locator("textarea[name=note]").fill("receipt checked")
            await row.locator("button[value=approve]").click()
            await page.get_by_text("APR-1 approved: executed").wait_for(timeout=60_000)
            decided = await page.inner_text("body")
            await page.screenshot(path=str(ARTIFACTS / "approval-portal-approved.png"), full_page=True)
            await page.goto(portal_url(stack))
            listed_after = await page.content()
        finally:
            await browser.close()

    # The context came out of the encrypted history, decoded: order, amount, the customer's words.
    assert "ORD-1004" in shown and "6.00 USD" in shown and reason in shown, shown
    session = cookies["portal_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert not session["secure"]  # loopback only; any other host gets Secure
    assert "signed in as local-support-lead" in decided
    assert f"{cid}/APR-1" not in listed_after  # decided: no longer waiting
    [(refund_id, amount)] = business_rows(
        stack, "SELECT refund_id, amount_cents FROM refunds WHERE idempotency_key LIKE ?", f"{cid}/%"
    )
    assert amount == 600 and refund_id in decided
    # The workflow recorded the approver's identity and the note.
    summary = await Conversations(agents_client).end(cid)
    [approval] = summary.approvals
    assert approval.status == ApprovalStatus.EXECUTED
    assert (approval.decided_by, approval.note) == ("local-support-lead", "receipt checked")
    [record] = [r for r in audit_records(stack) if r["event"] == "decision" and r.get("conversation_id") == cid]
    assert record["subject"] == "local-support-lead" and record["decision"] == "approve"
    assert record["outcome"] == "executed" and record["refund_id"] == refund_id and record["note_chars"] == 15
    assert "receipt checked" not in json.dumps(record) and reason not in json.dumps(record)  # no plaintext


@pytest.fixture
def second_lead(stack: Stack) -> str:
    """A second support lead's token, added to the stack's principals (read on every sign-in)."""
    path: Path = stack.agent_principals.principals_file
    document = json.loads(path.read_text())
    token = f"second-lead-{uuid.uuid4().hex}"
    document["principals"] += principals_document([("second-lead", token, None)])["principals"]
    write_private(path, json.dumps(document, indent=2) + "\n")
    return token


async def test_two_approvers_at_once_one_wins_and_the_other_is_told_who(
    stack: Stack, agents_client: Client, second_lead: str
) -> None:
    cid = await waiting_refund(agents_client, "Please refund $7 on order ORD-1004, it arrived scratched")
    url = f"{portal_url(stack)}/api/approvals/{cid}/APR-1/decision"
    approvers = {"local-support-lead": lead_token(stack), "second-lead": second_lead}
    async with httpx.AsyncClient(timeout=90) as http:
        listed = await http.get(
            f"{portal_url(stack)}/api/approvals", headers={"authorization": f"Bearer {second_lead}"}
        )
        assert listed.status_code == 200
        assert any(a["conversation_id"] == cid and a["amount_cents"] == 700 for a in listed.json()["approvals"])
        answers = await asyncio.gather(
            *(
                http.post(
                    url,
                    json={"decision": decision, "note": f"{who} says {decision}"},
                    headers={"authorization": f"Bearer {token}"},
                )
                for (who, token), decision in zip(approvers.items(), ("approve", "reject"), strict=True)
            )
        )
    by = dict(zip(approvers, answers, strict=True))
    winners = [who for who, answer in by.items() if answer.status_code == 200]
    losers = [who for who, answer in by.items() if answer.status_code == 409]
    assert len(winners) == 1 and len(losers) == 1, {w: (a.status_code, a.text) for w, a in by.items()}
    [winner], [loser] = winners, losers
    assert by[winner].json()["decided_by"] == winner
    # The workflow's own sentence, naming who decided first.
    assert (
        f"approval APR-1 was already {'approved' if winner == 'local-support-lead' else 'rejected'} by {winner}"
        in (by[loser].json()["error"])
    )
    refunds = refunds_of(stack, cid)
    assert len(refunds) == (1 if winner == "local-support-lead" else 0)
    decisions = [r for r in audit_records(stack) if r["event"] == "decision" and r.get("conversation_id") == cid]
    assert sorted((r["subject"], r["outcome"]) for r in decisions) == sorted(
        [(winner, by[winner].json()["outcome"]), (loser, "refused")]
    )


async def test_the_portal_refuses_strangers_customers_and_forged_requests(stack: Stack, agents_client: Client) -> None:
    base = portal_url(stack)
    customer = stack.agent_principals.customer_token_file("cust-katherine").read_text().strip()
    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False) as http:
        assert (await http.get("/api/approvals")).status_code == 401
        assert (await http.get("/api/approvals", headers={"authorization": "Bearer nope"})).status_code == 401
        refused = await http.get("/api/approvals", headers={"authorization": f"Bearer {customer}"})
        assert refused.status_code == 403 and "may not decide approvals" in refused.json()["error"]
        # Sign in as a browser does: the login form's double-submit token, then the session cookie.
        await http.get("/login")
        forged_login = await http.post("/login", data={"token": lead_token(stack), "csrf": "x" * 64})
        assert forged_login.status_code == 403 and "stale or forged" in forged_login.text
        # The refused form came with a fresh one (and a fresh cookie): sign in with that.
        login_token = forged_login.text.split('name="csrf" value="')[1].split('"')[0]
        signed_in = await http.post("/login", data={"token": lead_token(stack), "csrf": login_token})
        assert signed_in.status_code == 303 and "portal_session" in http.cookies
        decide = {"conversation_id": "test-portal-none", "approval_id": "APR-1", "decision": "approve"}
        no_csrf = await http.post("/decide", data=decide)
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
        page = (await http.get("/")).text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        cross_site = await http.post("/decide", data={**decide, "csrf": csrf}, headers={"origin": "https://evil.test"})
        assert cross_site.status_code == 403 and "another site" in cross_site.text
        # With its token, the request reaches the workflow side: no such conversation.
        unknown = await http.post("/decide", data={**decide, "csrf": csrf})
        assert unknown.status_code == 404 and "there is no conversation test-portal-none" in unknown.text
        assert (await http.post("/api/approvals/x/APR-1/decision", json={"decision": "approve"})).status_code == 403
