#!/usr/bin/env bash
# make bench-ann: this repository's HNSW graph against hnswlib and faiss on the same vectors.
# 1. SciFact embeddings as make eval-retrieval computes them (ops/bench/embed_beir.py, cached in .data);
# 2. cmd/retrieval-ann writes every data set with its exact top 10 to .data/ann and measures our graph;
# 3. ops/bench/ann_bench.py measures hnswlib and faiss on those files (pinned in requirements-reference.txt,
#    in a throw-away uv environment) and writes bench/results/ann.json with a table of ratios.
# ANN_N and ANN_QUERIES size the synthetic sets (default 100000 and 1000); ANN_DATASETS picks sets.
set -euo pipefail
cd "$(dirname "$0")/../.."
dataset=${SCIFACT_DIR:-../shared/datasets/scifact}
python=${PYTHON:-.venv/bin/python}
go=${GO:-go}
uv=${UV:-uv}
datasets=${ANN_DATASETS:-scifact,structured,random}
args=()
if [[ ,$datasets, == *,scifact,* ]]; then
  [[ -d $dataset ]] || { echo "bench-ann: no BEIR SciFact at $dataset; set SCIFACT_DIR or ANN_DATASETS=structured,random" >&2; exit 1; }
  manifest=$("$python" ops/bench/embed_beir.py --dataset "$dataset" | tail -n 1)
  dir=$(dirname "$manifest")
  read -r corpus queries < <("$python" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["corpus"]["path"], m["queries"]["path"])' "$manifest")
  args+=(-scifact-corpus "$dir/$corpus" -scifact-queries "$dir/$queries")
fi
"$go" run ./services/retrieval-go/cmd/retrieval-ann -datasets "$datasets" -n "${ANN_N:-100000}" -queries "${ANN_QUERIES:-1000}" \
  -data-dir .data/ann -o .data/ann/ours.json "${args[@]}"
"$uv" run --no-project --with-requirements ops/bench/requirements-reference.txt \
  python ops/bench/ann_bench.py --go-report .data/ann/ours.json -o "${ANN_OUT:-bench/results/ann.json}"
