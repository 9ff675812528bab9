"""Activities of ingestion, on the ``agent`` task queue (they need the blob store, not a GPU).

``inspect_document`` reads a file once into the blob store and looks up what the last
ingestion of that document indexed; ``extract_document`` turns the stored bytes into chunk
batches (in the blob store too); ``read_chunks`` hands one batch's texts to the workflow for
the index call. Problems with a document are non-retryable ``ApplicationError``s of the types
in :class:`agent.ingest.types.IngestErrorType`, with one sentence saying what is wrong.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from agent.blobs.store import BlobCorrupted, BlobNotFound, BlobStore
from agent.blobs.types import BlobRef
from agent.ingest.chunking import chunk_text
from agent.ingest.extract import DocumentProblem, extract
from agent.ingest.types import (
    CHUNKS_PER_BATCH,
    MAX_DOCUMENT_BYTES,
    SUPPORTED_SUFFIXES,
    DocumentIngested,
    ExtractedDocument,
    ExtractRequest,
    IngestErrorType,
    InspectedDocument,
    InspectRequest,
    PriorIngest,
    child_workflow_id,
    document_id,
)

RAW_MEDIA_TYPE = "application/octet-stream"
CHUNKS_MEDIA_TYPE = "application/json"


def _problem(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def supported_documents(directory: Path) -> list[str]:
    """The documents of supported types under ``directory`` (recursively), sorted, absolute."""
    return sorted(
        str(p.absolute()) for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
    )


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise _problem(f"{path} is not a file", IngestErrorType.NOT_FOUND)
        if size > MAX_DOCUMENT_BYTES:
            raise _problem(
                f"{path} has {size} bytes; documents up to {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB are ingested",
                IngestErrorType.TOO_LARGE,
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise _problem(
            f"{path} does not exist (paths are read by the agent worker)", IngestErrorType.NOT_FOUND
        ) from None
    except PermissionError:
        raise _problem(f"{path} is not readable by the agent worker", IngestErrorType.NOT_FOUND) from None


class IngestActivities:
    def __init__(self, blobs: BlobStore, client: Client) -> None:
        self._blobs = blobs
        self._client = client

    def all(self) -> list[Callable[..., Any]]:
        return [self.list_documents, self.inspect_document, self.extract_document, self.read_chunks]

    @activity.defn(name="list_documents")
    async def list_documents(self, directories: list[str]) -> list[str]:
        """The documents in ``directories`` as this worker sees them (a mounted volume in a cluster)."""
        found: list[str] = []
        for raw in directories:
            directory = Path(raw)
            if not directory.is_dir():
                raise _problem(
                    f"{raw} is not a directory the agent worker can read (documents are read by the worker)",
                    IngestErrorType.NOT_FOUND,
                )
            found.extend(await asyncio.to_thread(supported_documents, directory))
        return list(dict.fromkeys(found))

    @activity.defn(name="inspect_document")
    async def inspect_document(self, request: InspectRequest) -> InspectedDocument:
        path = Path(request.path)
        kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise _problem(
                f"{path.name} is not a supported document; ingest {', '.join(sorted(SUPPORTED_SUFFIXES))} files",
                IngestErrorType.UNSUPPORTED,
            )
        data = await asyncio.to_thread(_read_file, path)
        # Content-addressed: the reference's digest is the document's content hash, and the
        # same bytes ingested again are stored once.
        content = await self._blobs.put(data, RAW_MEDIA_TYPE)
        doc_id = document_id(request.path)
        return InspectedDocument(
            doc_id=doc_id,
            kind=kind,
            source=path.name,
            content=content,
            prior=await self._prior(child_workflow_id(request.collection, doc_id)),
        )

    async def _prior(self, workflow_id: str) -> PriorIngest | None:
        handle = self._client.get_workflow_handle(workflow_id, result_type=DocumentIngested)
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None  # never ingested (or its record is past the namespace's retention)
            raise
        if description.status != WorkflowExecutionStatus.COMPLETED:
            # Running: the workflow start will be refused and say so. Terminated or timed
            # out: nothing is known about what it indexed.
            return None
        done = await handle.result()
        return PriorIngest(content_hash=done.content_hash, extent=done.extent, version=done.version, title=done.title)

    @activity.defn(name="extract_document")
    async def extract_document(self, request: ExtractRequest) -> ExtractedDocument:
        try:
            data = await self._blobs.get(request.content)
        except (BlobNotFound, BlobCorrupted) as err:
            # Gone from the store between inspection and now: ingest the file again.
            raise _problem(str(err), IngestErrorType.NOT_FOUND) from None
        try:
            extracted = await asyncio.to_thread(extract, data, request.kind, request.source)
        except DocumentProblem as err:
            raise _problem(err.message, err.kind) from None
        chunks = chunk_text(extracted.text, request.chunk_chars, request.overlap_chars)
        batches = [
            await self._blobs.put(json.dumps(chunks[i : i + CHUNKS_PER_BATCH]).encode(), CHUNKS_MEDIA_TYPE)
            for i in range(0, len(chunks), CHUNKS_PER_BATCH)
        ]
        activity.logger.info(
            "extracted %s: %d characters, %d chunks, title %r",
            request.source,
            len(extracted.text),
            len(chunks),
            extracted.title,
        )
        return ExtractedDocument(title=extracted.title, chars=len(extracted.text), chunks=len(chunks), batches=batches)

    @activity.defn(name="read_chunks")
    async def read_chunks(self, batch: BlobRef) -> list[str]:
        try:
            texts: list[str] = json.loads(await self._blobs.get(batch))
        except (BlobNotFound, BlobCorrupted) as err:
            raise _problem(str(err), IngestErrorType.NOT_FOUND) from None
        return texts
