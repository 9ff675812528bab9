"""IngestWorkflow: documents in, searchable chunks out.

For each path the parent reads the file once into the blob store (``inspect_document``,
which also looks up the document's last ingestion) and, when the content changed, runs an
``IngestDocumentWorkflow`` child: extract and chunk (``extract_document``), embed each batch
of chunks on the ``embed`` queue, index it through the retrieval Nexus ``index`` operation, and
delete chunk ids the new version no longer has.

Unchanged documents do no work. Every document has one child workflow id per collection
(``ingest-doc/<collection>/<doc_id>``), and the result of its last completed run records the
SHA-256 of the bytes it indexed. ``inspect_document`` reads that result; the same hash means
the index already holds this content, so nothing is extracted, embedded or indexed. Keeping
the record in the *last* run (rather than in a workflow id per hash) stays right when a
document is changed back to an earlier content, and the run history is the audit trail. Two
ingestions of the same document at once are refused by the running child's id. (Past the
namespace's retention the record is gone and the document is embedded once more.)

Index versions are the child's start time in milliseconds (and always above the previous
version), so a newer content replaces the older chunk by chunk, and a retried index call with
its ``batch_id`` (derived from document and version) is a no-op on the Go side.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    NexusOperationError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from agent.blobs.types import BlobRef
    from agent.embeddings.types import (
        EMBED_TASK_QUEUE,
        EMBED_TEXTS_ACTIVITY,
        NON_RETRYABLE_EMBEDDING_ERRORS,
        EmbedRequest,
        EmbedResult,
    )
    from agent.ingest.types import (
        CHUNKS_PER_BATCH,
        EXTRACT_DOCUMENT_ACTIVITY,
        INSPECT_DOCUMENT_ACTIVITY,
        LIST_DOCUMENTS_ACTIVITY,
        MAX_DOCUMENTS_PER_INGESTION,
        NON_RETRYABLE_INGEST_ERRORS,
        OUTCOME_FAILED,
        OUTCOME_INDEXED,
        OUTCOME_UNCHANGED,
        READ_CHUNKS_ACTIVITY,
        DocumentIngested,
        DocumentIngestInput,
        DocumentOutcome,
        ExtractedDocument,
        ExtractRequest,
        IngestInput,
        IngestProgress,
        IngestResult,
        InspectedDocument,
        InspectRequest,
        child_workflow_id,
        document_id,
    )
    from agent.support.toolbox import failure_of
    from nexus_contracts.retrieval import (
        MAX_DELETE_IDS,
        DeleteRequest,
        IndexDocument,
        IndexRequest,
        RetrievalService,
    )
    from workerkit.deployment import when_versioned
    from workerkit.errors import root_message

FILE_TIMEOUT = timedelta(minutes=5)
NEXUS_TIMEOUT = timedelta(minutes=10)
EMBED_TIMEOUT = timedelta(minutes=5)
INGEST_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=30), non_retryable_error_types=NON_RETRYABLE_INGEST_ERRORS
)


def input_problems(request: IngestInput) -> list[str]:
    """What is wrong with a request, in words for the person who sent it (empty when fine)."""
    problems = []
    if not request.paths and not request.directories:
        problems.append("give at least one document path or directory")
    elif len(request.paths) > MAX_DOCUMENTS_PER_INGESTION:
        problems.append(
            f"one ingestion takes at most {MAX_DOCUMENTS_PER_INGESTION} documents (its history budget), "
            f"got {len(request.paths)}: split them into several ingestions"
        )
    if not request.collection.strip():
        problems.append("the collection name must not be empty")
    if request.embed_concurrency < 1 or request.document_concurrency < 1:
        problems.append("embed_concurrency and document_concurrency must be at least 1")
    if request.chunk_chars < 100 or not 0 <= request.overlap_chars < request.chunk_chars // 2:
        problems.append("chunk_chars must be at least 100 and overlap_chars under half of it")
    return problems


def _reason(err: BaseException) -> str:
    """The sentence under Temporal's wrappers (activity, Nexus operation, child workflow)."""
    if isinstance(err, NexusOperationError):
        return failure_of(err)[1]
    return root_message(err)


