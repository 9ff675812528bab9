"""``agent ingest PATH...``: run IngestWorkflow with a progress display and a summary table.

Directories expand (recursively, sorted) to the files of supported types in them; files named
explicitly are sent as they are, so an unsupported or missing one is reported per document by
the workflow like any other failure. Paths are made absolute here, since the agent worker
reads them: on a dev stack it shares this machine's file system; in a cluster, give paths the
worker can see (a shared volume).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from agent.chat.client import ChatError
from agent.ingest.activities import supported_documents
from agent.ingest.types import (
    CHUNK_CHARS,
    CHUNK_OVERLAP_CHARS,
    MAX_DOCUMENTS_PER_INGESTION,
    OUTCOME_FAILED,
    OUTCOME_INDEXED,
    OUTCOME_UNCHANGED,
    SUPPORTED_SUFFIXES,
    IngestInput,
    IngestProgress,
    IngestResult,
)
from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.ingest import IngestWorkflow, input_problems
from workerkit.errors import root_message

POLL_S = 0.5
_STYLES = {OUTCOME_INDEXED: "green", OUTCOME_FAILED: "red"}


def expand(paths: list[str]) -> list[str]:
    """Absolute file paths: directories become their supported files; nothing else is judged here."""
    files: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if path.is_dir():
            found = supported_documents(path)
            if not found:
                raise ChatError(
                    f"{raw} holds no documents to ingest ({', '.join(sorted(SUPPORTED_SUFFIXES))} files)", 4
                )
            files.extend(found)
        else:
            files.append(str(path))
    return list(dict.fromkeys(files))  # a file named twice is ingested once


async def _watch(handle: WorkflowHandle[IngestWorkflow, IngestResult], total: int, console: Console) -> IngestResult:
    columns = (
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    result = asyncio.ensure_future(handle.result())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=total)
        while not result.done():
            try:
                state: IngestProgress | None = await handle.query(IngestWorkflow.progress)
            except RPCError:
                state = None  # not started on a worker yet; next poll
            if state is not None:
                names = ", ".join(Path(p).name for p in state.in_progress[:3])
                progress.update(task, completed=state.done, description=names)
            await asyncio.wait([result], timeout=POLL_S)
    return await result


def render(console: Console, result: IngestResult, workflow_id: str) -> None:
    table = Table(title=f"{workflow_id}: collection {result.collection}", title_justify="left")
    for name in ("document", "id", "outcome", "chunks", "title / reason"):
        table.add_column(name, overflow="fold")
    for doc in result.documents:
        style = _STYLES.get(doc.outcome, "dim")
        table.add_row(
            Path(doc.path).name,
            doc.doc_id,
            f"[{style}]{doc.outcome}[/{style}]",
            str(doc.chunks),
            doc.error or doc.title,
        )
    console.print(table)


def summarise(console: Console, results: list[IngestResult]) -> None:
    def count(outcome: str) -> int:
        return sum(r.count(outcome) for r in results)

    console.print(
        f"{count(OUTCOME_INDEXED)} indexed, {count(OUTCOME_UNCHANGED)} unchanged, {count(OUTCOME_FAILED)} failed",
        highlight=False,
    )


async def ingest(
    client: Client,
    console: Console,
    paths: list[str],
    *,
    collection: str,
    workflow_id: str | None,
    retrieval_endpoint: str,
    per_ingestion: int = MAX_DOCUMENTS_PER_INGESTION,
    chunk_chars: int = CHUNK_CHARS,
    overlap_chars: int = CHUNK_OVERLAP_CHARS,
) -> int:
    """Ingest ``paths`` in ingestions of at most ``per_ingestion`` documents, one after the other
    (ids ``<workflow_id>-<k>-of-<n>`` when there are several); exit code 1 when a document failed.
    ``chunk_chars`` and ``overlap_chars`` size the chunks (one embedding each)."""
    if not 1 <= per_ingestion <= MAX_DOCUMENTS_PER_INGESTION:
        raise ChatError(f"--documents-per-ingestion must be between 1 and {MAX_DOCUMENTS_PER_INGESTION}", 4)
    files = expand(paths)
    parts = [files[start : start + per_ingestion] for start in range(0, len(files), per_ingestion)] or [[]]
    requests = [
        IngestInput(
            paths=part,
            collection=collection,
            retrieval_endpoint=retrieval_endpoint,
            chunk_chars=chunk_chars,
            overlap_chars=overlap_chars,
        )
        for part in parts
    ]
    for request in requests:
        if problems := input_problems(request):
            raise ChatError("invalid ingestion request: " + "; ".join(problems), 4)
    base = workflow_id or f"ingest-{uuid.uuid4().hex[:12]}"
    ids = [base] if len(parts) == 1 else [f"{base}-{k}-of-{len(parts)}" for k in range(1, len(parts) + 1)]
    results = []
    for request, one_id in zip(requests, ids, strict=True):
        result = await _run(client, console, request, one_id)
        render(console, result, one_id)
        results.append(result)
    summarise(console, results)
    return 1 if any(r.count(OUTCOME_FAILED) for r in results) else 0


async def _run(client: Client, console: Console, request: IngestInput, workflow_id: str) -> IngestResult:
    try:
        # A workflow id names one ingestion (its result is the record of it): never reused.
        handle = await client.start_workflow(
            IngestWorkflow.run,
            request,
            id=workflow_id,
            task_queue=AGENT_TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        raise ChatError(f"workflow id {workflow_id} is already in use; pick another --workflow-id", 4) from None
    try:
        return await _watch(handle, len(request.paths), console)
    except WorkflowFailureError as err:
        raise ChatError(f"ingestion {workflow_id} failed: {root_message(err)}", 1) from None
