package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres"
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
	// Backend is backend.Embedded (default) or backend.Postgres; the latter
	// builds the index in a new database on the server at DatabaseURL,
	// dropped afterwards.
	Backend     string
	DatabaseURL string
	Index       index.Options
	Logger      *slog.Logger
}

// Report is the evaluation's outcome, written as JSON.
type Report struct {
	Backend      string                `json:"backend"`
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

// corpusCollection is the collection the dataset's corpus is indexed into.
const corpusCollection = "beir"

// embeddings are a dataset's vectors by document and query id; both maps are
// nil, and the dimension 0, when only BM25 is evaluated.
type embeddings struct {
	docs, queries map[string][]float32
	dim           int
}

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
	emb, err := loadEmbeddings(cfg, ds.Queries)
	if err != nil {
		return nil, err
	}
	st, closeBackend, err := openBackend(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer closeBackend()

	start := time.Now()
	if err := indexCorpus(ctx, st, ds.Corpus, emb.docs, cfg.DocEmbeddings); err != nil {
		return nil, err
	}
	indexSeconds := time.Since(start).Seconds()
	log.Info("indexed the corpus", "documents", len(ds.Corpus), "seconds", indexSeconds)

	rep, err := newReport(ctx, cfg, ds, st, emb.dim, indexSeconds)
	if err != nil {
		return nil, err
	}
	modes := []index.Mode{index.ModeBM25}
	if emb.queries != nil {
		modes = append(modes, index.ModeVector, index.ModeHybrid)
	}
	for _, mode := range modes {
		res, err := evaluate(ctx, st, corpusCollection, mode, ds, emb.queries)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		rep.Results[string(mode)] = res
		log.Info("evaluated", "mode", mode, "ndcg@10", res.NDCG10, "recall@100", res.Recall100)
	}
	return rep, nil
}

// loadEmbeddings loads the embedding files cfg names, both or neither. It
// checks them before anything is indexed: the dimensions agree and every
// query has a vector.
func loadEmbeddings(cfg Config, queries []Query) (embeddings, error) {
	var emb embeddings
	switch {
	case cfg.DocEmbeddings != "" && cfg.QueryEmbeddings != "":
		var err error
		if emb.docs, emb.dim, err = LoadEmbeddings(cfg.DocEmbeddings); err != nil {
			return embeddings{}, fmt.Errorf("document embeddings: %w", err)
		}
		var qdim int
		if emb.queries, qdim, err = LoadEmbeddings(cfg.QueryEmbeddings); err != nil {
			return embeddings{}, fmt.Errorf("query embeddings: %w", err)
		}
		if qdim != emb.dim {
			return embeddings{}, fmt.Errorf("query embeddings have dimension %d, document embeddings %d", qdim, emb.dim)
		}
		for _, q := range queries {
			if emb.queries[q.ID] == nil {
				return embeddings{}, fmt.Errorf("query %q has no embedding in %s", q.ID, cfg.QueryEmbeddings)
			}
		}
	case cfg.DocEmbeddings != "" || cfg.QueryEmbeddings != "":
		return embeddings{}, errors.New("give both document and query embeddings, or neither")
	}
	return emb, nil
}

// openBackend opens an empty index in the configured backend and returns
// it with the function that closes it and removes what it held.
func openBackend(ctx context.Context, cfg Config, log *slog.Logger) (backend.Backend, func(), error) {
	if cfg.Backend == backend.Postgres {
		url, drop, err := postgres.ScratchDatabase(ctx, cfg.DatabaseURL, "retrieval_eval_", true)
		if err != nil {
			return nil, nil, err
		}
		b, err := postgres.Open(ctx, postgres.Options{URL: url, Index: cfg.Index, Logger: log})
		if err != nil {
			_ = drop()
			return nil, nil, err
		}
		return b, func() {
			b.Close()
			if err := drop(); err != nil {
				log.Warn("dropping the evaluation database failed", "error", err)
			}
		}, nil
	}
	dir, removeDir, err := indexDir(cfg.DataDir)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(dir, store.Options{Index: cfg.Index, Logger: log})
	if err != nil {
		removeDir()
		return nil, nil, err
	}
	return backend.EmbeddedStore{Store: st}, func() { st.Close(); removeDir() }, nil
}

// indexDir returns the directory to build the index in, and a function that
// removes it if it is a temporary one. A given directory must be empty or
// new, so that no earlier index skews the numbers.
func indexDir(dir string) (string, func(), error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "retrieval-eval-")
		if err != nil {
			return "", nil, err
		}
		return tmp, func() { os.RemoveAll(tmp) }, nil
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return "", nil, fmt.Errorf("data directory %s is not empty; give an empty or new one", dir)
	}
	return dir, func() {}, nil
}

// indexCorpus puts the corpus into the collection in batches of putBatch
// documents, each with its vector from docVecs (read from docVecsPath) when
// there are vectors.
func indexCorpus(ctx context.Context, st backend.Backend, corpus []CorpusDoc, docVecs map[string][]float32, docVecsPath string) error {
	for chunk := range slices.Chunk(corpus, putBatch) {
		docs := make([]index.Document, len(chunk))
		for i, d := range chunk {
			docs[i] = index.Document{ID: d.ID, Version: 1, Title: d.Title, Text: d.Text}
			if docVecs != nil {
				if docs[i].Vector = docVecs[d.ID]; docs[i].Vector == nil {
					return fmt.Errorf("document %q has no embedding in %s", d.ID, docVecsPath)
				}
			}
		}
		if _, err := st.Put(ctx, corpusCollection, docs); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}

// newReport describes the dataset and the settings the index was built
// with; the modes' results are added as they are measured.
func newReport(ctx context.Context, cfg Config, ds *Dataset, st backend.Backend, dim int, indexSeconds float64) (*Report, error) {
	opts := cfg.Index.WithDefaults()
	an := opts.Analyzer.Config()
	rep := &Report{
		Backend:      cmp.Or(cfg.Backend, backend.Embedded),
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
		stats, err := st.Stats(ctx)
		if err != nil {
			return nil, err
		}
		rep.Settings.VectorIndex = stats[0].VectorIndex
	}
	return rep, nil
}

func evaluate(ctx context.Context, ix backend.Backend, collection string, mode index.Mode, ds *Dataset, vecs map[string][]float32) (ModeResult, error) {
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
