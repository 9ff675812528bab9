package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations are numbered SQL files applied in order, each in its own
// transaction, once: retrieval_schema_migrations records the applied ones.
// A released migration is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() []migration {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	var out []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			panic("migration file without a version prefix: " + e.Name())
		}
		sql, err := migrations.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(sql)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out
}

func latestVersion() int {
	ms := loadMigrations()
	return ms[len(ms)-1].version
}

// migrationLock is the advisory lock key that serialises migrators: two
// hook Jobs, or a Job and a developer, never apply one file twice.
const migrationLock = 0x7265747269657631 // "retriev1"

// MigrateResult says what Migrate did.
type MigrateResult struct {
	From, To int
	Applied  []string
}

// Migrate brings the schema to the newest version. Running it again, or
// from several processes at once, applies nothing twice.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (MigrateResult, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return MigrateResult{}, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return MigrateResult{}, fmt.Errorf("take the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock)) //nolint:errcheck // released with the session anyway
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS retrieval_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return MigrateResult{}, fmt.Errorf("create retrieval_schema_migrations: %w", err)
	}
	from, err := appliedVersion(ctx, conn)
	if err != nil {
		return MigrateResult{}, err
	}
	res := MigrateResult{From: from, To: from}
	for _, m := range loadMigrations() {
		if m.version <= from {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO retrieval_schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42501" {
				return res, fmt.Errorf("migration %s: %s; the migrating role needs the right to create the vector extension (or a superuser creates it first)", m.name, pgErr.Message)
			}
			return res, fmt.Errorf("migration %s: %w", m.name, err)
		}
		res.To = m.version
		res.Applied = append(res.Applied, m.name)
	}
	return res, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// appliedVersion is the newest applied migration, 0 for none.
func appliedVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM retrieval_schema_migrations`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	return v, nil
}
