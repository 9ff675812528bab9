package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

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
