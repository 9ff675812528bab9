"""The scripted support conversation ``agent demo`` runs (and ``make demo`` will).

On the offline model it shows every pattern once: a policy answer from retrieved passages
with citations; a refund above the approval threshold that waits for a person; the approval;
the refund done exactly once (approving again is refused, and running the demo again reuses
the same idempotency key, so the business service returns the same refund); token totals.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.rule import Rule

from agent.chat.client import ChatError, Conversations
from agent.chat.render import render_approvals, render_outcome, render_reply, render_summary
from agent.support.types import ApprovalOutcome, ConversationSettings, ConversationStart, ConversationSummary

DEMO_CONVERSATION_ID = "support-demo"
POLICY_QUESTION = "How long do refunds take?"
REFUND_REQUEST = "Please refund $150 on order ORD-1004, the headphones stopped working."
# The owner of ORD-1004 in the seeded business data: the demo acts for her.
DEMO_CUSTOMER_ID = "cust-katherine"


@dataclass
class DemoResult:
    conversation_id: str
    approval_id: str
    outcome: ApprovalOutcome
    summary: ConversationSummary
    citations: list[str]


async def run_demo(
    conversations: Conversations,
    console: Console,
    *,
    conversation_id: str = DEMO_CONVERSATION_ID,
    approver: str = "demo-support-lead",
    settings: ConversationSettings | None = None,
    acting: str = "",
) -> DemoResult:
    """``acting``: how the caller's identity was established (an operator acting for the demo's
    customer)."""
    settings = settings or ConversationSettings(approval_threshold_cents=10_000, approval_timeout_s=600)

    def step(title: str) -> None:
        console.print(Rule(title, align="left"))

    # replace=True: the demo always reuses its id, which is what makes its refund key repeat.
    start = ConversationStart(
        customer="Katherine Johnson", settings=settings, customer_id=DEMO_CUSTOMER_ID, acting=acting
    )
    await conversations.start(start, conversation_id, replace=True)
    console.print(
        f"Started conversation [bold]{conversation_id}[/bold] (SupportAgentWorkflow, namespace agents); "
        f"refunds above {settings.approval_threshold_cents / 100:.2f} wait for a person."
    )

    step(f"1. customer: {POLICY_QUESTION}")
    with console.status("the agent is searching the knowledge base..."):
        answer = await conversations.send(conversation_id, POLICY_QUESTION)
    render_reply(console, conversation_id, answer)

    step(f"2. customer: {REFUND_REQUEST}")
    with console.status("the agent is looking at the order..."):
        reply = await conversations.send(conversation_id, REFUND_REQUEST)
    render_reply(console, conversation_id, reply)
    if not reply.approvals_requested:
        raise ChatError("the agent did not ask for an approval; is the model the offline simulator?", 1)
    approval_id = reply.approvals_requested[0]

    step("3. the refund waits for a person (a durable timer runs until the deadline)")
    render_approvals(console, await conversations.approvals(conversation_id))
    status = await conversations.status(conversation_id)
    console.print(f"current step: [bold]{status.phase}[/bold]; nothing has been paid.")

    step(f"4. {approver} approves {approval_id}")
    with console.status("executing the approved refund through Nexus..."):
        outcome = await conversations.decide(conversation_id, approval_id, approve=True, approver=approver, note="demo")
    render_outcome(console, outcome)

    step("5. exactly once")
    try:
        await conversations.decide(conversation_id, approval_id, approve=True, approver=approver)
    except ChatError as err:
        console.print(f"approving {approval_id} again is refused: {err.message}")
    status = await conversations.status(conversation_id)
    refunds = [a for a in status.actions if a.kind == "refund"]
    for action in refunds:
        console.print(f"{action.summary}, idempotency key [bold]{action.idempotency_key}[/bold]")
    if refunds:
        console.print(
            "The business service keeps one refund per key: running the demo again asks with the same key "
            "and gets this refund back instead of paying twice."
        )
    else:
        console.print(
            f"No refund was made ({outcome.status}): the business service refused it. Run the demo with its "
            "default id (its refund key is then already paid) or on a fresh stack."
        )

    step("6. end of the conversation")
    summary = await conversations.end(conversation_id, "demo finished")
    render_summary(console, summary)
    return DemoResult(
        conversation_id=conversation_id,
        approval_id=approval_id,
        outcome=outcome,
        summary=summary,
        citations=[c.doc_id for c in answer.citations],
    )
