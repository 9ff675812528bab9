package bench

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// LoadReport says what LoadPostgres loaded, and the queries a drill can run
// against it.
type LoadReport struct {
	Collection string  `json:"collection"`
	Documents  int     `json:"documents"`
	Dimension  int     `json:"dimension"`
	Corpus     string  `json:"corpus"`
	Method     string  `json:"method"`
	Seconds    float64 `json:"seconds"`
	Queries    []Query `json:"queries"`
}

// Query is a search a drill sends: text for BM25 and hybrid, a vector for
// vector and hybrid.
type Query struct {
	Text   string    `json:"text"`
	Vector []float32 `json:"vector"`
}

// LoadPostgres generates the speed benchmark's corpus of n chunks and loads
// it into collection of the migrated database at url by bulk COPY (the
// documents analysed by the worker's analyzer, the HNSW index built once
// afterwards), not through the index operation: loading 100k chunks
// through Nexus would measure ingestion, which is not what the drill is
// about.
func LoadPostgres(ctx context.Context, url, collection string, n, queries int, cfg Config, opts index.Options) (*LoadReport, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(n)))
	docs := corpus(r, vocabulary(r, cfg.Vocabulary), n, cfg.Dimension)
	qs := makeQueries(r, docs, queries)
	b, err := postgres.Open(ctx, postgres.Options{URL: url, Index: opts, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	start := time.Now()
	if err := b.BulkLoad(ctx, collection, docs); err != nil {
		return nil, err
	}
	rep := &LoadReport{
		Collection: collection, Documents: n, Dimension: cfg.Dimension,
		Corpus:  "the speed benchmark's generated corpus: Zipf-distributed words (title 4-8, text 60-200 words), random unit vectors",
		Method:  "bulk COPY through the PostgreSQL backend (app/backend/postgres BulkLoad), the HNSW index built once after the rows",
		Seconds: time.Since(start).Seconds(),
	}
	for _, q := range qs {
		rep.Queries = append(rep.Queries, Query{Text: q.Text, Vector: q.Vector})
	}
	return rep, nil
}
