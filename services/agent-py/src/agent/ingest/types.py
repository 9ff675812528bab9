"""Workflow-safe types and limits of document ingestion (no I/O imports)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from agent.blobs.types import BlobRef
from nexus_contracts.retrieval import DEFAULT_ENDPOINT as RETRIEVAL_ENDPOINT

SUPPORTED_SUFFIXES = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
"""A larger file is refused: it would be one blob read into one activity's memory."""

CHUNK_CHARS = 1000
"""Target chunk size in characters (about 200 MiniLM tokens, under its 256-token window, so a
chunk is embedded whole instead of being truncated by the model)."""
CHUNK_OVERLAP_CHARS = 150
"""Text repeated from the end of one chunk at the start of the next, so a sentence that
answers a question is never only split across two chunks."""

CHUNKS_PER_BATCH = 64
"""Chunks per embed call and per index call. At most the embedder's ``EMBEDDING_BATCH_SIZE``
(64 by default), so one activity is one provider request and a retry never re-pays for
another batch; 64 chunks of 1000 characters plus 384-float vectors is about 0.4 MB of Nexus
input, far under the 2 MB payload limit."""

MAX_DOCUMENTS_PER_INGESTION = 1000
"""Paths one IngestWorkflow takes. Each document costs its run at most about 15 history events
(an activity: 3, a child workflow: 3, up to three workflow tasks: 9), so 1000 documents stay near
15k events, well under Temporal's 51,200-event limit, with the paths and per-document outcomes
in well under a payload's 2 MB. ``agent ingest`` splits a larger set into several ingestions."""

DEFAULT_EMBED_CONCURRENCY = 4
DEFAULT_DOCUMENT_CONCURRENCY = 2

OUTCOME_INDEXED = "indexed"
OUTCOME_UNCHANGED = "unchanged"
OUTCOME_FAILED = "failed"

INSPECT_DOCUMENT_ACTIVITY = "inspect_document"
EXTRACT_DOCUMENT_ACTIVITY = "extract_document"
READ_CHUNKS_ACTIVITY = "read_chunks"
LIST_DOCUMENTS_ACTIVITY = "list_documents"


class IngestErrorType:
    """``ApplicationError.type`` of a document that cannot be ingested (none of them retries)."""

    NOT_FOUND = "DocumentNotFound"
    UNSUPPORTED = "DocumentUnsupported"
    MALFORMED = "DocumentMalformed"
    TOO_LARGE = "DocumentTooLarge"
    EMPTY = "DocumentEmpty"


NON_RETRYABLE_INGEST_ERRORS = [
    IngestErrorType.NOT_FOUND,
    IngestErrorType.UNSUPPORTED,
    IngestErrorType.MALFORMED,
    IngestErrorType.TOO_LARGE,
    IngestErrorType.EMPTY,
]


def document_id(path: str) -> str:
    """The document's id in the index: its file name without the suffix, lower-cased, with
    anything but letters, digits, ``.``, ``_`` and ``-`` replaced (``#`` separates chunk numbers)."""
    stem = PurePath(path).stem.lower()
    return re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-.") or "document"


def child_workflow_id(collection: str, doc_id: str) -> str:
    """One workflow id per (collection, document): its last completed run records what is indexed."""
    return f"ingest-doc/{collection}/{doc_id}"


@dataclass
class IngestInput:
    paths: list[str]
    """Files read by the worker (absolute, or relative to the worker's working directory)."""
    collection: str = "kb"
    retrieval_endpoint: str = RETRIEVAL_ENDPOINT
    embed_concurrency: int = DEFAULT_EMBED_CONCURRENCY
    """Embed activities in flight per document."""
    document_concurrency: int = DEFAULT_DOCUMENT_CONCURRENCY
    """Documents processed at once; at most ``document_concurrency x embed_concurrency`` embed
    activities are in flight for one ingestion."""
    chunk_chars: int = CHUNK_CHARS
    overlap_chars: int = CHUNK_OVERLAP_CHARS
    directories: list[str] = field(default_factory=list)
    """Directories the worker lists when the run starts (their documents of supported types,
    recursively, sorted), ingested after ``paths``: a scheduled re-ingestion (``agent schedule``)
    names its folder once and still finds the documents added since."""


@dataclass
class InspectRequest:
    path: str
    collection: str


@dataclass
class PriorIngest:
    """What the last completed ingestion of a document left in the index."""

    content_hash: str
    """Empty when that ingestion failed: nothing is known to be current."""
    extent: int
    """Chunk ids ``<doc_id>#0`` up to ``#extent-1`` may exist in the index."""
    version: int
    title: str = ""


@dataclass
class InspectedDocument:
    doc_id: str
    kind: str
    source: str
    """The file name (no directories: metadata ends up in search results)."""
    content: BlobRef
    """The file's bytes in the blob store; its digest is the document's content hash."""
    prior: PriorIngest | None = None


@dataclass
class DocumentIngestInput:
    document: InspectedDocument
    collection: str
    retrieval_endpoint: str
    embed_concurrency: int
    chunk_chars: int
    overlap_chars: int


@dataclass
class ExtractRequest:
    content: BlobRef
    kind: str
    source: str
    chunk_chars: int
    overlap_chars: int


@dataclass
class ExtractedDocument:
    title: str
    chars: int
    chunks: int
    batches: list[BlobRef]
    """JSON arrays of at most ``CHUNKS_PER_BATCH`` chunk texts, in order."""


@dataclass
class DocumentIngested:
    """Result of the per-document workflow; read back later to tell an unchanged document."""

    doc_id: str
    title: str
    content_hash: str
    """Of the bytes now indexed; empty when this ingestion failed."""
    version: int
    chunks: int
    extent: int
    """Chunk ids that may exist in the index after this run (carried over from failed runs, so
    a later, shorter version still deletes every chunk beyond its own)."""
    deleted: int = 0
    error: str = ""


@dataclass
class DocumentOutcome:
    path: str
    outcome: str
    doc_id: str = ""
    title: str = ""
    chunks: int = 0
    error: str = ""


@dataclass
class IngestProgress:
    total: int
    done: int = 0
    documents: list[DocumentOutcome] = field(default_factory=list)
    """Finished documents so far, in the order they finished."""
    in_progress: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    collection: str
    documents: list[DocumentOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for d in self.documents if d.outcome == outcome)
