"""The support agent as an MCP client: tools of external MCP servers, discovered and called in
activities, against the small MCP server the project ships for tests (``mcpserver.testing``),
a real process over streamable HTTP.

Integration tier (it starts that server); the workflows run as the other workflow tests do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_doubles import Agents, say, use
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer, Worker

from agent.external.activities import ExternalToolActivities
from agent.external.config import ServerConfig
from agent.external.types import DiscoverRequest, ExternalCall, McpErrorType
from agent.queues import MCP_TASK_QUEUE
from agent.worker import WORKFLOWS


@dataclass
class ParcelServer:
    url: str
    ledger: Path
    token_file: Path
    process: subprocess.Popen[bytes]

    def calls(self) -> list[dict[str, str]]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines()]


def start_parcel_server(directory: Path) -> ParcelServer:
    directory.mkdir(parents=True, exist_ok=True)
    token_file = directory / "token"
    token_file.write_text("parcel-test-token\n")
    env = {**os.environ, "MCP_TEST_LEDGER": str(directory / "ledger.jsonl"), "MCP_TEST_TOKEN": "parcel-test-token"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mcpserver.testing", "--port", "0", "--log-level", "warning"],
        env=env,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    url = process.stderr.readline().decode().strip()
    assert url.startswith("http://"), url
    return ParcelServer(url, directory / "ledger.jsonl", token_file, process)


def running_parcel_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[ParcelServer]:
    server = start_parcel_server(tmp_path_factory.mktemp(name))
    yield server
    server.process.kill()
    server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def parcels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParcelServer]:
    yield from running_parcel_server(tmp_path_factory, "parcels")


@pytest.fixture(scope="module")
def doomed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParcelServer]:
    """A second server, which a test stops between discovery and the call."""
    yield from running_parcel_server(tmp_path_factory, "doomed")


def servers(parcels: ParcelServer, tmp: Path, doomed: ParcelServer | None = None) -> dict[str, ServerConfig]:
    wrong = tmp / "wrong-token"
    wrong.write_text("not-the-token\n")
    return {
        "parcels": ServerConfig("parcels", parcels.url, parcels.token_file),
        "parcels-wrong-token": ServerConfig("parcels-wrong-token", parcels.url, wrong),
        # Nothing listens on port 9 (discard) here: connection refused.
        "down": ServerConfig("down", "http://127.0.0.1:9/mcp"),
        **({"doomed": ServerConfig("doomed", doomed.url, doomed.token_file)} if doomed else {}),
    }


@pytest.fixture
async def external_worker(
    agents: Agents, parcels: ParcelServer, doomed: ParcelServer, tmp_path: Path
) -> AsyncIterator[None]:
    activities = ExternalToolActivities(servers(parcels, tmp_path, doomed))
    async with Worker(agents.env.client, task_queue=MCP_TASK_QUEUE, activities=[activities.discover, activities.call]):
        yield


def tool_results(agents: Agents) -> list[dict[str, object]]:
    last = agents.model.requests[-1]
    return [json.loads(m.content or "{}") for m in last.messages if m.role == "tool"]


async def history_of(agents: Agents, cid: str) -> WorkflowHistory:
    return await agents.env.client.get_workflow_handle(cid).fetch_history()


def activity_types(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


async def test_an_external_tool_is_discovered_called_once_and_replayed_from_history(
    agents: Agents, parcels: ParcelServer, external_worker: None
) -> None:
    before = len(parcels.calls())
    agents.model.script += [use("parcels__track_parcel", tracking_id="PCL-7"), say("It is in transit, at Leeds.")]
    cid = await agents.start(mcp_servers=["parcels"])

    reply = await agents.conversations.send(cid, "Where is my parcel PCL-7?")

    assert reply.text == "It is in transit, at Leeds." and reply.tools_used == ["parcels__track_parcel"]
    offered = {t["function"]["name"] for t in agents.model.requests[0].tools}
    assert {"parcels__track_parcel", "parcels__weigh_parcel", "refund_order"} <= offered
    assert tool_results(agents)[0]["result"]["status"] == "in transit"
    assert parcels.calls()[before:] == [{"tool": "track_parcel", "tracking_id": "PCL-7"}]

    history = await history_of(agents, cid)
    assert activity_types(history).count("discover_mcp_tools") == 1
    assert activity_types(history).count("call_mcp_tool") == 1
    # A replay of the recorded history reads the tool list and the result from it: it passes
    # (no nondeterminism) and the external server sees no second call.
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    assert len(parcels.calls()) == before + 1


async def test_a_tools_own_error_is_an_answer_the_model_reads_and_not_retried(
    agents: Agents, external_worker: None
) -> None:
    agents.model.script += [use("parcels__weigh_parcel", tracking_id="PCL-7"), say("The scale is broken.")]
    cid = await agents.start(mcp_servers=["parcels"])

    await agents.conversations.send(cid, "How heavy is PCL-7?")

    error = tool_results(agents)[0]["error"]
    assert error["type"] == "TOOL_ERROR" and "scale at the depot is broken" in error["message"]
    history = await history_of(agents, cid)
    calls = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(calls) == 1  # one attempt: the tool answered


async def test_a_server_gone_after_discovery_is_retried_then_reported_unavailable(
    agents: Agents, doomed: ParcelServer, external_worker: None
) -> None:
    cid = await agents.start(mcp_servers=["doomed"], mcp_tool_max_attempts=2)
    # Discovery ran at the start of the run; the server dies before the model calls its tool.
    history = await history_of(agents, cid)
    while "discover_mcp_tools" not in activity_types(history) or not any(
        e.HasField("activity_task_completed_event_attributes") for e in history.events
    ):
        history = await history_of(agents, cid)
    doomed.process.kill()
    doomed.process.wait(timeout=10)
    agents.model.script += [use("doomed__track_parcel", tracking_id="PCL-9"), say("The tracking service is down.")]

    await agents.conversations.send(cid, "Where is PCL-9?")

    error = tool_results(agents)[0]["error"]
    assert error == {"type": "UNAVAILABLE", "message": "the doomed service did not answer; try again later"}
    history = await history_of(agents, cid)
    failures = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    assert len(failures) == 1  # the last of 2 attempts (the first is retried by the server)
    cause = failures[0].activity_task_failed_event_attributes.failure
    assert cause.application_failure_info.type == McpErrorType.TRANSPORT


async def test_a_server_that_cannot_be_had_leaves_the_agents_own_tools(agents: Agents, external_worker: None) -> None:
    agents.model.script += [say("Hello.")]
    cid = await agents.start(mcp_servers=["down", "parcels-wrong-token"])

    await agents.conversations.send(cid, "Hello")

    offered = {t["function"]["name"] for t in agents.model.requests[0].tools}
    assert offered == {"search_knowledge", "lookup_order", "refund_order", "escalate_to_human", "lookup_ticket"}


async def test_a_conversation_without_external_servers_records_no_discovery(agents: Agents) -> None:
    agents.model.script += [say("Hello.")]
    cid = await agents.start()

    await agents.conversations.send(cid, "Hello")

    history = await history_of(agents, cid)
    assert "discover_mcp_tools" not in activity_types(history)
    markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    assert not any(b"external-mcp-tools" in e.SerializeToString() for e in markers)


async def test_failures_are_classified_for_the_retry_policy(parcels: ParcelServer, tmp_path: Path) -> None:
    activities = ExternalToolActivities(servers(parcels, tmp_path))
    env = ActivityEnvironment()

    answered = await env.run(activities.call, ExternalCall("parcels", "weigh_parcel", {"tracking_id": "P"}, "k"))
    assert answered.is_error and "broken" in answered.text

    for server, kind, retryable in [
        ("parcels-wrong-token", McpErrorType.AUTH, False),
        ("down", McpErrorType.TRANSPORT, True),
        ("nowhere", McpErrorType.UNKNOWN_SERVER, False),
    ]:
        with pytest.raises(ApplicationError) as failed:
            await env.run(activities.call, ExternalCall(server, "track_parcel", {"tracking_id": "P"}, "k"))
        assert (failed.value.type, failed.value.non_retryable) == (kind, not retryable), server
        assert "parcel-test-token" not in str(failed.value)

    # The server answers an unknown tool as a tool error: recorded, shown to the model, not retried.
    unknown = await env.run(activities.call, ExternalCall("parcels", "no_such_tool", {}, "k"))
    assert unknown.is_error and "no_such_tool" in unknown.text

    found = await env.run(activities.discover, DiscoverRequest(["parcels", "down", "parcels-wrong-token"]))
    assert {t.name for t in found.tools} == {"track_parcel", "weigh_parcel"}
    assert set(found.unavailable) == {"down", "parcels-wrong-token"}
    assert "credentials" in found.unavailable["parcels-wrong-token"]
