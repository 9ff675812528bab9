"""Document ingestion through the real stack: extraction of every format, hybrid search over what
was indexed, unchanged documents doing no work, changed ones replacing their chunks, per-document
failures, bounded embedding fan-out. Unit tests of extraction and chunking come first (no stack)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from agent.ingest.chunking import chunk_text, paragraphs
from agent.ingest.extract import DocumentProblem, extract
from agent.ingest.types import (
    MAX_DOCUMENTS_PER_INGESTION,
    OUTCOME_FAILED,
    OUTCOME_INDEXED,
    OUTCOME_UNCHANGED,
    DocumentIngested,
    IngestErrorType,
    IngestInput,
    IngestResult,
    child_workflow_id,
    document_id,
)
from agent.queues import AGENT_TASK_QUEUE
from agent.support.toolbox import search_knowledge, source_of
from agent.testing import at, ledger
from agent.workflows.ingest import IngestWorkflow, input_problems
from devstack.stack import Stack
from nexus_contracts.retrieval import DEFAULT_ENDPOINT, RetrievalService, SearchHit, SearchRequest, SearchResponse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
GOOD = ["returns-faq.txt", "care-guide.md", "gift-cards.html", "repair-service.pdf"]


# --- extraction and chunking (no stack) ---------------------------------------------------------


def _extract(name: str, kind: str):
    return extract((FIXTURES / name).read_bytes(), kind, name)


def test_extraction_of_each_format_finds_title_and_text() -> None:
    md = _extract("care-guide.md", "markdown")
    assert md.title == "Care guide for waxed cotton jackets"
    assert "Re-waxing" in paragraphs(md.text) and "#" not in md.text  # headings kept as text
    html = _extract("gift-cards.html", "html")
    assert html.title == "Gift cards and vouchers"
    assert "valid for three years from the date" in " ".join(html.text.split())
    assert "javascript-should-never-be-indexed" not in html.text and "console.log" not in html.text
    assert "font-family" not in html.text
    # Block elements end paragraphs, inline ones (<strong>) stay inside their sentence.
    assert "Gift cards cannot be exchanged for cash." in paragraphs(html.text)
    pdf = _extract("repair-service.pdf", "pdf")
    assert pdf.title == "Repair service" and "repair workshop in Eindhoven" in pdf.text
    text = _extract("returns-faq.txt", "text")
    assert text.title == "returns faq" and "kayak paddle" in text.text


@pytest.mark.parametrize(
    ("name", "kind", "error", "words"),
    [
        ("broken.pdf", "pdf", IngestErrorType.MALFORMED, "not a readable PDF"),
        ("latin1.txt", "text", IngestErrorType.MALFORMED, "not UTF-8 text"),
        ("care-guide.md", "docx", IngestErrorType.UNSUPPORTED, "no extractor"),
    ],
)
def test_unreadable_documents_raise_one_clear_problem(name: str, kind: str, error: str, words: str) -> None:
    with pytest.raises(DocumentProblem) as problem:
        _extract(name, kind)
    assert problem.value.kind == error and words in problem.value.message and name in problem.value.message


def test_empty_document_is_a_problem() -> None:
    with pytest.raises(DocumentProblem) as problem:
        extract(b"<html><script>x()</script></html>", "html", "blank.html")
    assert problem.value.kind == IngestErrorType.EMPTY


def test_chunks_respect_size_keep_paragraphs_and_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]
    text = "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, 60, 5))
    chunks = chunk_text(text, 400, 80)
    assert len(chunks) > 5 and all(len(c) <= 400 for c in chunks)
    # Nothing lost, nothing split inside a sentence.
    joined = " ".join(chunks)
    assert all(s in joined for s in sentences)
    assert all(c.rstrip().endswith(".") for c in chunks)
    # Each chunk after the first starts with (at least) the last sentence of the one before.
    for before, after in zip(chunks, chunks[1:], strict=False):
        last = before.replace("\n\n", " ").split(". ")[-1]
        assert after.startswith(last.rstrip(".")), (before, after)


def test_a_sentence_longer_than_a_chunk_is_cut_between_words() -> None:
    word_run = " ".join(["lorem"] * 200)
    chunks = chunk_text(word_run, 100, 0)
    assert all(len(c) <= 100 for c in chunks) and all(c.split() == ["lorem"] * len(c.split()) for c in chunks)
    assert sum(len(c.split()) for c in chunks) == 200


def test_chunking_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="overlap_chars"):
        chunk_text("x", 200, 150)


def test_one_ingestion_takes_a_bounded_number_of_documents() -> None:
    paths = [f"/kb/doc-{n}.txt" for n in range(MAX_DOCUMENTS_PER_INGESTION + 1)]
    assert input_problems(IngestInput(paths=paths[:-1])) == []
    [problem] = input_problems(IngestInput(paths=paths))
    assert f"at most {MAX_DOCUMENTS_PER_INGESTION} documents" in problem and "split them" in problem


def test_document_ids_come_from_file_names() -> None:
    assert document_id("/kb/Refund Policy.md") == "refund-policy"
    assert document_id("care#guide.v2.html") == "care-guide.v2"


# --- through the real stack ---------------------------------------------------------------------


@workflow.defn
class SearchProbeWorkflow:
    """The agent's knowledge search (query embedded on ``embed``, hybrid through Nexus)."""

    @workflow.run
    async def run(self, collection: str, query: str, mode: str) -> SearchResponse:
        retrieval = workflow.create_nexus_client(service=RetrievalService, endpoint=DEFAULT_ENDPOINT)
        if mode == "agent":
            return (await search_knowledge(retrieval, query, collection, top_k=5)).response
        return await retrieval.execute_operation(
            RetrievalService.search,
            SearchRequest(query=query, collection=collection, top_k=50, mode=mode),
            schedule_to_close_timeout=timedelta(seconds=30),
        )


