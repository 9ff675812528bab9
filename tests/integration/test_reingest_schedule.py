"""``agent schedule``: a Temporal Schedule whose action is IngestWorkflow over the knowledge base's
folder. Triggered, it runs once and finds every document unchanged (the harness ingested them at
the stack's start), so no embedding is paid for."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from harness import agent, ok
from temporalio.client import Client

from agent.ingest.activities import supported_documents
from agent.ingest.types import OUTCOME_UNCHANGED, IngestResult, child_workflow_id
from agent.testing import ledger
from devstack.stack import Stack, knowledge_base_dir


def kb_embeddings(stack: Stack) -> list[dict]:
    """The model server's embedding requests made for the knowledge base's documents (``kb``)."""
    entries = ledger(f"http://{stack.config.host}:{stack.config.ports['model_server']}")
    prefix = child_workflow_id("kb", "")
    return [e for e in entries if e.get("endpoint") == "embeddings" and (e.get("request_key") or "").startswith(prefix)]


def described(stack: Stack, schedule_id: str) -> dict:
    return json.loads(ok(agent(stack, "schedule", "describe", "--id", schedule_id, "--json")))


async def test_a_triggered_schedule_reingests_once_and_finds_every_document_unchanged(
    stack: Stack, agents_client: Client
) -> None:
    schedule_id = f"test-reingest-{uuid.uuid4().hex[:8]}"
    folder = knowledge_base_dir()
    documents = supported_documents(folder)
    created = ok(
        agent(
            stack, "schedule", "create", str(folder), "--id", schedule_id, "--every", "24h",
            "--catchup-window", "15m", "--paused", "--note", "created by the test",
        )
    )  # fmt: skip
    assert f"schedule {schedule_id} created" in created
    view = described(stack, schedule_id)
    assert view["paused"] is True and view["note"] == "created by the test"
    assert (view["overlap"], view["catchup_window"], view["every"]) == ("SKIP", "0:15:00", ["1 day, 0:00:00"])
    assert view["directories"] == [str(folder)] and view["files"] == [] and view["actions"] == 0
    embeddings_before = kb_embeddings(stack)

    # Paused, so nothing runs by itself; trigger starts one run now and waits for it.
    triggered = ok(agent(stack, "schedule", "trigger", "--id", schedule_id, "--wait"))
    assert f"0 indexed, {len(documents)} unchanged, 0 failed" in triggered, triggered

    view = described(stack, schedule_id)
    assert view["actions"] == 1 and view["skipped_overlap"] == 0 and len(view["recent"]) == 1
    workflow_id = view["recent"][0].split(" at ")[0]
    assert workflow_id.startswith(f"{schedule_id}-")  # the schedule's action: IngestWorkflow itself
    result = await agents_client.get_workflow_handle(workflow_id, result_type=IngestResult).result()
    assert sorted(d.path for d in result.documents) == documents
    assert {d.outcome for d in result.documents} == {OUTCOME_UNCHANGED}
    assert kb_embeddings(stack) == embeddings_before  # unchanged documents cost nothing

    ok(agent(stack, "schedule", "unpause", "--id", schedule_id, "--note", "resumed"))
    assert described(stack, schedule_id)["paused"] is False
    ok(agent(stack, "schedule", "pause", "--id", schedule_id))
    assert described(stack, schedule_id)["paused"] is True
    assert f"schedule {schedule_id} deleted" in ok(agent(stack, "schedule", "delete", "--id", schedule_id))
    gone = agent(stack, "schedule", "describe", "--id", schedule_id)
    assert gone.returncode == 3 and f"there is no schedule {schedule_id}" in gone.stdout


def test_a_taken_schedule_id_is_refused_and_replace_changes_the_document_set(stack: Stack, tmp_path: Path) -> None:
    schedule_id = f"test-reingest-{uuid.uuid4().hex[:8]}"
    ok(agent(stack, "schedule", "create", str(knowledge_base_dir()), "--id", schedule_id, "--paused"))
    taken = agent(stack, "schedule", "create", str(knowledge_base_dir()), "--id", schedule_id)
    assert taken.returncode == 4 and "exists already" in taken.stdout and "--replace" in taken.stdout
    replaced = ok(agent(stack, "schedule", "create", str(tmp_path), "--id", schedule_id, "--replace", "--paused"))
    assert f"schedule {schedule_id} replaced" in replaced
    assert described(stack, schedule_id)["directories"] == [str(tmp_path)]
    ok(agent(stack, "schedule", "delete", "--id", schedule_id))
