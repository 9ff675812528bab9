"""Ingestion throughput, from `agent ingest` to searchable, next to the raw embedding rate (`make bench-ingest`).

On a dev stack of the bench's own (free ports, temporary directory: the real Temporal dev
server, Go retrieval worker, agent worker and model server), for each case (chunks, chunk size):

1. **Documents.** Text files made from BEIR SciFact abstracts (cycled when a case needs more
   text than the corpus has), each as close to ``CHUNKS_PER_BATCH`` (64) chunks as whole abstracts
   allow, so each document is one embed call of the workflow's own batch size. The last
   paragraph of every document is a word no other document holds. Chunks are counted with the
   agent's own extractor and chunker, so the count is the one the workflow indexes.
2. **Raw embedding rate.** The same chunk texts, in the same batches (one document's chunks per
   request), sent straight to the model server's ``/v1/embeddings`` with the ``openai`` client
   the embed worker uses, two requests in flight so the server never waits for the next one.
   A sample of the case's documents (at least ``--raw-chunks`` chunks, and a twentieth of the case)
   is sent, right before the ingestion, so both see the same load on a shared machine.
3. **Ingestion.** ``python -m agent ingest DIR --collection <fresh> --chunk-chars C`` as a user
   runs it. The clock starts before the command starts and stops when a BM25 search through
   the retrieval Nexus endpoint finds the last document's word; the collection must then hold
   exactly the chunks counted in step 1.

Ratio = ingested chunks/s over raw chunks/s: the share of the model server's rate that survives
the workflow machinery (the blob store, activities, child workflows, payload encryption, Nexus,
the Go index) running on the same two cores. Where the cores went is measured too: CPU seconds
of every stack process and of the command over each window (from /proc), per 1000 chunks, and
the model server's share of them. Cases: 5k chunks of the agent's default 1000 characters (about
190 tokens, the size it ingests), and 5k and 50k sentence-sized chunks of 150 characters (about
27 tokens): 50k default chunks would need about 45 minutes of model time alone on two idle cores
(the model, not the workflow, sets that pace), while short chunks make the model cheap so the
machinery's cost shows at scale. Results go to ``bench/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.worker import Worker

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the test harness starts isolated stacks

from harness import client_for, running_stack  # noqa: E402

from agent.embeddings.settings import DEFAULT_EMBEDDING_MODEL  # noqa: E402
from agent.ingest.chunking import chunk_text  # noqa: E402
from agent.ingest.extract import extract  # noqa: E402
from agent.ingest.types import CHUNK_CHARS, CHUNK_OVERLAP_CHARS, CHUNKS_PER_BATCH  # noqa: E402
from devstack.stack import Stack  # noqa: E402
from drills.bench_report import report_header  # noqa: E402
from drills.search_probe import PROBE_TASK_QUEUE, SearchProbe, SearchProbeResult, SearchProbeWorkflow  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "ingest.json"
DEFAULT_DATASET = Path(os.environ.get("SCIFACT_DIR", REPO_ROOT.parent / "shared" / "datasets" / "scifact"))
SHORT_CHUNK_CHARS = 150
"""Sentence-sized chunks (about 27 MiniLM tokens against about 190 at the default 1000
characters): the model costs about 8x less per chunk, so the machinery's share shows, and
50k chunks fit in minutes where 50k default chunks need about 45 minutes of model time here."""
DEFAULT_CASES = f"5000:{CHUNK_CHARS},5000:{SHORT_CHUNK_CHARS},50000:{SHORT_CHUNK_CHARS}"
SEARCHABLE_WITHIN_S = 120.0
"""How long after the command ends the last document may take to show up in search."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Case:
    chunks: int
    chunk_chars: int

    @property
    def overlap_chars(self) -> int:
        # The agent's default overlap at the default size; a sentence-sized chunk has none.
        return CHUNK_OVERLAP_CHARS if self.chunk_chars == CHUNK_CHARS else 0

    @property
    def name(self) -> str:
        return f"{self.chunks} chunks of {self.chunk_chars} chars"


