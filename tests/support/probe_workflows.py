"""Test-only workflows that probe the Nexus wiring (kept importable for the workflow sandbox)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agent.embeddings.types import EMBED_TASK_QUEUE, EmbedRequest, EmbedResult
    from nexus_contracts.retrieval import (
        DeleteRequest,
        IndexDocument,
        IndexRequest,
        RetrievalService,
        SearchRequest,
        StatsRequest,
    )


@workflow.defn
class CallMissingOperationWorkflow:
    """Calls an operation the retrieval service does not have; must fail fast with a typed error."""

    @workflow.run
    async def run(self, endpoint: str) -> str:
        client = workflow.create_nexus_client(service="retrieval", endpoint=endpoint)
        return await client.execute_operation(
            "no_such_operation", {"query": "x"}, schedule_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class IndexAndSearchWorkflow:
    """Indexes documents through the retrieval endpoint, then searches them every way, from Python."""

    @workflow.run
    async def run(self, request: IndexRequest) -> dict:
        client = workflow.create_nexus_client(service=RetrievalService, endpoint="retrieval")
        timeout = timedelta(seconds=60)
        first = await client.execute_operation(RetrievalService.index, request, schedule_to_close_timeout=timeout)
        again = await client.execute_operation(
            RetrievalService.index,
            IndexRequest(
                collection=request.collection, batch_id=request.batch_id + "-again", documents=request.documents
            ),
            schedule_to_close_timeout=timeout,
        )
        probe = request.documents[0]
        searches = {}
        for mode, query, vector in (
            ("bm25", probe.title, None),
            ("vector", "", probe.vector),
            ("hybrid", probe.title, probe.vector),
        ):
            response = await client.execute_operation(
                RetrievalService.search,
                SearchRequest(query=query, collection=request.collection, top_k=3, mode=mode, query_vector=vector),
                schedule_to_close_timeout=timeout,
            )
            searches[mode] = [hit.doc_id for hit in response.hits]
        deleted = await client.execute_operation(
            RetrievalService.delete,
            DeleteRequest(collection=request.collection, ids=[request.documents[-1].id]),
            schedule_to_close_timeout=timeout,
        )
        stats = await client.execute_operation(
            RetrievalService.stats, StatsRequest(collection=request.collection), schedule_to_close_timeout=timeout
        )
        return {
            "first": asdict(first),
            "again": asdict(again),
            "searches": searches,
            "deleted": asdict(deleted),
            "stats": [asdict(c) for c in stats.collections],
        }


@workflow.defn
class EmbedIndexSearchWorkflow:
    """Real embeddings on the ``embed`` queue for documents and the query, then a vector search."""

    @workflow.run
    async def run(self, collection: str, titles: list[str], query: str) -> list[str]:
        async def embed(texts: list[str], purpose: str) -> list[list[float]]:
            result = await workflow.execute_activity(
                "embed_texts",
                EmbedRequest(texts=texts, purpose=purpose),
                task_queue=EMBED_TASK_QUEUE,
                start_to_close_timeout=timedelta(seconds=60),
                result_type=EmbedResult,
            )
            return result.vectors

        vectors = await embed(titles, "document")
        client = workflow.create_nexus_client(service=RetrievalService, endpoint="retrieval")
        timeout = timedelta(seconds=60)
        await client.execute_operation(
            RetrievalService.index,
            IndexRequest(
                collection=collection,
                batch_id="embedded",
                documents=[
                    IndexDocument(id=f"doc-{i}", version=1, title=t, text=t, vector=v)
                    for i, (t, v) in enumerate(zip(titles, vectors, strict=False))
                ],
            ),
            schedule_to_close_timeout=timeout,
        )
        [query_vector] = await embed([query], "query")
        response = await client.execute_operation(
            RetrievalService.search,
            SearchRequest(query="", collection=collection, top_k=2, mode="vector", query_vector=query_vector),
            schedule_to_close_timeout=timeout,
        )
        return [hit.title for hit in response.hits]
