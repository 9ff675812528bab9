package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres"
	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres/pgtest"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

func TestMigrateIsIdempotentAndSerialised(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t, false)
	if _, err := postgres.Open(ctx, postgres.Options{URL: url}); !errors.Is(err, postgres.ErrSchema) {
		t.Fatalf("open before migrating: %v, want ErrSchema", err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Three migrators at once, as replicas of a hook Job might be.
	results := make([]postgres.MigrateResult, 3)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			if results[i], err = postgres.Migrate(ctx, pool); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	applied := 0
	for _, r := range results {
		applied += len(r.Applied)
	}
	if applied != 1 {
		t.Fatalf("the migrations were applied %d times in all, want once: %+v", applied, results)
	}
	again, err := postgres.Migrate(ctx, pool)
	if err != nil || len(again.Applied) != 0 || again.From != again.To {
		t.Fatalf("a second migrate: %+v, %v; want nothing applied", again, err)
	}
	b, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatalf("open after migrating: %v", err)
	}
	b.Close()
}

func TestOpenRefusesOtherAnalyzerSettings(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t, true)
	b, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	other := index.MustNewAnalyzer(index.AnalyzerConfig{Stemmer: index.StemmerNone})
	_, err = postgres.Open(ctx, postgres.Options{URL: url, Index: index.Options{Analyzer: other}})
	if err == nil || !strings.Contains(err.Error(), "RETRIEVAL_STEMMER") {
		t.Fatalf("open with other analyzer settings: %v, want a refusal naming the settings", err)
	}
}

func TestConnectErrorsHideThePassword(t *testing.T) {
	for _, url := range []string{
		"postgresql://user:s3cret-pw@127.0.0.1:1/db?connect_timeout=2",
		"postgresql://user:s3cret-pw@[::1/db",
	} {
		_, err := postgres.Connect(context.Background(), url)
		if err == nil {
			t.Fatalf("connect %q succeeded", url)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// TestBulkLoadEqualsPut loads one corpus by COPY and the same by Put into
// another database: statistics and rankings agree, and bulk loading refuses
// a collection that holds documents.
func TestBulkLoadEqualsPut(t *testing.T) {
	ctx := context.Background()
	docs := make([]index.Document, 300)
	for i := range docs {
		docs[i] = index.Document{
			ID: fmt.Sprintf("d%03d", i), Version: int64(1 + i%3), Title: fmt.Sprintf("title %d", i%7),
			Text:     strings.Repeat(fmt.Sprintf("alpha%d beta%d gamma\t%d\\ ", i%5, i%11, i%13), 1+i%4),
			Metadata: map[string]string{"shard": fmt.Sprint(i % 2)},
			// Distinct directions: with tied scores a graph may return any of
			// the tied documents, and the two databases' graphs differ.
			Vector: []float32{float32(i%5) + 1, float32(i % 7), float32(i % 3), float32(i) / 100},
		}
	}
	var bulkURL string
	open := func() *postgres.Backend {
		bulkURL = pgtest.Database(t, true)
		b, err := postgres.Open(ctx, postgres.Options{URL: bulkURL, Index: index.Options{ExactVectorLimit: -1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	bulk := open()
	if err := bulk.BulkLoad(ctx, "c", docs); err != nil {
		t.Fatal(err)
	}
	// The load leaves the tables vacuumed and analyzed (a fresh load without
	// it ran BM25 past the search deadline at 100k documents).
	if done := vacuumedTables(ctx, t, bulkURL); done != 2 {
		t.Errorf("tables vacuumed and analyzed after the bulk load: %d, want retrieval_documents and retrieval_postings", done)
	}
	put := open()
	if _, err := put.Put(ctx, "c", docs); err != nil {
		t.Fatal(err)
	}
	if err := bulk.BulkLoad(ctx, "c", docs[:1]); !errors.Is(err, index.ErrInvalid) {
		t.Errorf("bulk loading a collection with documents: %v, want ErrInvalid", err)
	}
	s1, _ := bulk.Stats(ctx)
	s2, _ := put.Stats(ctx)
	if fmt.Sprint(s1) != fmt.Sprint(s2) {
		t.Errorf("stats: bulk %+v, put %+v", s1, s2)
	}
	for _, q := range []index.Query{
		{Collection: "c", Text: "alpha3 gamma", TopK: 20},
		{Collection: "c", Text: "beta4", TopK: 20, Filters: map[string]string{"shard": "1"}},
		{Collection: "c", Vector: []float32{1, 2, 0, 1}, Mode: index.ModeVector, TopK: 5},
		{Collection: "c", Text: "title 3", Vector: []float32{3, 0, 1, 2}, TopK: 10},
	} {
		a, err1 := bulk.Search(ctx, q)
		b, err2 := put.Search(ctx, q)
		if err1 != nil || err2 != nil || fmt.Sprint(a) != fmt.Sprint(b) || len(a.Hits) == 0 {
			t.Errorf("query %+v: bulk %v (%v), put %v (%v)", q, a.Hits, err1, b.Hits, err2)
		}
	}
}

func TestLiveWritesVacuumTheIndexTablesInTheBackground(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t, true)
	b, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	put := func(from, to int) {
		t.Helper()
		for start := from; start < to; start += 500 {
			docs := make([]index.Document, 0, 500)
			for i := start; i < min(start+500, to); i++ {
				docs = append(docs, index.Document{ID: fmt.Sprintf("d%05d", i), Version: 1, Text: fmt.Sprintf("word%d common", i%97)})
			}
			if _, err := b.Put(ctx, "c", docs); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, postgres.VacuumAfterDocuments-1)
	// Unchanged documents are not counted: putting the same ones again writes nothing.
	put(0, postgres.VacuumAfterDocuments-1)
	time.Sleep(time.Second)
	if done := vacuumedTables(ctx, t, url); done != 0 {
		t.Fatalf("tables vacuumed before %d documents were written: %d", postgres.VacuumAfterDocuments, done)
	}
	put(postgres.VacuumAfterDocuments-1, postgres.VacuumAfterDocuments)
	deadline := time.Now().Add(30 * time.Second)
	for vacuumedTables(ctx, t, url) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the index tables were not vacuumed and analyzed within 30 s of the %dth document", postgres.VacuumAfterDocuments)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// vacuumedTables counts the two large index tables that VACUUM and ANALYZE
// have both visited.
func vacuumedTables(ctx context.Context, t *testing.T, url string) int {
	t.Helper()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	err = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_user_tables
		WHERE relname IN ('retrieval_documents', 'retrieval_postings') AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
