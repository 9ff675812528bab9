// Package bench measures the retrieval engine on generated corpora: indexing
// throughput, search latency per mode, memory, and the same searches by
// brute force (every document scored from its own term counts, every vector
// compared) in the same run, as the baseline the index must beat.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/eval"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// Config says what to measure.
type Config struct {
	Sizes      []int // corpus sizes in documents (chunks)
	Queries    int   // queries per size and mode
	Dimension  int
	Vocabulary int
	// DurableSizeLimit: sizes up to this are also indexed through the
	// journal (fsync per 256 documents) to measure durable throughput.
	DurableSizeLimit int
	Seed             uint64
	Logger           *slog.Logger
	// ExportDir, when set, receives each size's corpus and queries as JSON
	// lines (<dir>/<size>/corpus.jsonl: id and body, title and text as one
	// field; queries.jsonl: text) for a reference engine to index and run
	// (ops/bench/bm25_anchor.py, tantivy).
	ExportDir string
}

// Report is the benchmark's outcome, written as JSON.
type Report struct {
	Machine    Machine      `json:"machine"`
	Parameters Parameters   `json:"parameters"`
	Sizes      []SizeResult `json:"sizes"`
	Seconds    float64      `json:"seconds"`
}

// Machine describes where the numbers were measured.
type Machine struct {
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
}

// Parameters records the corpus and engine settings.
type Parameters struct {
	Queries          int     `json:"queries"`
	Dimension        int     `json:"dimension"`
	Vocabulary       int     `json:"vocabulary"`
	ZipfS            float64 `json:"zipf_s"`
	DocWords         string  `json:"doc_words"`
	QueryWords       string  `json:"query_words"`
	Vectors          string  `json:"vectors"`
	K1               float64 `json:"bm25_k1"`
	B                float64 `json:"bm25_b"`
	HNSWM            int     `json:"hnsw_m"`
	HNSWEfConstruct  int     `json:"hnsw_ef_construction"`
	HNSWEfSearch     int     `json:"hnsw_ef_search"`
	TopK             int     `json:"top_k"`
	RRFDepth         int     `json:"rrf_depth"`
	Seed             uint64  `json:"seed"`
	VectorSearchKind string  `json:"vector_search"`
}

// SizeResult holds the measurements at one corpus size.
type SizeResult struct {
	Documents            int     `json:"documents"`
	IndexSeconds         float64 `json:"index_seconds"`
	DocsPerSecond        float64 `json:"docs_per_second"`
	DurableDocsPerSecond float64 `json:"durable_docs_per_second,omitempty"`
	HeapInuseBytes       uint64  `json:"heap_inuse_bytes"`
	// HNSWRecallAt10 is the share of the exact top 10 that the graph finds.
	HNSWRecallAt10 float64 `json:"hnsw_recall_at_10"`
	// HNSWTop1Found is the share of queries whose exact nearest neighbour
	// (here: the document the query vector was made from) the graph returns
	// in its top 10.
	HNSWTop1Found float64               `json:"hnsw_top1_found"`
	Modes         map[string]ModeResult `json:"modes"`
}

// ModeResult compares one mode's indexed and brute-force latency.
type ModeResult struct {
	Indexed     eval.Latency `json:"indexed_ms"`
	BruteForce  eval.Latency `json:"brute_force_ms"`
	SpeedupP50  float64      `json:"speedup_p50"`
	SpeedupMean float64      `json:"speedup_mean"`
}

const (
	zipfS     = 1.1
	topK      = 10
	putBatch  = 256
	queryNear = 0.6 // weight of the source document's vector in a query vector
)

var modes = []index.Mode{index.ModeBM25, index.ModeVector, index.ModeHybrid}

