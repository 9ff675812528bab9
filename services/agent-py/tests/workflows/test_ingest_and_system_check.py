"""IngestWorkflow (files to searchable chunks, idempotent per document version) and
SystemCheckWorkflow (every hop once), on the in-process services."""

from __future__ import annotations

import uuid
from pathlib import Path

from agent_doubles import Agents, say

from agent.ingest.types import IngestInput, IngestResult
from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.ingest import IngestWorkflow
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow


async def _ingest(agents: Agents, paths: list[Path], collection: str) -> IngestResult:
    return await agents.client.execute_workflow(
        IngestWorkflow.run,
        IngestInput(paths=[str(p) for p in paths], collection=collection),
        id=f"ingest-{uuid.uuid4().hex[:8]}",
        task_queue=AGENT_TASK_QUEUE,
    )


async def test_ingestion_indexes_each_document_once_per_version(agents: Agents, tmp_path: Path) -> None:
    collection = f"kb-{uuid.uuid4().hex[:6]}"
    shipping, returns = tmp_path / "shipping.md", tmp_path / "returns.txt"
    shipping.write_text("# Shipping\n\nOrders ship within two working days from our warehouse.\n")
    returns.write_text("Items may be returned within thirty days of delivery.\n")

    first = await _ingest(agents, [shipping, returns], collection)
    again = await _ingest(agents, [shipping, returns], collection)
    returns.write_text("Items may be returned within sixty days of delivery.\n")
    changed = await _ingest(agents, [returns], collection)

    assert [d.outcome for d in first.documents] == ["indexed", "indexed"]
    assert {d.outcome for d in again.documents} == {"unchanged"}
    assert [d.outcome for d in changed.documents] == ["indexed"]
    indexed = agents.retrieval.collections[collection]
    assert {d.metadata["source_id"] for d in indexed.values() if d.metadata} == {"shipping", "returns"}
    assert any("sixty" in d.text for d in indexed.values())
    assert not any("thirty" in d.text for d in indexed.values())
    assert all(d.vector is not None for d in indexed.values()), "every chunk is embedded"


async def test_ingestion_reports_a_bad_file_and_goes_on(agents: Agents, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("A document that can be read.\n")

    result = await _ingest(agents, [good, tmp_path / "missing.txt"], f"kb-{uuid.uuid4().hex[:6]}")

    outcomes = {Path(d.path).name: d for d in result.documents}
    assert outcomes["good.txt"].outcome == "indexed"
    assert outcomes["missing.txt"].outcome == "failed" and outcomes["missing.txt"].error


async def test_the_system_check_makes_every_hop_once(agents: Agents) -> None:
    agents.model.script.append(say("All systems answer."))
    before = len(agents.refunds_of("ORD-1003"))
    check = SystemCheckInput(question="How do refunds work?", order_id="ORD-1003", refund_cents=100)
    workflow_id = f"check-{uuid.uuid4().hex[:8]}"

    result = await agents.client.execute_workflow(
        SystemCheckWorkflow.run, check, id=workflow_id, task_queue=AGENT_TASK_QUEUE
    )

    assert result.hops == ["retrieval.search", "business.get_order", "business.refund", "llm.chat_completion"]
    assert result.order.order_id == "ORD-1003" and result.answer.content == "All systems answer."
    assert [r.idempotency_key for r in agents.refunds_of("ORD-1003")[before:]] == [f"{workflow_id}/refund"]
    tool_names = [c["function"]["name"] for c in agents.model.requests[-1].messages[2].tool_calls or []]
    assert tool_names == ["search_knowledge", "lookup_order", "refund_order"]
