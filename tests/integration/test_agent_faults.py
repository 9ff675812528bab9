"""Provider faults, injected into the real model server, against the real agent worker.

Every fault rule is scoped with ``match`` to the conversation's workflow id (the agent sends
``X-Request-Key: <workflow id>/<activity id>/<attempt>``), so nothing else in the session is
affected; the queue is cleared after each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from temporalio.client import Client

from agent.chat.client import Conversations
from agent.support.types import ConversationSettings, ConversationStart
from agent.testing import at, attempt_of, calls_of, eventually
from devstack.stack import Stack
from modelserver.testing import SimulatorHandle


@pytest.fixture
def sim(stack: Stack) -> Iterator[SimulatorHandle]:
    handle = SimulatorHandle(f"http://{stack.config.host}:{stack.config.ports['model_server']}")
    yield handle
    handle.clear_faults()


@pytest.fixture
def conversations(agents_client: Client) -> Conversations:
    return Conversations(agents_client)


async def start(conversations: Conversations, **settings: object) -> str:
    return await conversations.start(
        ConversationStart(settings=ConversationSettings(**settings), customer_id="cust-grace"),  # type: ignore[arg-type]
        f"test-fault-{uuid.uuid4().hex[:10]}",
    )


def attempts(sim: SimulatorHandle, cid: str) -> list[tuple[str, int, str]]:
    """(activity id, attempt, outcome) of each model call of the conversation, in order."""
    return [(*attempt_of(c), c["outcome"]) for c in calls_of(sim.ledger(), cid)]


async def test_rate_limit_is_retried_after_retry_after(sim: SimulatorHandle, conversations: Conversations) -> None:
    cid = await start(conversations)
    sim.set_faults([{"kind": "rate_limit", "retry_after": 2, "times": 1, "match": cid}])
    reply = await conversations.send(cid, "Hello")
    assert reply.error is None and "You said" in reply.text
    limited, served = calls_of(sim.ledger(), cid)
    assert (limited["outcome"], limited["fault"], served["outcome"]) == ("rate_limit_exceeded", "rate_limit", "ok")
    assert attempt_of(limited)[0] == attempt_of(served)[0]  # the same activity, retried
    assert [attempt_of(limited)[1], attempt_of(served)[1]] == [1, 2]
    # The provider's Retry-After, not the 1 s initial backoff, set the delay.
    assert at(served) - at(limited) >= timedelta(seconds=2)


async def test_server_errors_are_retried_and_an_answer_ends_the_pause(
    sim: SimulatorHandle, conversations: Conversations
) -> None:
    cid = await start(conversations, slow_down_after_attempts=3, cooldown_s=30)
    sim.set_faults([{"kind": "server_error", "status": 503, "times": 2, "match": cid}])
    reply = await conversations.send(cid, "Hello")
    assert reply.error is None
    first = attempts(sim, cid)
    assert [(n, outcome) for _, n, outcome in first] == [(1, "server_error"), (2, "server_error"), (3, "ok")]
    assert len({activity for activity, _, _ in first}) == 1

    # The third attempt was answered: the provider is back, so the next call does not wait out a
    # cool-down (before, any call that needed three attempts paused the next one for cooldown_s).
    await conversations.send(cid, "Hello again")
    calls = calls_of(sim.ledger(), cid)
    assert at(calls[-1]) - at(calls[-2]) < timedelta(seconds=10)
    status = await conversations.status(cid)
    assert status.cooldown_until is None


@pytest.mark.parametrize(
    ("kind", "error", "tells"),
    [
        ("bad_request", "model_rejected", "The language model refused this request"),
        ("context_length", "context_length", "longer than the language model can read at once"),
    ],
)
async def test_rejected_requests_are_not_retried_and_the_customer_is_told(
    sim: SimulatorHandle, conversations: Conversations, kind: str, error: str, tells: str
) -> None:
    cid = await start(conversations)
    sim.set_faults([{"kind": kind, "times": 1, "match": cid}])
    reply = await conversations.send(cid, "Where is my order ORD-1002?")
    assert reply.error == error and tells in reply.text
    [(_, attempt, outcome)] = attempts(sim, cid)  # one attempt, no retry
    assert attempt == 1 and outcome != "ok"

    # The conversation goes on, and the failed turn is not sent to the model again.
    reply = await conversations.send(cid, "Where is my order ORD-1002?")
    assert reply.error is None and 'lookup_order returned: {"order_id": "ORD-1002"' in reply.text
    status = await conversations.status(cid)
    assert status.turns == 2 and not status.ended


async def test_slow_answer_past_the_activity_timeout_is_retried(
    sim: SimulatorHandle, conversations: Conversations
) -> None:
    cid = await start(conversations, model_timeout_s=2)
    sim.set_faults([{"kind": "slow", "delay_s": 4, "times": 1, "match": cid}])
    reply = await conversations.send(cid, "Hello")
    assert reply.error is None and "You said" in reply.text

    async def both_recorded() -> bool:
        return len(calls_of(sim.ledger(), cid)) == 2

    # The simulator records the slow call when it finally answers (to nobody).
    await eventually(both_recorded, 10, "the slow call in the ledger")
    slow, retried = sorted(calls_of(sim.ledger(), cid), key=lambda c: attempt_of(c)[1])
    assert slow["fault"] == "slow" and attempt_of(slow)[1] == 1
    assert retried["fault"] is None and attempt_of(retried)[1] == 2
    assert attempt_of(slow)[0] == attempt_of(retried)[0]


async def test_model_down_past_its_retries_cools_down_once_then_tells_the_customer(
    sim: SimulatorHandle, conversations: Conversations, agents_client: Client
) -> None:
    cid = await start(conversations, model_max_attempts=2, cooldown_s=60)
    sim.set_faults([{"kind": "server_error", "status": 502, "times": 4, "match": cid}])
    reply = await conversations.send(cid, "Hello")
    assert reply.error == "model_unavailable" and "not answering right now" in reply.text
    calls = calls_of(sim.ledger(), cid)
    # Two attempts (the policy's maximum), a cool-down, two more: then give up.
    assert [attempt_of(c)[1] for c in calls] == [1, 2, 1, 2]
    # The cool-down (60 s at most) ended as soon as the provider's health answered, which it
    # does here (only this conversation's calls fail): the probe ran between the rounds.
    assert at(calls[2]) - at(calls[1]) < timedelta(seconds=20)
    history = await agents_client.get_workflow_handle(cid).fetch_history()
    probes = [
        e
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "model_health"
    ]
    assert len(probes) == 1
    # The provider is back: the conversation simply goes on.
    reply = await conversations.send(cid, "Hello")
    assert reply.error is None and reply.turn == 2
