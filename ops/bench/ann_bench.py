"""make bench-ann, second half: hnswlib and faiss on the vectors the Go side wrote.

``cmd/retrieval-ann`` writes every data set (base vectors, queries, exact top 10) and its own
graph's measurements; this script measures the reference implementations on the same files
with the same M, efConstruction and efSearch sweep, single-threaded, one run each:

- ``hnswlib`` (HNSW, inner-product space: distance 1 - dot, like ours);
- ``faiss_hnsw`` (``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``);
- ``faiss_flat`` (``IndexFlatIP``: exact search, the floor every graph must beat on speed).

It writes the merged report (``-o``, default ``bench/results/ann.json``) and prints a table of
ratios to hnswlib. Runs in a throw-away environment (``ops/bench/requirements-reference.txt``):

    uv run --no-project --with-requirements ops/bench/requirements-reference.txt \\
        python ops/bench/ann_bench.py --go-report .data/ann/ours.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path
from typing import Any

import faiss
import hnswlib
import numpy as np

K = 10


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load(ds: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = Path(ds["dir"])
    dim = ds["dimension"]
    base = np.fromfile(d / "base.f32", dtype="<f4").reshape(-1, dim)
    queries = np.fromfile(d / "queries.f32", dtype="<f4").reshape(-1, dim)
    truth = np.fromfile(d / "truth.u32", dtype="<u4").reshape(-1, K).astype(np.int64)
    assert base.shape[0] == ds["base"] and queries.shape[0] == ds["queries"], "data files do not match the report"
    return base, queries, truth


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = 0
    for row, want in zip(found, truth, strict=True):
        hits += len(set(row.tolist()) & set(want.tolist()))
    return hits / truth.size


def measure(
    build, search, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, sweep: list[int]
) -> dict[str, Any]:
    """Time build(base) and search(index, queries, ef) for every ef."""
    before = rss_bytes()
    start, cpu = time.perf_counter(), time.process_time()
    index = build(base)
    build_cpu, build_wall = time.process_time() - cpu, time.perf_counter() - start
    memory = rss_bytes() - before
    points = []
    for ef in sweep:
        start, cpu = time.perf_counter(), time.process_time()
        found = search(index, queries, ef)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - start
        points.append(
            {
                "ef_search": ef,
                "recall_at_10": recall(found, truth),
                "qps": len(queries) / cpu,
                "wall_qps": len(queries) / wall,
            }
        )
    return {"build_seconds": build_cpu, "build_wall_seconds": build_wall, "memory_bytes": memory, "sweep": points}


def run_hnswlib(base, queries, truth, m: int, ef_construction: int, sweep: list[int], seed: int) -> dict[str, Any]:
    def build(data: np.ndarray):
        index = hnswlib.Index(space="ip", dim=data.shape[1])
        index.init_index(max_elements=data.shape[0], ef_construction=ef_construction, M=m, random_seed=seed)
        index.set_num_threads(1)
        index.add_items(data, np.arange(data.shape[0]), num_threads=1)
        return index

    def search(index, q: np.ndarray, ef: int) -> np.ndarray:
        index.set_ef(ef)
        labels, _ = index.knn_query(q, k=K, num_threads=1)
        return labels

    return measure(build, search, base, queries, truth, sweep)


def run_faiss_hnsw(base, queries, truth, m: int, ef_construction: int, sweep: list[int]) -> dict[str, Any]:
    def build(data: np.ndarray):
        index = faiss.IndexHNSWFlat(data.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.add(data)
        return index

    def search(index, q: np.ndarray, ef: int) -> np.ndarray:
        index.hnsw.efSearch = ef
        _, labels = index.search(q, K)
        return labels

    return measure(build, search, base, queries, truth, sweep)


def run_faiss_flat(base, queries, truth) -> dict[str, Any]:
    def build(data: np.ndarray):
        index = faiss.IndexFlatIP(data.shape[1])
        index.add(data)
        return index

    def search(index, q: np.ndarray, _ef: int) -> np.ndarray:
        _, labels = index.search(q, K)
        return labels

    return measure(build, search, base, queries, truth, [0])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def table(report: dict[str, Any]) -> str:
    lines = []
    for ds in report["datasets"]:
        res = ds["results"]
        ref = res["hnswlib"]
        lines.append(f"\n{ds['name']}: {ds['base']} vectors x {ds['dimension']}, {ds['queries']} queries")
        lines.append("| implementation | build CPU s | build / hnswlib | memory MiB | memory / hnswlib |")
        lines.append("|---|---:|---:|---:|---:|")
        for name, r in res.items():
            lines.append(
                f"| {name} | {r['build_seconds']:.2f} | {ratio(r['build_seconds'], ref['build_seconds'])} | "
                f"{r['memory_bytes'] / 2**20:.0f} | {ratio(r['memory_bytes'], ref['memory_bytes'])} |"
            )
        lines.append(
            "| efSearch | ours recall | hnswlib recall | faiss recall | ours QPS (CPU) | hnswlib QPS | faiss QPS "
            "| ours QPS / hnswlib | faiss QPS / hnswlib |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for ours, hl, fh in zip(res["ours"]["sweep"], ref["sweep"], res["faiss_hnsw"]["sweep"], strict=True):
            recalls = f"{ours['recall_at_10']:.3f} | {hl['recall_at_10']:.3f} | {fh['recall_at_10']:.3f}"
            rates = f"{ours['qps']:.0f} | {hl['qps']:.0f} | {fh['qps']:.0f}"
            ratios = f"{ratio(ours['qps'], hl['qps'])} | {ratio(fh['qps'], hl['qps'])}"
            lines.append(f"| {ours['ef_search']} | {recalls} | {rates} | {ratios} |")
        flat = res["faiss_flat"]["sweep"][0]
        lines.append(f"exact (faiss_flat): recall {flat['recall_at_10']:.3f}, {flat['qps']:.0f} QPS")
    return "\n".join(lines)


def measure_one(job: tuple[str, dict[str, Any], dict[str, Any], int]) -> dict[str, Any]:
    """One implementation on one data set, in a fresh process: memory freed by an earlier build
    would otherwise be reused and hide the next one's growth in RSS."""
    name, ds, p, seed = job
    faiss.omp_set_num_threads(1)
    base, queries, truth = load(ds)
    if name == "hnswlib":
        return run_hnswlib(base, queries, truth, p["m"], p["ef_construction"], p["ef_search"], seed)
    if name == "faiss_hnsw":
        return run_faiss_hnsw(base, queries, truth, p["m"], p["ef_construction"], p["ef_search"])
    return run_faiss_flat(base, queries, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--go-report", type=Path, required=True, help="report written by cmd/retrieval-ann")
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/results/ann.json"))
    args = parser.parse_args()
    report = json.loads(args.go_report.read_text(encoding="utf-8"))
    spawn = multiprocessing.get_context("spawn")
    for ds in report["datasets"]:
        for name in ("hnswlib", "faiss_hnsw", "faiss_flat"):
            print(f"measuring {name} on {ds['name']} ({ds['base']} vectors)", flush=True)
            with spawn.Pool(1) as pool:
                ds["results"][name] = pool.apply(measure_one, ((name, ds, report["parameters"], report["seed"]),))
        del ds["dir"]
    report["machine"]["python"] = platform.python_version()
    report["reference_versions"] = {
        "hnswlib": getattr(hnswlib, "__version__", "0.8.0"),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }
    report["notes"] = (
        "one run each, single-threaded (GOMAXPROCS 1 for the Go graph; hnswlib num_threads 1; faiss omp 1 thread); "
        "build_seconds and qps use the process's CPU time (user + system), because the machine is shared "
        "and wall time varies with the other work on it; build_wall_seconds and wall_qps are the wall-clock figures; "
        "QPS = queries / time of the whole query set "
        "(Go: one Search call per query; hnswlib and faiss: one batch call); "
        "memory: Go heap growth over the build plus the vectors the graph references, "
        "Python RSS growth over the build; "
        "recall@10 against the exact top 10 computed by brute force in Go"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
