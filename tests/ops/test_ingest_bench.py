"""`make bench-ingest`'s own bookkeeping (no stack): the documents it writes hold exactly the chunks
it counts, as the agent chunks them, one embed batch at most per document, each with a word of
its own; the bench's completeness check and its raw-rate batches rest on that."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from agent.ingest.types import CHUNKS_PER_BATCH

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("ingest_bench", REPO / "ops" / "bench" / "ingest_bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # dataclasses look their module up in sys.modules
spec.loader.exec_module(bench)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    directory = tmp_path / "scifact"
    directory.mkdir()
    sentences = [f"Finding {n} about protein {n % 7} was replicated in cohort {n % 3}." for n in range(40)]
    docs = [
        {"_id": str(n), "title": f"Study {n}", "text": " ".join(sentences[n % 10 : n % 10 + 12])} for n in range(30)
    ]
    with gzip.open(directory / "corpus.jsonl.gz", "wt") as out:
        out.writelines(json.dumps(d) + "\n" for d in docs)
    return directory


@pytest.mark.parametrize("case", [bench.Case(300, 150), bench.Case(130, 1000)], ids=str)
def test_documents_hold_the_counted_chunks(dataset: Path, tmp_path: Path, case: object) -> None:
    corpus = bench.write_corpus(case, dataset, tmp_path / "out")
    files = sorted(corpus.directory.iterdir())
    assert len(files) == len(corpus.chunks) == len(corpus.markers)
    assert case.chunks <= corpus.total < case.chunks + CHUNKS_PER_BATCH
    assert len(set(corpus.markers)) == len(corpus.markers)
    for path, chunks, word in zip(files, corpus.chunks, corpus.markers, strict=True):
        assert bench.chunks_of(path.read_text(), path.name, case) == chunks
        assert 1 <= len(chunks) <= CHUNKS_PER_BATCH
        assert word in chunks[-1] and sum(word in c for f in corpus.chunks for c in f) == 1


def test_raw_sample_is_whole_documents() -> None:
    corpus = bench.Corpus(Path("."), [["a"] * 64] * 60, [])
    assert bench.raw_sample(corpus, 100) == [["a"] * 64] * 3  # whole documents up to at least 192 (a twentieth)
    assert bench.raw_sample(corpus, 200) == [["a"] * 64] * 4
    assert len(bench.raw_sample(corpus, 10_000)) == 60


def test_cases_parse_and_refuse_nonsense() -> None:
    assert bench.parse_cases("5000:1000, 50000:150") == [bench.Case(5000, 1000), bench.Case(50000, 150)]
    for raw in ("5000", "x:1000", "5000:50", ""):
        with pytest.raises(SystemExit, match="bench-ingest"):
            bench.parse_cases(raw)
