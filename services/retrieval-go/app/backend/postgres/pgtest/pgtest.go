// Package pgtest gives tests a fresh database of their own on the
// PostgreSQL server named by RETRIEVAL_TEST_DATABASE_URL, which `make
// test-go` starts (python -m devstack.scratchpg). Without the variable the
// tests that need it skip, saying so.
package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres"
)

// EnvURL names the variable holding the server's URL.
const EnvURL = "RETRIEVAL_TEST_DATABASE_URL"

// URL returns the server's URL, or skips the test when there is none.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		t.Skipf("%s is not set, so there is no PostgreSQL to test against; `make test-go` starts one (python -m devstack.scratchpg -- go test ...)", EnvURL)
	}
	return url
}

// Database creates a database for the test, dropped when it ends, and
// returns its URL; with migrate set the retrieval schema is applied,
// otherwise the database is empty.
func Database(t testing.TB, migrate bool) string {
	t.Helper()
	ctx := context.Background()
	url, drop, err := postgres.ScratchDatabase(ctx, URL(t), "retrieval_test_", migrate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("drop the test database: %v", err)
		}
	})
	return url
}
