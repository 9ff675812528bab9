"""Long conversations continue as new, keep their state, and keep every run's history small.

Order used here (the session shares one business database): ORD-1002 (approved 20 USD).
"""

from __future__ import annotations

import json
import uuid

from temporalio.client import Client, WorkflowExecutionStatus

from agent.blobs.types import BlobRef
from agent.chat.client import Conversations
from agent.support.types import ApprovalStatus, ConversationSettings, ConversationStart
from agent.testing import blob_store, calls_of, paid_twice
from devstack.stack import Stack
from modelserver.testing import SimulatorHandle

EVENT_BUDGET = 100
# One turn adds a bounded number of events (here: at most 2 model calls and 2 Nexus calls,
# each with its workflow tasks, plus the update); the budget is checked between turns.
ONE_TURN_AT_MOST = 60


async def test_long_conversation_rolls_over_and_keeps_its_state(stack: Stack, agents_client: Client) -> None:
    conversations = Conversations(agents_client)
    cid = f"test-long-{uuid.uuid4().hex[:10]}"
    settings = ConversationSettings(approval_threshold_cents=1000, max_history_events=EVENT_BUDGET)
    await conversations.start(ConversationStart(customer="long", settings=settings, customer_id="cust-grace"), cid)

    first = await conversations.send(cid, "Please refund $20 on order ORD-1002, the dock is broken")
    assert first.approvals_requested == ["APR-1"]
    messages = ["How long do refunds take?", "Where is my order ORD-1002?", "Hello", "Can I cancel an order?"] * 3
    for text in messages:
        reply = await conversations.send(cid, text)
        assert reply.error is None

    status = await conversations.status(cid)
    assert status.run_index >= 2, "the conversation should have continued as new at least twice"
    assert status.turns == 1 + len(messages)
    # The pending approval crossed every run, with its key from the first run's step counter.
    [pending] = status.pending_approvals
    assert (pending.approval_id, pending.idempotency_key) == ("APR-1", f"{cid}/step-2")
    # Token totals span all runs: they match the simulator's ledger exactly.
    sim = SimulatorHandle(f"http://{stack.config.host}:{stack.config.ports['model_server']}")
    calls = calls_of(sim.ledger(), cid)
    assert status.usage.model_calls == len(calls)
    assert status.usage.total_tokens == sum(c["usage"]["total_tokens"] for c in calls)
    assert paid_twice(calls) == []
    # The summary of earlier turns names what happened, and the step counter carried on.
    transcript = await conversations.transcript(cid)
    assert "Waiting for a person's approval: APR-1" in transcript.summary
    assert transcript.summary.startswith("Summary of the ")
    assert '"Can I cancel an order?"' in transcript.summary
    assert transcript.archive is not None and transcript.archived_entries > 0

    # Approve in the latest run: the refund is made once, under the key of the first run.
    outcome = await conversations.decide(cid, "APR-1", approve=True, approver="lead-ana")
    assert outcome.status == ApprovalStatus.EXECUTED
    status = await conversations.status(cid)
    assert [a.idempotency_key for a in status.actions if a.kind == "refund"] == [f"{cid}/step-2"]

    # Every closed run stayed under the budget plus one turn, and continued as new.
    runs = [r async for r in agents_client.list_workflows(f"WorkflowId = '{cid}'")]
    closed = [r for r in runs if r.status == WorkflowExecutionStatus.CONTINUED_AS_NEW]
    assert len(closed) == status.run_index and len(runs) == status.run_index + 1
    for run in runs:
        history = await agents_client.get_workflow_handle(cid, run_id=run.run_id).fetch_history()
        assert len(history.events) < EVENT_BUDGET + ONE_TURN_AT_MOST, (run.run_id, len(history.events))

    # The full transcript is in the blob store, one archive per run, chained.
    store = blob_store(stack, agents_client)
    chain, uri = [], transcript.archive.uri
    while uri:
        document = json.loads(await store.get(BlobRef(uri=uri, size=0)))
        chain.append(document)
        uri = document["previous"]
    assert [d["run_index"] for d in chain] == list(range(status.run_index - 1, -1, -1))
    archived = [e["text"] for d in reversed(chain) for e in d["entries"] if e["role"] == "user"]
    assert archived[0].startswith("Please refund $20 on order ORD-1002")
