"""Contract of the ``retrieval`` Nexus service (handled by the Go retrieval worker).

The JSON Schemas and examples in ``nexus/retrieval/`` are the source of truth; field names,
types, defaults and limits here must match them exactly (``nexus/python/tests`` compares
every field and limit and round-trips every example). Optional fields default to ``None``,
which travels as JSON ``null`` and means "not given" to the Go worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nexusrpc

SERVICE_NAME = "retrieval"
# The endpoint callers reach this service through unless configured otherwise; an entry of
# nexus/endpoints.json for this service (tested).
DEFAULT_ENDPOINT = "retrieval"

# Limits of nexus/retrieval/schemas/*.json, which the Go worker enforces (BAD_REQUEST beyond
# them). Each is named once here for Python callers; nexus/python/tests ties every one to the
# schema location it comes from, and the Go worker's contract tests do the same for its
# constants, so a limit changed in a schema fails both sides until they follow. Lengths count
# Unicode code points, as JSON Schema and ``len(str)`` do.
MAX_QUERY_LENGTH = 4096
MAX_COLLECTION_LENGTH = 128
MIN_TOP_K = 1
MAX_TOP_K = 100
MAX_VECTOR_DIMENSION = 4096
MAX_FILTERS = 16
MAX_METADATA_ENTRIES = 32
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 1024
MAX_DOC_ID_LENGTH = 512
MIN_VERSION = 1
MAX_TITLE_LENGTH = 1024
MAX_TEXT_LENGTH = 100_000
MAX_BATCH_ID_LENGTH = 200
MAX_INDEX_DOCUMENTS = 256
MAX_DELETE_IDS = 1000

# Search modes. ``None`` means hybrid when a query vector and a non-blank query are given,
# vector when only a query vector is given, and bm25 otherwise.
MODE_BM25 = "bm25"
MODE_VECTOR = "vector"
MODE_HYBRID = "hybrid"
SEARCH_MODES = (MODE_BM25, MODE_VECTOR, MODE_HYBRID)
# How a collection's vector searches run (``CollectionStats.vector_index``).
VECTOR_INDEX_KINDS = ("none", "exact", "hnsw")


@dataclass
class SearchRequest:
    query: str
    collection: str
    top_k: int
    mode: str | None = None
    query_vector: list[float] | None = None
    filters: dict[str, str] | None = None


@dataclass
class SearchHit:
    doc_id: str
    title: str
    text: str
    score: float
    version: int = 1
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class SearchResponse:
    hits: list[SearchHit] = field(default_factory=list)
    total_documents: int = 0
    took_ms: float = 0.0
    mode: str = MODE_BM25


@dataclass
class IndexDocument:
    """A document (or a chunk, with an id such as ``"manual#3"``) to add or replace.

    The same ``version`` again changes nothing, an older one is ignored, a newer one replaces.
    """

    id: str
    version: int
    title: str = ""
    text: str = ""
    metadata: dict[str, str] | None = None
    vector: list[float] | None = None


@dataclass
class IndexRequest:
    """``batch_id`` is the idempotency key: the worker's workflow id derives from it."""

    collection: str
    batch_id: str
    documents: list[IndexDocument] = field(default_factory=list)


@dataclass
class IndexResponse:
    collection: str
    batch_id: str
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    stale: int = 0


@dataclass
class DeleteRequest:
    collection: str
    ids: list[str] = field(default_factory=list)


@dataclass
class DeleteResponse:
    deleted: int = 0
    not_found: int = 0


@dataclass
class StatsRequest:
    collection: str | None = None


@dataclass
class CollectionStats:
    name: str
    documents: int
    dimension: int
    vectors: int
    vector_index: str
    bytes_on_disk: int


@dataclass
class StatsResponse:
    collections: list[CollectionStats] = field(default_factory=list)


@nexusrpc.service(name=SERVICE_NAME)
class RetrievalService:
    search: nexusrpc.Operation[SearchRequest, SearchResponse]
    index: nexusrpc.Operation[IndexRequest, IndexResponse]
    delete: nexusrpc.Operation[DeleteRequest, DeleteResponse]
    stats: nexusrpc.Operation[StatsRequest, StatsResponse]
