"""A search through the retrieval Nexus endpoint, as a workflow: how a benchmark sees what is searchable.

`make bench-ingest` runs it after `agent ingest` to find the last document it ingested (a BM25
search for a word only that document holds) and to count the chunks in the collection;
`make drill-retrieval` runs one per search of its steady load, in every mode. Temporal retries the
operation on its own (a killed replica's task times out and goes to another) until its
schedule-to-close timeout. Kept in an importable module because the Python sandbox loads workflows
by module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from nexus_contracts.retrieval import RetrievalService, SearchRequest, StatsRequest

PROBE_TASK_QUEUE = "bench-search-probe"
PROBE_TIMEOUT = timedelta(seconds=60)


@dataclass
class SearchProbe:
    collection: str
    query: str
    top_k: int = 5
    endpoint: str = "retrieval"
    mode: str = "bm25"
    query_vector: list[float] | None = None
    count_documents: bool = True
    """Ask the stats operation for the collection's size; without, the search's own count."""


@dataclass
class SearchProbeResult:
    hit_ids: list[str]
    """Chunk ids of the BM25 hits, best first."""
    documents: int
    """Chunks in the collection (0 when it does not exist yet)."""
    took_ms: float = 0.0
    """The search handler's own time, as it reported it."""


@workflow.defn(name="BenchSearchProbeWorkflow")
class SearchProbeWorkflow:
    @workflow.run
    async def run(self, probe: SearchProbe) -> SearchProbeResult:
        retrieval = workflow.create_nexus_client(service=RetrievalService, endpoint=probe.endpoint)
        found = await retrieval.execute_operation(
            RetrievalService.search,
            SearchRequest(
                query=probe.query,
                collection=probe.collection,
                top_k=probe.top_k,
                mode=probe.mode,
                query_vector=probe.query_vector,
            ),
            schedule_to_close_timeout=PROBE_TIMEOUT,
        )
        hit_ids = [hit.doc_id for hit in found.hits]
        if not probe.count_documents:
            return SearchProbeResult(hit_ids=hit_ids, documents=found.total_documents, took_ms=found.took_ms)
        stats = await retrieval.execute_operation(
            RetrievalService.stats, StatsRequest(collection=probe.collection), schedule_to_close_timeout=PROBE_TIMEOUT
        )
        documents = sum(c.documents for c in stats.collections if c.name == probe.collection)
        return SearchProbeResult(hit_ids=hit_ids, documents=documents, took_ms=found.took_ms)