@dataclass
class Corpus:
    """A case's documents on disk and the chunk texts the workflow will embed, per document."""

    directory: Path
    chunks: list[list[str]]
    markers: list[str]

    @property
    def total(self) -> int:
        return sum(len(c) for c in self.chunks)


def parse_cases(raw: str) -> list[Case]:
    cases = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            chunks, chars = (int(x) for x in item.split(":"))
        except ValueError:
            raise SystemExit(
                f"bench-ingest: a case is CHUNKS:CHUNK_CHARS (for example 5000:1000), got {item!r}"
            ) from None
        if chunks < 1 or chars < 100:
            raise SystemExit(f"bench-ingest: {item!r} needs at least 1 chunk and chunks of at least 100 characters")
        cases.append(Case(chunks, chars))
    if not cases:
        raise SystemExit("bench-ingest: no case given")
    return cases


def abstracts(dataset: Path) -> Iterator[str]:
    """SciFact's abstracts as paragraphs, over and over."""
    corpus = dataset / "corpus.jsonl.gz"
    if not corpus.is_file():
        raise SystemExit(f"bench-ingest: no BEIR SciFact corpus at {corpus}; set SCIFACT_DIR")
    with gzip.open(corpus, "rt", encoding="utf-8") as lines:
        paragraphs = [f"{d['title']} {d['text']}".strip() for d in map(json.loads, lines)]
    while True:
        yield from paragraphs


def marker(number: int) -> str:
    """A word that names one document: letters only, so the BM25 tokenizer keeps it whole, and
    ending in "xq", which no stemming rule shortens, so no two markers stem to one term."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters += chr(ord("a") + digit)
        if number == 0:
            return f"ingestmark{letters}xq"


def chunks_of(text: str, name: str, case: Case) -> list[str]:
    """The chunks the workflow makes of this file: the agent's extractor, then its chunker."""
    extracted = extract(text.encode(), "text", name)
    return chunk_text(extracted.text, case.chunk_chars, case.overlap_chars)


def write_corpus(case: Case, dataset: Path, root: Path) -> Corpus:
    directory = root / f"docs-{case.chunks}-{case.chunk_chars}"
    directory.mkdir(parents=True)
    source = abstracts(dataset)
    corpus = Corpus(directory, [], [])
    pending = next(source)
    while corpus.total < case.chunks:
        number = len(corpus.chunks)
        word = marker(number)
        tail = f"Ingest marker {word}."
        wanted = min(CHUNKS_PER_BATCH, case.chunks - corpus.total)
        paragraphs: list[str] = []
        chunks: list[str] = []
        name = f"doc-{number:06d}.txt"
        # Whole abstracts until one more would pass the batch (or what the case still needs).
        while True:
            trial = chunks_of("\n\n".join([*paragraphs, pending, tail]), name, case)
            if paragraphs and len(trial) > wanted:
                break
            paragraphs.append(pending)
            chunks = trial
            pending = next(source)
            if len(trial) >= wanted:
                break
        (directory / name).write_text("\n\n".join([*paragraphs, tail]), encoding="utf-8")
        corpus.chunks.append(chunks)
        corpus.markers.append(word)
    return corpus


