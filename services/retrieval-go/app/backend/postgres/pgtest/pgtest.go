// Package pgtest gives tests a fresh, migrated PostgreSQL database of their
// own on the server named by RETRIEVAL_TEST_DATABASE_URL, which `make
// test-go` starts (python -m devstack.scratchpg). Without the variable the
// tests that need it skip, saying so.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres"
)

// EnvURL names the variable holding the server's URL.
const EnvURL = "RETRIEVAL_TEST_DATABASE_URL"

// URL returns the server's URL, or skips the test when there is none.
func URL(t testing.TB) string {
	t.Helper()
	url, ok := lookupEnv(EnvURL)
	if !ok || url == "" {
		t.Skipf("%s is not set, so there is no PostgreSQL to test against; `make test-go` starts one (python -m devstack.scratchpg -- go test ...)", EnvURL)
	}
	return url
}

// Database creates an empty database for the test, dropped when it ends,
// and returns its URL; with migrate set, the retrieval schema is applied.
func Database(t testing.TB, migrate bool) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, URL(t))
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer admin.Close(ctx)
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "retrieval_test_" + hex.EncodeToString(suffix[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), URL(t))
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	cfg := admin.Config().Copy()
	cfg.Database = name
	url := pgxURL(cfg)
	if migrate {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if _, err := postgres.Migrate(ctx, pool); err != nil {
			t.Fatalf("migrate %s: %v", name, err)
		}
	}
	return url
}