@pytest.fixture
async def search(agents_client: Client):
    task_queue = f"search-probe-{uuid.uuid4().hex[:8]}"
    # Unsandboxed: this test module is not importable by name, which the sandbox needs.
    async with Worker(
        agents_client,
        task_queue=task_queue,
        workflows=[SearchProbeWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):

        async def run(collection: str, query: str, mode: str = "agent") -> SearchResponse:
            return await agents_client.execute_workflow(
                SearchProbeWorkflow.run,
                args=[collection, query, mode],
                id=f"search-probe-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )

        yield run


async def _ingest(client: Client, paths: list[Path | str], collection: str, **settings: int) -> IngestResult:
    return await client.execute_workflow(
        IngestWorkflow.run,
        IngestInput(paths=[str(p) for p in paths], collection=collection, **settings),
        id=f"test-ingest-{uuid.uuid4().hex[:8]}",
        task_queue=AGENT_TASK_QUEUE,
    )


def _embeddings_of(stack: Stack, collection: str) -> list[dict]:
    entries = ledger(f"http://{stack.config.host}:{stack.config.ports['model_server']}")
    prefix = child_workflow_id(collection, "")
    return [e for e in entries if e.get("endpoint") == "embeddings" and (e.get("request_key") or "").startswith(prefix)]


def _by_name(result: IngestResult) -> dict[str, object]:
    return {Path(d.path).name: d for d in result.documents}


def _sources(hits: list[SearchHit]) -> list[str]:
    return [source_of(h) for h in hits]


async def test_every_format_is_ingested_and_found_by_hybrid_search(
    stack: Stack, agents_client: Client, search, tmp_path: Path
) -> None:
    collection = f"docs-{uuid.uuid4().hex[:8]}"
    paths = [FIXTURES / n for n in [*GOOD, "broken.pdf", "latin1.txt"]] + [
        tmp_path / "missing.md",
        FIXTURES / "make_pdfs.py",
    ]
    result = await _ingest(agents_client, paths, collection)

    docs = _by_name(result)
    assert [docs[n].outcome for n in GOOD] == [OUTCOME_INDEXED] * 4
    assert all(docs[n].chunks >= 1 for n in GOOD)
    assert docs["gift-cards.html"].title == "Gift cards and vouchers"
    assert docs["repair-service.pdf"].title == "Repair service"
    # One clear sentence per failed document; the others were ingested all the same.
    assert "not a readable PDF" in docs["broken.pdf"].error
    assert "not UTF-8 text" in docs["latin1.txt"].error
    assert "does not exist" in docs["missing.md"].error
    assert "not a supported document" in docs["make_pdfs.py"].error
    assert result.count(OUTCOME_FAILED) == 4

    for query, doc_id in [
        ("Can I give back a paddle I already used?", "returns-faq"),
        ("how do I make my waxed jacket waterproof again", "care-guide"),
        ("I lost my gift card, what happens to the balance", "gift-cards"),
        ("who repairs a broken zip on my tent", "repair-service"),
    ]:
        response = await search(collection, query)
        assert response.mode == "hybrid"
        assert _sources(response.hits)[0] == doc_id, (query, _sources(response.hits))
        top = response.hits[0]
        assert top.doc_id.startswith(f"{doc_id}#") and top.metadata["content_hash"]
    # The scripts and styles of the HTML page were never indexed.
    assert (await search(collection, "trackingPixel javascript console", "bm25")).hits == []


async def test_unchanged_documents_do_no_work_and_changed_ones_replace_their_chunks(
    stack: Stack, agents_client: Client, search, tmp_path: Path
) -> None:
    collection = f"docs-{uuid.uuid4().hex[:8]}"
    for name in ("returns-faq.txt", "care-guide.md"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    manual = tmp_path / "manual.md"
    # Five sections of ~200 characters with 250-character chunks: several chunks, the last ones
    # holding words nothing else has.
    sections = [
        f"## Section {n}\n\n" + f"The {word} setting of the stove controls part {n} of the burner. " * 3
        for n, word in enumerate(["alpha", "bravo", "charlie", "delta", "zanzibar"])
    ]
    manual.write_text("# Stove manual\n\n" + "\n\n".join(sections))
    paths = [tmp_path / "returns-faq.txt", tmp_path / "care-guide.md", manual]

    first = await _ingest(agents_client, paths, collection, chunk_chars=250, overlap_chars=0)
    assert [d.outcome for d in first.documents] == [OUTCOME_INDEXED] * 3
    chunks_before = _by_name(first)["manual.md"].chunks
    assert chunks_before >= 4
    embeddings = _embeddings_of(stack, collection)
    assert embeddings and all(e["inputs"] <= 64 for e in embeddings)
    runs = {
        d.doc_id: (await agents_client.get_workflow_handle(child_workflow_id(collection, d.doc_id)).describe()).run_id
        for d in first.documents
    }

    again = await _ingest(agents_client, paths, collection, chunk_chars=250, overlap_chars=0)
    assert [d.outcome for d in again.documents] == [OUTCOME_UNCHANGED] * 3
    assert _by_name(again)["manual.md"].chunks == chunks_before
    # No embedding request, and no new per-document run (so no extraction and no index call).
    assert _embeddings_of(stack, collection) == embeddings
    for doc_id, run_id in runs.items():
        handle = agents_client.get_workflow_handle(child_workflow_id(collection, doc_id))
        assert (await handle.describe()).run_id == run_id
    old_hits = (await search(collection, "zanzibar", "bm25")).hits
    assert old_hits and all(h.doc_id.startswith("manual#") and "zanzibar" in h.text for h in old_hits)

    # A shorter new version: re-indexed, and the chunks it no longer has are deleted.
    manual.write_text("# Stove manual\n\nThe stove now has one setting, called quasar, and nothing else.\n")
    changed = await _ingest(agents_client, paths, collection, chunk_chars=250, overlap_chars=0)
    assert [d.outcome for d in changed.documents] == [OUTCOME_UNCHANGED, OUTCOME_UNCHANGED, OUTCOME_INDEXED]
    assert _by_name(changed)["manual.md"].chunks == 1
    done = await agents_client.get_workflow_handle(
        child_workflow_id(collection, "manual"), result_type=DocumentIngested
    ).result()
    assert done.deleted == chunks_before - 1
    assert (await search(collection, "zanzibar", "bm25")).hits == []
    hits = (await search(collection, "quasar", "bm25")).hits
    assert [h.doc_id for h in hits] == ["manual#0"]

    # The ingestion counters reached the worker's Prometheus endpoint.
    port = stack.config.ports["agent_metrics"]
    with urllib.request.urlopen(f"http://{stack.config.host}:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert "agent_ingest_documents_total{" in metrics and 'outcome="unchanged"' in metrics
    assert "agent_ingest_chunks_total" in metrics


def _max_overlap(entries: list[dict]) -> int:
    """Most embedding requests in progress at one moment, from the ledger's end times and latencies."""
    edges = []
    for entry in entries:
        end = at(entry)
        edges.append((end - timedelta(milliseconds=entry["latency_ms"]), 1))
        edges.append((end, -1))
    level = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # ends before starts at a tie
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_embedding_fan_out_is_bounded(
    stack: Stack, agents_client: Client, tmp_path: Path, concurrency: int
) -> None:
    collection = f"fanout-{uuid.uuid4().hex[:8]}"
    # About 100-character sentences, one per chunk: 6 batches of at most 64 chunks.
    long = tmp_path / "long.txt"
    long.write_text(
        "\n\n".join(f"Paragraph {i} explains how the gas stove model {i} is cleaned and stored." for i in range(350))
    )
    result = await _ingest(
        agents_client,
        [long],
        collection,
        chunk_chars=100,
        overlap_chars=0,
        embed_concurrency=concurrency,
        document_concurrency=1,
    )
    assert result.documents[0].outcome == OUTCOME_INDEXED and result.documents[0].chunks == 350
    entries = _embeddings_of(stack, collection)
    assert len(entries) == 6 and all(e["inputs"] <= 64 for e in entries)
    peak = _max_overlap(entries)
    assert peak <= concurrency
    if concurrency > 1:
        assert peak > 1, "batches were embedded one at a time although three were allowed"


def _agent_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **stack.client_env(), "COLUMNS": "200"},
        timeout=180,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def test_agent_ingest_command_expands_directories_and_summarises(stack: Stack, tmp_path: Path) -> None:
    for name in ("care-guide.md", "broken.pdf", "gift-cards.html"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    (tmp_path / "notes.docx").write_bytes(b"not expanded from a directory")
    collection = f"cli-{uuid.uuid4().hex[:8]}"

    done = _agent_cli(
        stack, "ingest", str(tmp_path), "--collection", collection, "--workflow-id", f"ingest-{collection}"
    )
    assert done.returncode == 1, done.stdout + done.stderr  # one document failed
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") >= 5}
    assert set(rows) == {"broken.pdf", "care-guide.md", "gift-cards.html"}
    assert "indexed" in rows["care-guide.md"] and "Care guide for waxed cotton jackets" in rows["care-guide.md"]
    assert "failed" in rows["broken.pdf"] and "not a readable PDF" in rows["broken.pdf"]
    assert "2 indexed, 0 unchanged, 1 failed" in done.stdout

    again = _agent_cli(stack, "ingest", str(tmp_path / "care-guide.md"), "--collection", collection)
    assert again.returncode == 0 and "0 indexed, 1 unchanged, 0 failed" in again.stdout

    # More documents than one ingestion takes: several ingestions, one after the other, one total.
    split = _agent_cli(
        stack,
        "ingest",
        str(tmp_path),
        "--collection",
        collection,
        "--documents-per-ingestion",
        "2",
        "--workflow-id",
        f"split-{collection}",
    )
    assert split.returncode == 1, split.stdout + split.stderr  # broken.pdf still fails
    assert f"split-{collection}-1-of-2:" in split.stdout and f"split-{collection}-2-of-2:" in split.stdout
    assert "0 indexed, 2 unchanged, 1 failed" in split.stdout
    too_many = _agent_cli(stack, "ingest", str(tmp_path), "--documents-per-ingestion", "0")
    assert too_many.returncode == 4 and "--documents-per-ingestion must be between 1 and" in too_many.stdout

    # Bad input and a taken workflow id: one line each, usage-type exit code.
    empty = _agent_cli(stack, "ingest", str(tmp_path / "nothing-here"), "--collection", " ")
    assert empty.returncode == 4 and "collection name must not be empty" in empty.stdout
    taken = _agent_cli(
        stack, "ingest", str(tmp_path), "--collection", collection, "--workflow-id", f"ingest-{collection}"
    )
    assert taken.returncode == 4 and "already in use" in taken.stdout

    unreachable = subprocess.run(
        [sys.executable, "-m", "agent", "ingest", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **stack.client_env(), "TEMPORAL_ADDRESS": "127.0.0.1:9"},
    )
    assert (
        unreachable.returncode == 2
        and unreachable.stdout.startswith("agent:")
        and "Traceback" not in unreachable.stderr
    )