// Run generates each corpus, indexes it and measures it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	opts := index.Options{ExactVectorLimit: -1}
	defaults := index.New(opts).Options()
	rep := &Report{
		Machine: Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version()},
		Parameters: Parameters{
			Queries: cfg.Queries, Dimension: cfg.Dimension, Vocabulary: cfg.Vocabulary, ZipfS: zipfS,
			DocWords:   "title 4-8 and text 60-200 words, Zipf-distributed over the vocabulary",
			QueryWords: "3-5 words drawn from one random document",
			Vectors:    fmt.Sprintf("random unit vectors; a query vector is %.1f·(its document's vector) + %.1f·(random unit vector), normalised", queryNear, 1-queryNear),
			K1:         defaults.K1, B: defaults.B,
			HNSWM: defaults.HNSW.M, HNSWEfConstruct: defaults.HNSW.EfConstruction, HNSWEfSearch: defaults.HNSW.EfSearch,
			TopK: topK, RRFDepth: defaults.RRFDepth, Seed: cfg.Seed, VectorSearchKind: "hnsw at every size (exact-search threshold disabled)",
		},
	}
	for _, n := range cfg.Sizes {
		res, err := runSize(ctx, cfg, n, opts, log)
		if err != nil {
			return nil, err
		}
		rep.Sizes = append(rep.Sizes, res)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// runSize generates a corpus of n documents and its queries, and measures
// indexing it (durably too, up to cfg.DurableSizeLimit), the heap it takes
// and every mode's searches, indexed and by brute force.
func runSize(ctx context.Context, cfg Config, n int, opts index.Options, log *slog.Logger) (SizeResult, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(n)))
	vocab := vocabulary(r, cfg.Vocabulary)
	docs := corpus(r, vocab, n, cfg.Dimension)
	queries := makeQueries(r, docs, cfg.Queries)
	log.Info("generated corpus", "documents", n)
	if cfg.ExportDir != "" {
		if err := export(filepath.Join(cfg.ExportDir, fmt.Sprint(n)), docs, queries); err != nil {
			return SizeResult{}, err
		}
	}

	res := SizeResult{Documents: n, Modes: make(map[string]ModeResult)}
	if n <= cfg.DurableSizeLimit {
		rate, err := putDurably(docs, opts)
		if err != nil {
			return res, err
		}
		res.DurableDocsPerSecond = rate
		log.Info("indexed durably", "documents", n, "docs_per_second", res.DurableDocsPerSecond)
	}

	ix := index.New(opts)
	runtime.GC()
	start := time.Now()
	for chunk := range slices.Chunk(docs, putBatch) {
		if _, err := ix.Put("bench", chunk, nil); err != nil {
			return res, err
		}
	}
	res.IndexSeconds = time.Since(start).Seconds()
	res.DocsPerSecond = float64(n) / res.IndexSeconds
	log.Info("indexed in memory", "documents", n, "seconds", res.IndexSeconds)
	docs = nil // so that the heap measured is the index's alone
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInuseBytes = ms.HeapInuse

	recall, top1 := 0.0, 0.0
	for _, mode := range modes {
		mr, modeRecall, modeTop1, err := measureMode(ctx, ix, queries, mode)
		if err != nil {
			return res, err
		}
		recall, top1 = recall+modeRecall, top1+modeTop1
		res.Modes[string(mode)] = mr
		log.Info("measured", "documents", n, "mode", mode, "p50_ms", mr.Indexed.P50, "brute_force_p50_ms", mr.BruteForce.P50)
	}
	res.HNSWRecallAt10 = recall / float64(len(queries))
	res.HNSWTop1Found = top1 / float64(len(queries))
	return res, nil
}

// putDurably indexes docs through a store in a temporary directory (the
// journal fsyncs once per batch of putBatch) and returns documents per
// second.
func putDurably(docs []index.Document, opts index.Options) (float64, error) {
	dir, err := os.MkdirTemp("", "retrieval-bench-")
	if err != nil {
		return 0, err
	}
	st, err := store.Open(dir, store.Options{Index: opts})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for chunk := range slices.Chunk(docs, putBatch) {
		if _, err := st.Put("bench", chunk); err != nil {
			return 0, err
		}
	}
	rate := float64(len(docs)) / time.Since(start).Seconds()
	st.Close()
	os.RemoveAll(dir)
	return rate, nil
}

// measureMode runs the queries in one mode, indexed and by brute force, and
// returns their latencies. For vector searches it also returns the summed
// recall at 10 of the graph and the number of queries whose exact nearest
// neighbour it found (both 0 for other modes).
func measureMode(ctx context.Context, ix *index.Index, queries []index.Query, mode index.Mode) (mr ModeResult, recall, top1 float64, err error) {
	var fast, slow []float64
	var fastTotal, slowTotal float64
	for _, q := range queries {
		q.Mode = mode
		t0 := time.Now()
		a, err := ix.Search(ctx, q)
		if err != nil {
			return mr, 0, 0, err
		}
		t1 := time.Now()
		b, err := ix.SearchBruteForce(ctx, q)
		if err != nil {
			return mr, 0, 0, err
		}
		t2 := time.Now()
		fast = append(fast, ms64(t1.Sub(t0)))
		slow = append(slow, ms64(t2.Sub(t1)))
		fastTotal += ms64(t1.Sub(t0))
		slowTotal += ms64(t2.Sub(t1))
		if mode == index.ModeVector {
			recall += overlap(a.Hits, b.Hits)
			if len(b.Hits) > 0 {
				top1 += overlap(a.Hits, b.Hits[:1])
			}
		}
	}
	mr = ModeResult{Indexed: eval.Summarize(fast), BruteForce: eval.Summarize(slow)}
	mr.SpeedupP50 = round2(mr.BruteForce.P50 / math.Max(mr.Indexed.P50, 1e-3))
	mr.SpeedupMean = round2(slowTotal / math.Max(fastTotal, 1e-3))
	return mr, recall, top1, nil
}