async def raw_rate(base_url: str, batches: list[list[str]], in_flight: int = 2) -> dict[str, float]:
    """Chunks/s of the model server alone, over ``batches`` (one request each)."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sim", max_retries=0, timeout=300)
    queue = list(reversed(batches))
    tokens = 0

    async def sender() -> None:
        nonlocal tokens
        while queue:
            batch = queue.pop()
            response = await client.embeddings.create(model=DEFAULT_EMBEDDING_MODEL, input=batch)
            if len(response.data) != len(batch):
                raise RuntimeError(f"the model server answered {len(response.data)} vectors for {len(batch)} texts")
            tokens += response.usage.prompt_tokens

    try:
        await client.embeddings.create(model=DEFAULT_EMBEDDING_MODEL, input=batches[0][:1])  # model loaded
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
    finally:
        await client.close()
    chunks = sum(len(b) for b in batches)
    return {
        "requests": len(batches),
        "requests_in_flight": in_flight,
        "chunks": chunks,
        "seconds": seconds,
        "chunks_per_s": chunks / seconds,
        "tokens_per_chunk": tokens / chunks,
        "tokens_per_s": tokens / seconds,
    }


async def probe(client: Client, collection: str, query: str) -> SearchProbeResult:
    return await client.execute_workflow(
        SearchProbeWorkflow.run,
        SearchProbe(collection=collection, query=query),
        id=f"bench-ingest-probe-{uuid.uuid4().hex[:10]}",
        task_queue=PROBE_TASK_QUEUE,
    )


async def ingest(stack: Stack, client: Client, corpus: Corpus, case: Case, log: Path) -> dict[str, float]:
    """Seconds from the start of `agent ingest` until its last document is found by a search."""
    collection = f"bench-{case.chunks}-{case.chunk_chars}-{uuid.uuid4().hex[:6]}"
    argv = [
        sys.executable,
        "-m",
        "agent",
        "ingest",
        str(corpus.directory),
        "--collection",
        collection,
        "--chunk-chars",
        str(case.chunk_chars),
        "--overlap-chars",
        str(case.overlap_chars),
    ]
    last_doc, last_word = f"doc-{len(corpus.chunks) - 1:06d}", corpus.markers[-1]
    with log.open("w") as out:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **stack.client_env()}, cwd=REPO_ROOT
        )
        code = await process.wait()
        command_s = time.perf_counter() - started
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"`agent ingest` exited with {code} for {case.name} (log {log}):\n{tail}")
    deadline = time.perf_counter() + SEARCHABLE_WITHIN_S
    while True:
        found = await probe(client, collection, last_word)
        if any(hit.startswith(f"{last_doc}#") for hit in found.hit_ids):
            searchable_s = time.perf_counter() - started
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"{last_doc} was not found by a search for {last_word!r} {SEARCHABLE_WITHIN_S:.0f} s after "
                f"`agent ingest` ended (hits {found.hit_ids}); see {log}"
            )
        await asyncio.sleep(0.2)
    if found.documents != corpus.total:
        raise RuntimeError(f"collection {collection} holds {found.documents} chunks, expected {corpus.total}")
    return {
        "documents": len(corpus.chunks),
        "chunks": corpus.total,
        "command_seconds": command_s,
        "searchable_seconds": searchable_s,
        "documents_per_s": len(corpus.chunks) / searchable_s,
        "chunks_per_s": corpus.total / searchable_s,
    }


def raw_sample(corpus: Corpus, minimum: int) -> list[list[str]]:
    """Whole documents from the start until at least ``minimum`` chunks, or a twentieth of the case."""
    wanted = min(corpus.total, max(minimum, corpus.total // 20))
    sample: list[list[str]] = []
    for chunks in corpus.chunks:
        if sum(len(b) for b in sample) >= wanted:
            break
        sample.append(chunks)
    return sample


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (all its threads), from /proc/<pid>/stat."""
    # Fields after the command name, which may hold spaces: utime and stime are fields 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds each process of the stack, and the `agent ingest` command, spend in a window:
    where the machine's two cores went, model server against the rest."""

    def __init__(self, stack: Stack) -> None:
        self._pids = {
            name: proc.pid for name in stack.process_names() if (proc := stack.processes.running(name)) is not None
        }

    def _now(self) -> dict[str, float]:
        now = {name: process_cpu_seconds(pid) for name, pid in self._pids.items()}
        # The command is this process's child and is reaped when it ends: its CPU is in RUSAGE_CHILDREN.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        now["agent ingest command"] = children.ru_utime + children.ru_stime
        return now

    def __enter__(self) -> dict[str, float]:
        self._before = self._now()
        self.spent: dict[str, float] = {}
        return self.spent

    def __exit__(self, *exc: object) -> None:
        after = self._now()
        self.spent.update({name: round(after[name] - self._before[name], 2) for name in after})


