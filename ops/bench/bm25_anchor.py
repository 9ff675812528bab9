"""make bench-retrieval, second half: tantivy on the corpus and queries the Go benchmark used.

``cmd/retrieval-bench -export DIR`` writes, per corpus size, ``DIR/<size>/corpus.jsonl`` (id, body =
title and text) and ``queries.jsonl``; this script indexes each corpus with tantivy (one field,
its default tokenizer, BM25 with tantivy's fixed k1 1.2 and b 0.75; one indexing thread, merged
before searching), runs the same queries for the top 10 one at a time on one thread (tantivy
answers a disjunction's top k with block-max WAND), and adds the latencies to the Go report as
the anchor our BM25 is read against:

    uv run --no-project --with-requirements ops/bench/requirements-reference.txt \\
        python ops/bench/bm25_anchor.py --export-dir .data/bench-corpus --report bench/results/retrieval-speed.json

Latencies include the Python call (a few microseconds); ours are measured inside Go around the
engine's Search, text analysis included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import tantivy

TOP_K = 10


def summarize(samples: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank) and mean, as app/eval.Summarize computes them."""
    s = sorted(samples)

    def rank(p: float) -> float:
        i = int(p * len(s) + 0.999999) - 1
        return s[max(0, min(i, len(s) - 1))]

    return {"p50": rank(0.5), "p99": rank(0.99), "mean": sum(s) / len(s)}


def measure(size_dir: Path) -> dict[str, Any]:
    schema_builder = tantivy.SchemaBuilder()
    schema_builder.add_text_field("body", stored=False)
    schema_builder.add_text_field("id", stored=True, tokenizer_name="raw")
    schema = schema_builder.build()
    tmp = Path(tempfile.mkdtemp(prefix="tantivy-bench-"))
    try:
        index = tantivy.Index(schema, path=str(tmp))
        writer = index.writer(heap_size=256_000_000, num_threads=1)
        docs = 0
        start = time.perf_counter()
        with open(size_dir / "corpus.jsonl", encoding="utf-8") as handle:
            for line in handle:
                doc = json.loads(line)
                writer.add_document(tantivy.Document(id=doc["id"], body=doc["body"]))
                docs += 1
        writer.commit()
        writer.wait_merging_threads()
        index_seconds = time.perf_counter() - start
        index.reload()
        searcher = index.searcher()
        queries = [json.loads(line)["text"] for line in open(size_dir / "queries.jsonl", encoding="utf-8")]
        times = []
        for text in queries:
            t0 = time.perf_counter()
            searcher.search(index.parse_query(text, ["body"]), TOP_K)
            times.append((time.perf_counter() - t0) * 1000)
        return {
            "documents": docs,
            "segments": searcher.num_segments,
            "index_seconds": index_seconds,
            "docs_per_second": docs / index_seconds,
            "bm25_ms": summarize(times),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export-dir", type=Path, required=True)
    parser.add_argument("--report", type=Path, default=Path("bench/results/retrieval-speed.json"))
    args = parser.parse_args()
    report = json.loads(args.report.read_text(encoding="utf-8"))
    print("| documents | our bm25 p50 ms | p99 | tantivy p50 ms | p99 | ours / tantivy (p50) | ours / tantivy (p99) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in report["sizes"]:
        anchor = measure(args.export_dir / str(size["documents"]))
        size["tantivy"] = anchor
        ours = size["modes"]["bm25"]["indexed_ms"]
        theirs = anchor["bm25_ms"]
        size["modes"]["bm25"]["vs_tantivy_p50"] = round(ours["p50"] / theirs["p50"], 2)
        size["modes"]["bm25"]["vs_tantivy_p99"] = round(ours["p99"] / theirs["p99"], 2)
        latencies = f"{ours['p50']:.3f} | {ours['p99']:.3f} | {theirs['p50']:.3f} | {theirs['p99']:.3f}"
        ratios = f"{ours['p50'] / theirs['p50']:.2f}x | {ours['p99'] / theirs['p99']:.2f}x"
        print(f"| {size['documents']} | {latencies} | {ratios} |")
    version = getattr(tantivy, "__version__", "0.27.0")
    report["parameters"]["bm25_anchor"] = (
        f"tantivy {version}: one text field (title and text), "
        "default tokenizer, BM25 k1 1.2 b 0.75, one indexing thread, segments merged; top 10 per query, one at a time"
    )
    args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"tantivy added to {args.report}")


if __name__ == "__main__":
    main()
