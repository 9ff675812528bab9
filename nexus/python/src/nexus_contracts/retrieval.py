"""Contract of the ``retrieval`` Nexus service (handled by the Go retrieval worker)."""

from __future__ import annotations

from dataclasses import dataclass, field

import nexusrpc

SERVICE_NAME = "retrieval"


@dataclass
class SearchRequest:
    query: str
    collection: str
    top_k: int


@dataclass
class SearchHit:
    doc_id: str
    title: str
    text: str
    score: float


@dataclass
class SearchResponse:
    hits: list[SearchHit] = field(default_factory=list)
    total_documents: int = 0
    took_ms: float = 0.0


@nexusrpc.service(name=SERVICE_NAME)
class RetrievalService:
    search: nexusrpc.Operation[SearchRequest, SearchResponse]
