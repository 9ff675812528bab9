"""A Python workflow indexes and searches through the real server, Nexus and the Go worker."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

from support.probe_workflows import EmbedIndexSearchWorkflow, IndexAndSearchWorkflow
from temporalio.client import Client
from temporalio.worker import Worker

from nexus_contracts.retrieval import IndexDocument, IndexRequest


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


async def test_index_search_delete_stats_from_python(agents_client: Client) -> None:
    collection = f"py-{uuid.uuid4().hex[:8]}"
    documents = [
        IndexDocument(
            id=f"doc-{i}",
            version=1,
            title=title,
            text=f"{title}. Written for the cross-language retrieval test.",
            metadata={"lang": "en"},
            vector=_unit([1.0 if j == i else 0.1 for j in range(8)]),
        )
        for i, title in enumerate(["Warranty claims", "Express shipping", "Password reset", "Gift cards"])
    ]
    task_queue = f"probe-{uuid.uuid4().hex[:8]}"
    async with Worker(agents_client, task_queue=task_queue, workflows=[IndexAndSearchWorkflow]):
        result = await agents_client.execute_workflow(
            IndexAndSearchWorkflow.run,
            IndexRequest(collection=collection, batch_id="batch-1", documents=documents),
            id=f"index-and-search-{collection}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=120),
        )
    assert result["first"]["added"] == 4
    # The same documents and versions again: a no-op, reported as such.
    assert result["again"]["added"] == 0 and result["again"]["unchanged"] == 4
    assert result["searches"]["bm25"][0] == "doc-0"
    assert result["searches"]["vector"][0] == "doc-0"
    assert result["searches"]["hybrid"][0] == "doc-0"
    assert result["deleted"] == {"deleted": 1, "not_found": 0}
    [stats] = result["stats"]
    assert stats["name"] == collection and stats["documents"] == 3 and stats["dimension"] == 8


async def test_real_embeddings_at_ingest_and_at_search_time(agents_client: Client) -> None:
    """The agent worker's ``embed`` activity (the packaged MiniLM behind /v1/embeddings) feeds the Go index."""
    titles = [
        "How to reset a forgotten password",
        "Shipping times to the United Kingdom",
        "Refunds for damaged headphones",
    ]
    task_queue = f"probe-{uuid.uuid4().hex[:8]}"
    async with Worker(agents_client, task_queue=task_queue, workflows=[EmbedIndexSearchWorkflow]):
        ranked = await agents_client.execute_workflow(
            EmbedIndexSearchWorkflow.run,
            args=[f"emb-{uuid.uuid4().hex[:8]}", titles, "I can't log in, I lost my password"],
            id=f"embed-index-search-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=120),
        )
    assert ranked[0] == "How to reset a forgotten password"
