package eval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// Config says what to evaluate.
type Config struct {
	DatasetDir string
	// DocEmbeddings and QueryEmbeddings are JSON-lines embedding files
	// (LoadEmbeddings); without both, only BM25 is evaluated.
	DocEmbeddings, QueryEmbeddings string
	// DataDir is where the index is built; empty means a temporary
	// directory, removed afterwards. It must not hold an index already.
	DataDir string
	Index   index.Options
	Logger  *slog.Logger
}

// Report is the evaluation's outcome, written as JSON.
type Report struct {
	Dataset      string                `json:"dataset"`
	Documents    int                   `json:"documents"`
	Queries      int                   `json:"queries"`
	Judgments    int                   `json:"judgments"`
	Settings     Settings              `json:"settings"`
	IndexSeconds float64               `json:"index_seconds"`
	Results      map[string]ModeResult `json:"results"`
}

// Settings records the parameters the numbers were measured with.
type Settings struct {
	K1               float64 `json:"bm25_k1"`
	B                float64 `json:"bm25_b"`
	Field            string  `json:"bm25_field"`
	StopWords        string  `json:"stop_words"`
	Stemmer          string  `json:"stemmer"`
	RRFK             int     `json:"rrf_k"`
	RRFDepth         int     `json:"rrf_depth"`
	Dimension        int     `json:"vector_dimension,omitempty"`
	VectorIndex      string  `json:"vector_index,omitempty"`
	ExactVectorLimit int     `json:"exact_vector_limit"`
	HNSWM            int     `json:"hnsw_m"`
	HNSWEfConstruct  int     `json:"hnsw_ef_construction"`
	HNSWEfSearch     int     `json:"hnsw_ef_search"`
	Ranking          string  `json:"ranking"`
}

// ModeResult holds one mode's means over the queries.
type ModeResult struct {
	NDCG10    float64 `json:"ndcg@10"`
	Recall100 float64 `json:"recall@100"`
	Queries   int     `json:"queries"`
	LatencyMs Latency `json:"latency_ms"`
}

// Latency summarises per-query search times.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
}

const (
	putBatch = 256
	depth    = 100
)

// Run builds the index from the dataset and evaluates every mode it can.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ds, err := LoadDataset(cfg.DatasetDir)
	if err != nil {
		return nil, err
	}
	var docVecs, queryVecs map[string][]float32
	dim := 0
	switch {
	case cfg.DocEmbeddings != "" && cfg.QueryEmbeddings != "":
		if docVecs, dim, err = LoadEmbeddings(cfg.DocEmbeddings); err != nil {
			return nil, fmt.Errorf("document embeddings: %w", err)
		}
		var qdim int
		if queryVecs, qdim, err = LoadEmbeddings(cfg.QueryEmbeddings); err != nil {
			return nil, fmt.Errorf("query embeddings: %w", err)
		}
		if qdim != dim {
			return nil, fmt.Errorf("query embeddings have dimension %d, document embeddings %d", qdim, dim)
		}
		for _, q := range ds.Queries {
			if queryVecs[q.ID] == nil {
				return nil, fmt.Errorf("query %q has no embedding in %s", q.ID, cfg.QueryEmbeddings)
			}
		}
	case cfg.DocEmbeddings != "" || cfg.QueryEmbeddings != "":
		return nil, errors.New("give both document and query embeddings, or neither")
	}

	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "retrieval-eval-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return nil, fmt.Errorf("data directory %s is not empty; give an empty or new one", dir)
	}
	st, err := store.Open(dir, store.Options{Index: cfg.Index, Logger: log})
	if err != nil {
		return nil, err
	}
	defer st.Close()

	start := time.Now()
	const collection = "beir"
	for chunk := range slices.Chunk(ds.Corpus, putBatch) {
		docs := make([]index.Document, len(chunk))
		for i, d := range chunk {
			docs[i] = index.Document{ID: d.ID, Version: 1, Title: d.Title, Text: d.Text}
			if docVecs != nil {
				if docs[i].Vector = docVecs[d.ID]; docs[i].Vector == nil {
					return nil, fmt.Errorf("document %q has no embedding in %s", d.ID, cfg.DocEmbeddings)
				}
			}
		}
		if _, err := st.Put(collection, docs); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
	}
	indexSeconds := time.Since(start).Seconds()
	log.Info("indexed the corpus", "documents", len(ds.Corpus), "seconds", indexSeconds)

	opts := st.Index().Options()
	an := st.Index().Analyzer().Config()
	rep := &Report{
		Dataset:      filepath.Base(filepath.Clean(cfg.DatasetDir)),
		Documents:    len(ds.Corpus),
		Queries:      len(ds.Queries),
		IndexSeconds: indexSeconds,
		Results:      make(map[string]ModeResult),
		Settings: Settings{
			K1: opts.K1, B: opts.B, Field: "title and text as one field",
			StopWords: an.StopWords, Stemmer: an.Stemmer, RRFK: opts.RRFK, RRFDepth: opts.RRFDepth,
			Dimension: dim, ExactVectorLimit: opts.ExactVectorLimit,
			HNSWM: opts.HNSW.M, HNSWEfConstruct: opts.HNSW.EfConstruction, HNSWEfSearch: opts.HNSW.EfSearch,
			Ranking: "score descending, ties by document id ascending",
		},
	}
	for _, q := range ds.Qrels {
		rep.Judgments += len(q)
	}
	if dim > 0 {
		rep.Settings.VectorIndex = st.Stats()[0].VectorIndex
	}
	modes := []index.Mode{index.ModeBM25}
	if queryVecs != nil {
		modes = append(modes, index.ModeVector, index.ModeHybrid)
	}
	for _, mode := range modes {
		res, err := evaluate(ctx, st.Index(), collection, mode, ds, queryVecs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		rep.Results[string(mode)] = res
		log.Info("evaluated", "mode", mode, "ndcg@10", res.NDCG10, "recall@100", res.Recall100)
	}
	return rep, nil
}

func evaluate(ctx context.Context, ix *index.Index, collection string, mode index.Mode, ds *Dataset, vecs map[string][]float32) (ModeResult, error) {
	var res ModeResult
	times := make([]float64, 0, len(ds.Queries))
	for _, q := range ds.Queries {
		query := index.Query{Collection: collection, Text: q.Text, Mode: mode, TopK: depth}
		if mode != index.ModeBM25 {
			query.Vector = vecs[q.ID]
		}
		start := time.Now()
		out, err := ix.Search(ctx, query)
		if err != nil {
			return ModeResult{}, fmt.Errorf("query %q: %w", q.ID, err)
		}
		times = append(times, float64(time.Since(start).Microseconds())/1000)
		ranked := make([]string, len(out.Hits))
		for i, h := range out.Hits {
			ranked[i] = h.ID
		}
		res.NDCG10 += NDCG(ranked, ds.Qrels[q.ID], 10)
		res.Recall100 += Recall(ranked, ds.Qrels[q.ID], 100)
	}
	n := float64(len(ds.Queries))
	res.NDCG10 /= n
	res.Recall100 /= n
	res.Queries = len(ds.Queries)
	res.LatencyMs = Summarize(times)
	return res, nil
}

// Summarize returns the median, 99th percentile (nearest rank) and mean of
// samples.
func Summarize(samples []float64) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	s := slices.Sorted(slices.Values(samples))
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	rank := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Latency{P50: rank(0.5), P99: rank(0.99), Mean: sum / float64(len(s))}
}