# Pinned, both: an ingestion lasts minutes, and finishing it on the build that started it
# keeps chunking and ids consistent within one document version.
@workflow.defn(versioning_behavior=when_versioned(VersioningBehavior.PINNED))
class IngestDocumentWorkflow:
    """One document; never fails for the document's sake (its result says what went wrong)."""

    @workflow.run
    async def run(self, request: DocumentIngestInput) -> DocumentIngested:
        doc = request.document
        prior = doc.prior
        version = max(int(workflow.info().start_time.timestamp() * 1000), (prior.version + 1) if prior else 1)
        extent = prior.extent if prior else 0
        content_hash = doc.content.digest
        try:
            extracted = await workflow.execute_activity(
                EXTRACT_DOCUMENT_ACTIVITY,
                ExtractRequest(doc.content, doc.kind, doc.source, request.chunk_chars, request.overlap_chars),
                result_type=ExtractedDocument,
                start_to_close_timeout=FILE_TIMEOUT,
                retry_policy=INGEST_RETRY,
            )
        except ActivityError as err:
            return DocumentIngested(doc.doc_id, "", "", version, 0, extent, error=_reason(err))
        # From here on chunk ids up to the new count may be written, whatever happens next.
        extent = max(extent, extracted.chunks)
        retrieval = workflow.create_nexus_client(service=RetrievalService, endpoint=request.retrieval_endpoint)
        in_flight = asyncio.Semaphore(request.embed_concurrency)

        async def index_batch(number: int, batch: BlobRef) -> None:
            async with in_flight:
                embedded = await workflow.execute_activity(
                    EMBED_TEXTS_ACTIVITY,
                    EmbedRequest(texts_ref=batch, purpose="document"),
                    result_type=EmbedResult,
                    task_queue=EMBED_TASK_QUEUE,
                    start_to_close_timeout=EMBED_TIMEOUT,
                    heartbeat_timeout=timedelta(seconds=90),
                    retry_policy=RetryPolicy(non_retryable_error_types=NON_RETRYABLE_EMBEDDING_ERRORS),
                )
            # The Go indexer cannot read the agent's blob store: the texts go inline, one
            # batch (well under the payload limit) at a time.
            texts = await workflow.execute_activity(
                READ_CHUNKS_ACTIVITY,
                batch,
                result_type=list[str],
                start_to_close_timeout=FILE_TIMEOUT,
                retry_policy=INGEST_RETRY,
            )
            first = number * CHUNKS_PER_BATCH
            documents = [
                IndexDocument(
                    id=f"{doc.doc_id}#{first + offset}",
                    version=version,
                    title=extracted.title,
                    text=text,
                    metadata={"source_id": doc.doc_id, "source": doc.source, "content_hash": content_hash},
                    vector=vector,
                )
                for offset, (text, vector) in enumerate(zip(texts, embedded.vectors, strict=True))
            ]
            await retrieval.execute_operation(
                RetrievalService.index,
                IndexRequest(
                    collection=request.collection, batch_id=f"{doc.doc_id}@{version}/{number}", documents=documents
                ),
                schedule_to_close_timeout=NEXUS_TIMEOUT,
            )

        try:
            await asyncio.gather(*(index_batch(n, batch) for n, batch in enumerate(extracted.batches)))
            stale = [f"{doc.doc_id}#{n}" for n in range(extracted.chunks, extent)]
            deleted = 0
            for start in range(0, len(stale), MAX_DELETE_IDS):
                answer = await retrieval.execute_operation(
                    RetrievalService.delete,
                    DeleteRequest(collection=request.collection, ids=stale[start : start + MAX_DELETE_IDS]),
                    schedule_to_close_timeout=NEXUS_TIMEOUT,
                )
                deleted += answer.deleted
        except (ActivityError, NexusOperationError) as err:
            return DocumentIngested(doc.doc_id, extracted.title, "", version, 0, extent, error=_reason(err))
        return DocumentIngested(
            doc.doc_id, extracted.title, content_hash, version, extracted.chunks, extracted.chunks, deleted=deleted
        )