def embedding_model(stack: Stack) -> dict[str, object]:
    """What the model server says it embeds with (its /healthz)."""
    root = stack.config.model_server_url.removesuffix("/v1")
    health = httpx.get(f"{root}/healthz", timeout=10).json()
    return health.get("embedding_model", {})


async def bench(cases: list[Case], dataset: Path, raw_chunks: int, console: Console) -> dict[str, object]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, running_stack(Path(tmp) / "stack") as stack:
        client = await client_for(stack, "agents")
        async with Worker(client, task_queue=PROBE_TASK_QUEUE, workflows=[SearchProbeWorkflow]):
            for case in cases:
                corpus = write_corpus(case, dataset, Path(tmp))
                console.print(f"{case.name}: {len(corpus.chunks)} documents, {corpus.total} chunks; raw embedding")
                load_before = os.getloadavg()
                with CpuMeter(stack) as raw_cpu:
                    raw = await raw_rate(stack.config.model_server_url, raw_sample(corpus, raw_chunks))
                raw["model_server_cpu_seconds_per_1000_chunks"] = 1000 * raw_cpu["model-server"] / raw["chunks"]
                console.print(f"  raw {raw['chunks_per_s']:.1f} chunks/s; ingesting")
                log = Path(tmp) / f"ingest-{case.chunks}-{case.chunk_chars}.log"
                with CpuMeter(stack) as ingest_cpu:
                    ingested = await ingest(stack, client, corpus, case, log)
                console.print(f"  ingested {ingested['chunks_per_s']:.1f} chunks/s")
                results.append(
                    {
                        "case": case.name,
                        "chunk_chars": case.chunk_chars,
                        "overlap_chars": case.overlap_chars,
                        "raw_embedding": raw,
                        "ingest": ingested,
                        "ratio": ingested["chunks_per_s"] / raw["chunks_per_s"],
                        "ingest_cpu_seconds": ingest_cpu,
                        "model_server_cpu_share": ingest_cpu["model-server"] / sum(ingest_cpu.values()),
                        "ingest_cpu_seconds_per_1000_chunks": {
                            name: round(1000 * spent / corpus.total, 2) for name, spent in ingest_cpu.items()
                        },
                        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
                    }
                )
            model = embedding_model(stack)
    return {
        **report_header(__doc__),
        "embedding_model": model,
        "batch_size": CHUNKS_PER_BATCH,
        "cases": results,
    }


def render(result: dict[str, object], console: Console) -> None:
    table = Table(title="agent ingest to searchable vs the model server's raw embedding rate, same stack, same run")
    columns = (
        "case",
        "docs",
        "seconds",
        "docs/s",
        "chunks/s",
        "raw chunks/s",
        "tokens/chunk",
        "ingest/raw",
        "model's CPU share",
    )
    for column in columns:
        table.add_column(column, justify="right")
    cases = result["cases"]
    assert isinstance(cases, list)
    for case in cases:
        i, r = case["ingest"], case["raw_embedding"]
        table.add_row(
            case["case"],
            str(i["documents"]),
            f"{i['searchable_seconds']:.0f}",
            f"{i['documents_per_s']:.2f}",
            f"{i['chunks_per_s']:.1f}",
            f"{r['chunks_per_s']:.1f}",
            f"{r['tokens_per_chunk']:.0f}",
            f"{case['ratio']:.2f}",
            f"{case['model_server_cpu_share']:.0%}",
        )
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--cases",
        default=os.environ.get("INGEST_CASES", DEFAULT_CASES),
        help="CHUNKS:CHUNK_CHARS,... (default: INGEST_CASES or %(default)s)",
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="BEIR SciFact directory (%(default)s)")
    parser.add_argument(
        "--raw-chunks", type=int, default=512, help="chunks sent straight to the model server, at least (%(default)s)"
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    console = Console(width=130)
    result = asyncio.run(bench(parse_cases(args.cases), args.dataset, max(1, args.raw_chunks), console))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    render(result, console)
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    from workerkit.process import exit_without_finalizing

    exit_without_finalizing(main())
