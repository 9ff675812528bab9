package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// RestartReport measures how soon a restarted worker serves searches over a
// large collection: with the HNSW graph saved next to the snapshot, and, as
// the baseline in the same run, with that file removed so that the graph is
// rebuilt from the vectors (what every start did before graphs were saved).
type RestartReport struct {
	Machine   Machine `json:"machine"`
	Documents int     `json:"documents"`
	Dimension int     `json:"dimension"`
	Corpus    string  `json:"corpus"`
	// IngestDocsPerSecond is durable indexing through the store (journal,
	// fsync per batch of 256, graph insertion), from empty to Documents.
	IngestDocsPerSecond float64      `json:"ingest_docs_per_second"`
	SnapshotBytes       int64        `json:"snapshot_bytes"`
	GraphFileBytes      int64        `json:"graph_file_bytes"`
	Saved               RestartTimes `json:"saved_graph"`
	Rebuilt             RestartTimes `json:"rebuilt_graph"`
	Seconds             float64      `json:"seconds"`
	// LoadAverage is /proc/loadavg before the restarts: the times are wall
	// clock, and the machine may be shared.
	LoadAverage string `json:"load_average,omitempty"`
}

// RestartTimes are seconds from the start of store.Open.
type RestartTimes struct {
	// Open is when Open returned: the worker can poll its task queue.
	Open float64 `json:"open_seconds"`
	// OpenCPU is the CPU time the process used until then, on all cores:
	// the figure that does not depend on what else the machine runs.
	OpenCPU float64 `json:"open_cpu_seconds"`
	// FirstSearch is when the first hybrid search (top 10) had returned.
	FirstSearch float64 `json:"first_search_seconds"`
	// FirstSearchMs is that search's own latency.
	FirstSearchMs float64 `json:"first_search_ms"`
	// GraphReady is when every vector was in the graph again.
	GraphReady float64 `json:"graph_ready_seconds"`
}

// Restart indexes n generated chunks durably, compacts, and reopens the
// directory twice: with the saved graph and without it.
func Restart(ctx context.Context, n int, cfg Config) (*RestartReport, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(n)))
	docs := corpus(r, vocabulary(r, cfg.Vocabulary), n, cfg.Dimension)
	queries := makeQueries(r, docs, 1)
	rep := &RestartReport{
		Machine:   Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()},
		Documents: n, Dimension: cfg.Dimension,
		Corpus: "the speed benchmark's corpus (Zipf words, random unit vectors), one collection, HNSW at every size",
	}
	dir, err := os.MkdirTemp("", "retrieval-restart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts := store.Options{Index: index.Options{ExactVectorLimit: -1}}

	st, err := store.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	for chunk := range slices.Chunk(docs, putBatch) {
		if _, err := st.Put("bench", chunk); err != nil {
			st.Close()
			return nil, err
		}
	}
	rep.IngestDocsPerSecond = float64(n) / time.Since(t0).Seconds()
	log.Info("indexed durably", "documents", n, "docs_per_second", rep.IngestDocsPerSecond)
	docs = nil
	if err := st.Compact(); err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	rep.SnapshotBytes = fileBytes(filepath.Join(dir, "snapshot"))
	rep.GraphFileBytes = fileBytes(filepath.Join(dir, "graph"))

	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.LoadAverage = strings.TrimSpace(string(b))
	}
	for _, saved := range []bool{true, false} {
		if !saved {
			if err := os.Remove(filepath.Join(dir, "graph")); err != nil {
				return nil, fmt.Errorf("remove the graph file for the rebuild baseline: %w", err)
			}
		}
		runtime.GC()
		times, err := timeRestart(ctx, dir, opts, queries[0])
		if err != nil {
			return nil, err
		}
		if saved {
			rep.Saved = times
		} else {
			rep.Rebuilt = times
		}
		log.Info("restarted", "saved_graph", saved, "open_s", times.Open, "first_search_s", times.FirstSearch, "graph_ready_s", times.GraphReady)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func timeRestart(ctx context.Context, dir string, opts store.Options, q index.Query) (RestartTimes, error) {
	var t RestartTimes
	start, cpu := time.Now(), CPUSeconds()
	st, err := store.Open(dir, opts)
	if err != nil {
		return t, err
	}
	defer st.Close()
	t.Open, t.OpenCPU = time.Since(start).Seconds(), CPUSeconds()-cpu
	q.Mode = index.ModeHybrid
	s0 := time.Now()
	if _, err := st.Search(ctx, q); err != nil {
		return t, err
	}
	t.FirstSearchMs = ms64(time.Since(s0))
	t.FirstSearch = time.Since(start).Seconds()
	st.WaitForGraphs()
	t.GraphReady = time.Since(start).Seconds()
	return t, nil
}

// CPUSeconds is the CPU time the process has used so far, user and system,
// on all cores.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func fileBytes(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// RestartTable renders the report as Markdown.
func RestartTable(rep *RestartReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d chunks, %d dimensions; durable ingestion %.0f docs/s; snapshot %.0f MiB, graph file %.0f MiB\n\n",
		rep.Documents, rep.Dimension, rep.IngestDocsPerSecond, float64(rep.SnapshotBytes)/(1<<20), float64(rep.GraphFileBytes)/(1<<20))
	fmt.Fprintf(&b, "| start | open s | open CPU s | first search served s | first search ms | graph complete s |\n|---|---:|---:|---:|---:|---:|\n")
	for _, row := range []struct {
		name string
		t    RestartTimes
	}{{"saved graph", rep.Saved}, {"graph rebuilt (file removed)", rep.Rebuilt}} {
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.1f | %.2f |\n", row.name, row.t.Open, row.t.OpenCPU, row.t.FirstSearch, row.t.FirstSearchMs, row.t.GraphReady)
	}
	fmt.Fprintf(&b, "\ngraph complete: %.1fx sooner with the saved graph; load average before: %s\n", rep.Rebuilt.GraphReady/max(rep.Saved.GraphReady, 1e-3), rep.LoadAverage)
	return b.String()
}