@workflow.defn(versioning_behavior=when_versioned(VersioningBehavior.PINNED))
class IngestWorkflow:
    def __init__(self) -> None:
        self._progress = IngestProgress(total=0)

    @workflow.query
    def progress(self) -> IngestProgress:
        return self._progress

    @workflow.run
    async def run(self, request: IngestInput) -> IngestResult:
        if problems := input_problems(request):
            raise ApplicationError(
                "invalid ingestion request: " + "; ".join(problems), type="BadRequest", non_retryable=True
            )
        paths = list(request.paths)
        if request.directories:
            # Listed by the worker at run time (not when the request was made): a schedule's
            # folder picks up new documents. Runs without directories record no such activity.
            try:
                listed = await workflow.execute_activity(
                    LIST_DOCUMENTS_ACTIVITY,
                    request.directories,
                    result_type=list[str],
                    start_to_close_timeout=FILE_TIMEOUT,
                    retry_policy=INGEST_RETRY,
                )
            except ActivityError as err:
                raise ApplicationError(_reason(err), type="BadRequest", non_retryable=True) from None
            paths = list(dict.fromkeys([*paths, *listed]))
            if len(paths) > MAX_DOCUMENTS_PER_INGESTION:
                raise ApplicationError(
                    f"the directories hold {len(paths)} documents; one ingestion takes at most "
                    f"{MAX_DOCUMENTS_PER_INGESTION}: split them into several folders (or schedules)",
                    type="BadRequest",
                    non_retryable=True,
                )
        self._progress = IngestProgress(total=len(paths))
        meter = workflow.metric_meter()  # replay-aware: a replayed workflow does not count twice
        documents = meter.create_counter("agent_ingest_documents", "documents ingested, by outcome")
        chunks = meter.create_counter("agent_ingest_chunks", "chunks embedded and indexed")
        slots = asyncio.Semaphore(request.document_concurrency)
        seen: dict[str, str] = {}

        async def one(path: str) -> DocumentOutcome:
            doc_id = document_id(path)
            if doc_id in seen:
                return DocumentOutcome(
                    path, OUTCOME_FAILED, doc_id, error=f"same document id as {seen[doc_id]}; rename one of them"
                )
            seen[doc_id] = path
            async with slots:
                self._progress.in_progress.append(path)
                try:
                    return await self._ingest(request, path, doc_id)
                finally:
                    self._progress.in_progress.remove(path)

        async def counted(path: str) -> DocumentOutcome:
            outcome = await one(path)
            documents.add(1, {"outcome": outcome.outcome})
            if outcome.outcome == OUTCOME_INDEXED:
                chunks.add(outcome.chunks)
            self._progress.done += 1
            self._progress.documents.append(outcome)
            return outcome

        outcomes = await asyncio.gather(*(counted(path) for path in paths))
        return IngestResult(collection=request.collection, documents=list(outcomes))

    async def _ingest(self, request: IngestInput, path: str, doc_id: str) -> DocumentOutcome:
        try:
            doc = await workflow.execute_activity(
                INSPECT_DOCUMENT_ACTIVITY,
                InspectRequest(path=path, collection=request.collection),
                result_type=InspectedDocument,
                start_to_close_timeout=FILE_TIMEOUT,
                retry_policy=INGEST_RETRY,
            )
        except ActivityError as err:
            return DocumentOutcome(path, OUTCOME_FAILED, doc_id, error=_reason(err))
        if doc.prior is not None and doc.prior.content_hash == doc.content.digest:
            return DocumentOutcome(path, OUTCOME_UNCHANGED, doc_id, doc.prior.title, doc.prior.extent)
        try:
            done = await workflow.execute_child_workflow(
                IngestDocumentWorkflow.run,
                DocumentIngestInput(
                    doc,
                    request.collection,
                    request.retrieval_endpoint,
                    request.embed_concurrency,
                    request.chunk_chars,
                    request.overlap_chars,
                ),
                id=child_workflow_id(request.collection, doc_id),
                # Finished runs are the record of what is indexed; a new content starts a new run.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return DocumentOutcome(
                path,
                OUTCOME_FAILED,
                doc_id,
                error="another ingestion of this document is running; try again when it is done",
            )
        except ChildWorkflowError as err:  # terminated or cancelled by someone: this document only
            return DocumentOutcome(path, OUTCOME_FAILED, doc_id, error=f"its ingestion was stopped: {_reason(err)}")
        if done.error:
            return DocumentOutcome(path, OUTCOME_FAILED, doc_id, done.title, error=done.error)
        return DocumentOutcome(path, OUTCOME_INDEXED, doc_id, done.title, done.chunks)
