"""Outages a support conversation must ride through without acting or paying twice.

Each test reproduces one finding of the exactly-once review on a stack of its own (the Temporal
server, the agent worker and the model server are killed here, which the session stack's other
tests must never see):

- a message sent while the Temporal server restarts is answered once, and its model calls are
  paid once, although the model answered while the server was down;
- the CLI, when it gives up, says the message may or may not have been accepted and how to
  resend it, and the resend with the same id is answered without a second turn;
- a model call cut by a killed worker is retried within seconds (heartbeat), not after its
  60 s start-to-close timeout;
- after a model-server restart the conversation goes on at once, without a cool-down.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from harness import client_for, refunds_of, running_stack

from agent.chat.client import Conversations
from agent.support.types import ConversationSettings, ConversationStart
from agent.testing import began, calls_of, chat_calls_in_flight, eventually, paid_twice, start, stop
from devstack.stack import Stack
from modelserver.testing import SimulatorHandle

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("outage-stack")) as running:
        yield running


@pytest.fixture
def sim(outage_stack: Stack) -> Iterator[SimulatorHandle]:
    handle = SimulatorHandle(model_server(outage_stack))
    yield handle
    handle.clear_faults()


@pytest.fixture
async def chat(outage_stack: Stack) -> Conversations:
    return Conversations(await client_for(outage_stack, "agents"), patience_s=120)


def model_server(stack: Stack) -> str:
    return f"http://{stack.config.host}:{stack.config.ports['model_server']}"


async def new_conversation(chat: Conversations, customer_id: str = "cust-grace", **settings: object) -> str:
    """A conversation for the owner of the order it asks about (ORD-1002: Grace; ORD-1004: Katherine)."""
    cid = f"test-outage-{uuid.uuid4().hex[:10]}"
    settings = {"approval_threshold_cents": 100, **settings}
    start = ConversationStart(settings=ConversationSettings(**settings), customer_id=customer_id)  # type: ignore[arg-type]
    await chat.start(start, cid)
    return cid


async def model_call_in_flight(stack: Stack) -> None:
    async def running() -> bool:
        return await asyncio.to_thread(chat_calls_in_flight, model_server(stack)) > 0

    await eventually(running, 30, "a model call in flight")


async def test_a_message_sent_through_a_server_restart_is_answered_once_and_paid_once(
    outage_stack: Stack, chat: Conversations, sim: SimulatorHandle
) -> None:
    cid = await new_conversation(chat, "cust-katherine")
    # The model answers 4 s into the call; the server is down from about 1 s to 11 s, longer than
    # the SDK's default retries (about 6 s) for the client's update and the worker's completion.
    sim.set_faults([{"kind": "slow", "delay_s": 4, "times": 1, "match": cid, "endpoint": "chat.completions"}])
    text, message_id = "Please refund $0.50 on order ORD-1004, the case is scuffed", f"msg-{uuid.uuid4().hex}"
    sending = asyncio.create_task(chat.send(cid, text, message_id=message_id))
    await model_call_in_flight(outage_stack)
    await asyncio.to_thread(stop, outage_stack, "temporal", kill=True)
    await asyncio.sleep(10)
    await asyncio.to_thread(start, outage_stack, "temporal")
    back = time.monotonic()

    reply = await asyncio.wait_for(sending, 120)
    assert "refund_order" in reply.tools_used and reply.error is None, reply
    assert time.monotonic() - back < 50, "the turn waited for a timeout after the server came back"
    calls = calls_of(sim.ledger(), cid)
    assert paid_twice(calls) == [] and all(c["outcome"] == "ok" for c in calls), calls
    assert len(refunds_of(outage_stack, cid)) == 1

    # The customer's app resends the same message (its answer was lost, say): same answer, no new turn.
    assert await chat.send(cid, text, message_id=message_id) == reply
    status = await chat.status(cid)
    assert status.turns == 1 and len(refunds_of(outage_stack, cid)) == 1
    assert len(calls_of(sim.ledger(), cid)) == len(calls)


async def test_the_cli_says_a_message_may_have_been_accepted_and_its_resend_is_answered_once(
    outage_stack: Stack, chat: Conversations, sim: SimulatorHandle
) -> None:
    cid = await new_conversation(chat)
    sim.set_faults([{"kind": "slow", "delay_s": 3, "times": 1, "match": cid, "endpoint": "chat.completions"}])
    env = {**os.environ, **outage_stack.client_env(), "COLUMNS": "200"}
    command = [sys.executable, "-m", "agent", "chat", "send", cid, "Where is my order ORD-1002?"]
    cli = subprocess.Popen(
        command, env={**env, "AGENT_CLIENT_PATIENCE_S": "3"}, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        await model_call_in_flight(outage_stack)
        await asyncio.to_thread(stop, outage_stack, "temporal", kill=True)
        out, err = await asyncio.to_thread(cli.communicate, timeout=60)
    finally:
        cli.kill()
        await asyncio.to_thread(start, outage_stack, "temporal")
    assert cli.returncode == 2, out + err
    said = re.search(
        r"request (msg-[0-9a-f]{32}) may or may not have been accepted; resending it with the same "
        r"id is safe",
        out,
    )
    assert said, out
    assert f"to resend: the same command with --message-id {said.group(1)}" in out
    assert f"--message-id {said.group(1)}" in err  # printed before anything was sent
    # Only this command's own lines: no SDK core log lines, no colour codes.
    assert "WARN" not in err and "\x1b[" not in err, err
    assert "Traceback" not in out + err

    resent = subprocess.run(
        [*command, "--message-id", said.group(1)], env=env, capture_output=True, text=True, timeout=150
    )
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert 'lookup_order returned: {"order_id": "ORD-1002"' in resent.stdout
    status = await chat.status(cid)
    assert status.turns == 1, "the resent message was processed as a second message"
    assert paid_twice(calls_of(sim.ledger(), cid)) == []


async def test_a_model_call_cut_by_a_killed_worker_is_retried_within_seconds(
    outage_stack: Stack, chat: Conversations, sim: SimulatorHandle
) -> None:
    cid = await new_conversation(chat, model_timeout_s=60)
    sim.set_faults([{"kind": "slow", "delay_s": 30, "times": 1, "match": cid, "endpoint": "chat.completions"}])
    sending = asyncio.create_task(chat.send(cid, "Hello"))
    await model_call_in_flight(outage_stack)
    killed = datetime.now(UTC)
    await asyncio.to_thread(stop, outage_stack, "agent-worker", kill=True)
    await asyncio.to_thread(start, outage_stack, "agent-worker")
    reply = await asyncio.wait_for(sending, 120)
    assert reply.error is None and "You said" in reply.text

    async def both_recorded() -> bool:
        return len(calls_of(sim.ledger(), cid)) == 2

    await eventually(both_recorded, 40, "the cut call in the ledger")  # answered to nobody at 30 s
    retried = next(c for c in calls_of(sim.ledger(), cid) if c["fault"] is None)
    # Noticed after the 10 s heartbeat timeout (plus the worker's restart), not after 60 s.
    assert began(retried) - killed < timedelta(seconds=30), (began(retried), killed)


async def test_after_a_model_server_restart_the_conversation_goes_on_without_a_pause(
    outage_stack: Stack, chat: Conversations, sim: SimulatorHandle
) -> None:
    cid = await new_conversation(chat, cooldown_s=30)
    await asyncio.to_thread(stop, outage_stack, "model-server", kill=True)
    sending = asyncio.create_task(chat.send(cid, "Where is my order ORD-1002?"))
    await asyncio.sleep(8)
    await asyncio.to_thread(start, outage_stack, "model-server")
    reply = await asyncio.wait_for(sending, 120)
    assert reply.error is None and "lookup_order" in reply.tools_used, reply
    # Two model calls in the turn (the tool call, then the answer). The first needed several
    # attempts while the server was down; once it was answered, the second followed at once
    # (before, a call that needed 3 attempts paused the next one for the 30 s cool-down).
    first, second = sorted(calls_of(sim.ledger(), cid), key=began)
    assert first["outcome"] == second["outcome"] == "ok"
    assert began(second) - began(first) < timedelta(seconds=10), (first, second)


def test_restarted_processes_left_the_stack_whole(outage_stack: Stack) -> None:
    down = [s.name for s in outage_stack.status() if s.running is None]
    assert down == [], f"processes not running after the outages: {down}"