// export writes the corpus and the queries as JSON lines.
func export(dir string, docs []index.Document, queries []index.Query) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create export directory: %w", err)
	}
	write := func(name string, n int, line func(i int) any) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		enc := json.NewEncoder(w)
		for i := range n {
			if err := enc.Encode(line(i)); err != nil {
				f.Close()
				return fmt.Errorf("export %s: %w", name, err)
			}
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return fmt.Errorf("export %s: %w", name, err)
		}
		return f.Close()
	}
	if err := write("corpus.jsonl", len(docs), func(i int) any {
		return map[string]string{"id": docs[i].ID, "body": docs[i].Title + " " + docs[i].Text}
	}); err != nil {
		return err
	}
	return write("queries.jsonl", len(queries), func(i int) any { return map[string]string{"text": queries[i].Text} })
}

func ms64(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func overlap(got, want []index.Hit) float64 {
	if len(want) == 0 {
		return 1
	}
	ids := make(map[string]bool, len(want))
	for _, h := range want {
		ids[h.ID] = true
	}
	hit := 0
	for _, h := range got {
		if ids[h.ID] {
			hit++
		}
	}
	return float64(hit) / float64(len(want))
}

// vocabulary makes n distinct pronounceable pseudo-words.
func vocabulary(r *rand.Rand, n int) []string {
	const consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
	seen := make(map[string]bool, n)
	words := make([]string, 0, n)
	for len(words) < n {
		var b strings.Builder
		for range 2 + r.IntN(3) {
			b.WriteByte(consonants[r.IntN(len(consonants))])
			b.WriteByte(vowels[r.IntN(len(vowels))])
			if r.IntN(3) == 0 {
				b.WriteByte(consonants[r.IntN(len(consonants))])
			}
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return words
}

func corpus(r *rand.Rand, vocab []string, n, dim int) []index.Document {
	zipf := rand.NewZipf(r, zipfS, 1, uint64(len(vocab)-1))
	words := func(k int) string {
		var b strings.Builder
		for i := range k {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(vocab[zipf.Uint64()])
		}
		return b.String()
	}
	docs := make([]index.Document, n)
	for i := range docs {
		docs[i] = index.Document{
			ID:       fmt.Sprintf("doc-%07d", i),
			Version:  1,
			Title:    words(4 + r.IntN(5)),
			Text:     words(60 + r.IntN(141)),
			Metadata: map[string]string{"shard": fmt.Sprint(i % 8)},
			Vector:   unitVector(r, dim),
		}
	}
	return docs
}

func makeQueries(r *rand.Rand, docs []index.Document, n int) []index.Query {
	qs := make([]index.Query, n)
	for i := range qs {
		d := docs[r.IntN(len(docs))]
		fields := strings.Fields(d.Text)
		var picked []string
		for range 3 + r.IntN(3) {
			picked = append(picked, fields[r.IntN(len(fields))])
		}
		noise := unitVector(r, len(d.Vector))
		v := make([]float32, len(noise))
		for j := range v {
			v[j] = queryNear*d.Vector[j] + (1-queryNear)*noise[j]
		}
		qs[i] = index.Query{Collection: "bench", Text: strings.Join(picked, " "), Vector: v, TopK: topK}
	}
	return qs
}

func unitVector(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var norm float64
	for i := range v {
		x := r.NormFloat64()
		v[i] = float32(x)
		norm += x * x
	}
	inv := 1 / math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return v
}

// Table renders the report as a Markdown table.
func Table(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| documents | mode | p50 ms | p99 ms | brute-force p50 ms | brute-force p99 ms | speed-up (p50) |\n")
	fmt.Fprintf(&b, "|---:|---|---:|---:|---:|---:|---:|\n")
	for _, s := range rep.Sizes {
		for _, m := range modes {
			r := s.Modes[string(m)]
			fmt.Fprintf(&b, "| %d | %s | %.3f | %.3f | %.3f | %.3f | %.1f× |\n",
				s.Documents, m, r.Indexed.P50, r.Indexed.P99, r.BruteForce.P50, r.BruteForce.P99, r.SpeedupP50)
		}
	}
	fmt.Fprintf(&b, "\n| documents | indexing docs/s (memory) | indexing docs/s (durable) | heap in use MiB | HNSW recall@10 | HNSW finds the nearest |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range rep.Sizes {
		durable := "—"
		if s.DurableDocsPerSecond > 0 {
			durable = fmt.Sprintf("%.0f", s.DurableDocsPerSecond)
		}
		fmt.Fprintf(&b, "| %d | %.0f | %s | %.0f | %.3f | %.3f |\n", s.Documents, s.DocsPerSecond, durable, float64(s.HeapInuseBytes)/(1<<20), s.HNSWRecallAt10, s.HNSWTop1Found)
	}
	return b.String()
}
