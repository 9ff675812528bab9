"""Embed the BEIR SciFact corpus and test queries with all-MiniLM-L6-v2, cached on disk.

Used by ``make eval-retrieval``: the Go ``cmd/retrieval-eval`` reads the vectors this writes.
The model runs in this process through the same numpy runtime the model server's
``/v1/embeddings`` uses (``modelserver.embedding``), so no server is needed and the vectors are
the ones the server would return.

    uv run python ops/bench/embed_beir.py                   # defaults below
    uv run python ops/bench/embed_beir.py --dataset DIR --data-dir DIR --threads 2

Inputs, as BEIR embeds them for sentence-transformers models: documents are
``(title + " " + text).strip()``, queries are their ``text`` (from ``queries-test.jsonl``, which
carries no gold metadata). The model truncates to 256 tokens, as sentence-transformers does.

Output in ``<data dir>/embeddings/``:

- ``scifact-<model>-corpus-<sha>.jsonl`` and ``scifact-<model>-queries-<sha>.jsonl``: one JSON
  object a line, ``{"id": "<_id>", "vector": [384 floats]}``, in dataset order; vectors are
  L2-normalised (cosine = dot product) and written with 9 significant digits, which round-trips
  float32 exactly. ``<sha>`` is the first 16 hex digits of the SHA-256 of everything that
  determines the vectors (model id, weights hash, max_seq_length, the ids and texts), so a
  changed input or model never reuses a stale file, and an unchanged one is never recomputed.
- ``scifact-<model>.json``: a manifest naming the two files (a stable path for the Go side),
  with counts, dimension and timings.

A file is written under a temporary name and renamed when complete, so an interrupted run never
leaves a file that looks finished.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is read from its package; never from a hub

from modelserver.embedding import (
    DEFAULT_BATCH_SIZE,
    MODEL_ID,
    ModelFilesError,
    SentenceEncoder,
    default_threads,
    get_encoder,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = Path(os.environ.get("SCIFACT_DIR", REPO_ROOT.parent / "shared" / "datasets" / "scifact"))
DEFAULT_DATA_DIR = Path(os.environ.get("EVAL_DATA_DIR", REPO_ROOT / ".data"))
DATASET = "scifact"

console = Console(stderr=True, soft_wrap=True)


class UsageError(Exception):
    """A problem the user can fix; the message says how."""


@dataclass(frozen=True)
class Item:
    id: str
    text: str


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        raise UsageError(f"{path}:{number} is not valid JSON; is the dataset intact?") from None
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist; pass --dataset DIR (the BEIR SciFact directory).") from None


def load_corpus(dataset: Path) -> list[Item]:
    path = dataset / "corpus.jsonl.gz"
    if not path.exists():
        path = dataset / "corpus.jsonl"
    # BEIR's SentenceBERT wrapper: (title + sep + text).strip() with sep " ".
    return [Item(str(d["_id"]), (d.get("title", "") + " " + d.get("text", "")).strip()) for d in read_jsonl(path)]


def load_queries(dataset: Path) -> list[Item]:
    # queries-test.jsonl: the 300 test queries, _id and text only (no leaked gold metadata).
    return [Item(str(q["_id"]), q["text"]) for q in read_jsonl(dataset / "queries-test.jsonl")]


def fingerprint(encoder: SentenceEncoder, items: list[Item]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{MODEL_ID}\n{encoder.max_seq_length}\n".encode())
    digest.update(_file_sha256(encoder.spec.weights_path).encode())
    for item in items:
        digest.update(json.dumps([item.id, item.text], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def embed_to_file(
    encoder: SentenceEncoder,
    items: list[Item],
    path: Path,
    *,
    label: str,
    batch_size: int,
    threads: int,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    if path.exists():
        console.print(f"[green]cached[/] {label}: {path}")
        # Keep the timings of the run that computed the file.
        entry = dict(previous) if previous and previous.get("path") == path.name else {"path": path.name}
        return {**entry, "count": len(items), "cached": True}
    started = time.perf_counter()
    cpu_started = time.process_time()
    with Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(label, total=len(items), rate="")
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:.1f} texts/s")

        result = encoder.encode([i.text for i in items], batch_size=batch_size, threads=threads, progress=advance)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    with partial.open("w", encoding="utf-8") as out:
        for item, vector in zip(items, result.vectors.tolist(), strict=True):
            numbers = ",".join(f"{x:.9g}" for x in vector)
            out.write(f'{{"id":{json.dumps(item.id)},"vector":[{numbers}]}}\n')
    partial.replace(path)
    console.print(
        f"[green]embedded[/] {label}: {len(items)} texts, {result.total_tokens} tokens "
        f"({result.truncated} truncated to {encoder.max_seq_length}) in {seconds:.1f} s "
        f"({len(items) / seconds:.1f} texts/s; {cpu_seconds:.1f} CPU-seconds) -> {path}"
    )
    return {
        "path": path.name,
        "count": len(items),
        "cached": False,
        "seconds": round(seconds, 2),
        # CPU time of all threads: on a busy machine, cpu_seconds / threads is what an idle one takes.
        "cpu_seconds": round(cpu_seconds, 2),
        "threads": threads,
        "tokens": result.total_tokens,
        "truncated": result.truncated,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="embed_beir.py")
    parser.add_argument(
        "--dataset", type=Path, default=DEFAULT_DATASET, help=f"BEIR SciFact directory ({DEFAULT_DATASET})"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"cache root ({DEFAULT_DATA_DIR}); files go to <data-dir>/embeddings/",
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"texts per forward pass ({DEFAULT_BATCH_SIZE})"
    )
    parser.add_argument("--threads", type=int, default=default_threads(), help="worker threads (default: one per core)")
    parser.add_argument(
        "--limit", type=int, default=None, help="embed only the first N documents and queries (smoke test)"
    )
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except UsageError as exc:
        console.print(f"[red]embed_beir:[/] {exc}")
        return 2
    except ModelFilesError as exc:
        console.print(f"[red]embed_beir:[/] the embedding model cannot be loaded: {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]embed_beir: interrupted; finished files are kept, the rest is recomputed next time.[/]")
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or args.threads < 1:
        raise UsageError("--batch-size and --threads must be at least 1.")
    corpus = load_corpus(args.dataset)
    queries = load_queries(args.dataset)
    name = DATASET
    if args.limit is not None:
        corpus, queries, name = corpus[: args.limit], queries[: args.limit], f"{DATASET}-first{args.limit}"
    loaded = time.perf_counter()
    encoder = get_encoder()
    console.print(
        f"{MODEL_ID} ({encoder.dimension} dims, max {encoder.max_seq_length} tokens) loaded in "
        f"{time.perf_counter() - loaded:.1f} s; {len(corpus)} documents, {len(queries)} queries; "
        f"{args.threads} thread(s), batches of {args.batch_size}"
    )
    out_dir = args.data_dir / "embeddings"
    manifest_path = out_dir / f"{name}-{MODEL_ID}.json"
    try:
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    files = {}
    for label, items in (("corpus", corpus), ("queries", queries)):
        path = out_dir / f"{name}-{MODEL_ID}-{label}-{fingerprint(encoder, items)}.jsonl"
        files[label] = embed_to_file(
            encoder,
            items,
            path,
            label=label,
            batch_size=args.batch_size,
            threads=args.threads,
            previous=previous.get(label) if isinstance(previous, dict) else None,
        )
    manifest = {
        "dataset": name,
        "model": MODEL_ID,
        "dimension": encoder.dimension,
        "normalized": True,
        "max_seq_length": encoder.max_seq_length,
        "corpus": files["corpus"],
        "queries": files["queries"],
        "machine": {"cpus": default_threads(), "threads": args.threads, "python": platform.python_version()},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(manifest_path)  # stdout: the one line a Makefile or script needs
    return 0


if __name__ == "__main__":
    sys.exit(main())
