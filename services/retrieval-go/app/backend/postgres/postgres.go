// Package postgres is the retrieval index on PostgreSQL: documents and their
// vectors in pgvector (one HNSW index per collection), BM25 postings with
// term frequencies and per-collection length statistics kept in the same
// transactions as the documents, scored with the embedded engine's analyzer
// and formula, and hybrid search by the same reciprocal rank fusion. Any
// number of workers may serve one database at once: writers of a collection
// are serialised by its row lock, searches read one snapshot and never wait.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// Options configure a Backend.
type Options struct {
	// URL is a libpq connection URL or key=value string; PG* environment
	// variables (PGHOST, PGPASSWORD, ...) fill in what it leaves out, and
	// an empty URL means the environment alone. Pool settings go in the URL
	// (pool_max_conns=8).
	URL string
	// Index holds the analyzer and the ranking parameters; the same
	// defaults as the embedded engine apply.
	Index  index.Options
	Logger *slog.Logger
}

// Backend is the PostgreSQL implementation of backend.Backend.
type Backend struct {
	pool   *pgxpool.Pool
	opts   index.Options
	log    *slog.Logger
	upkeep *upkeep
}

var _ backend.Backend = (*Backend)(nil)

// ErrSchema is wrapped when the database's schema is missing or older than
// this worker's: run the migrate command first.
var ErrSchema = errors.New("the retrieval schema is not migrated")

// Connect opens a connection pool without checking the schema; Migrate and
// Open use it.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors can quote the URL, password included.
		return nil, errors.New("RETRIEVAL_DATABASE_URL is not a valid PostgreSQL connection URL or key=value string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot create a PostgreSQL pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s:%d: %s; check RETRIEVAL_DATABASE_URL (or PGHOST, PGPORT, PGUSER, PGPASSWORD)",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, connError(err))
	}
	return pool, nil
}

// connError is the server's or the network's reason, without the
// connection string pgx may put around it.
func connError(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) && connErr.Unwrap() != nil {
		return errors.Unwrap(connErr).Error()
	}
	return err.Error()
}

// Open connects, checks that the schema is migrated and that the stored
// analyzer settings are this worker's (the first worker records them), and
// returns the backend.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	ixOpts := opts.Index.WithDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	pool, err := Connect(ctx, opts.URL)
	if err != nil {
		return nil, err
	}
	b := &Backend{pool: pool, opts: ixOpts, log: log, upkeep: newUpkeep()}
	if err := b.check(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return b, nil
}

func (b *Backend) check(ctx context.Context) error {
	have, err := appliedVersion(ctx, b.pool)
	if err != nil {
		return err
	}
	if want := latestVersion(); have < want {
		return fmt.Errorf("%w: the database is at version %d, this worker needs %d; run retrieval-worker migrate", ErrSchema, have, want)
	}
	want, err := json.Marshal(b.opts.Analyzer.Config())
	if err != nil {
		return err
	}
	// Two workers starting at once: the second one's INSERT waits for the first one's row and
	// then does nothing, but its SELECT still reads the snapshot taken before that row was
	// committed, so it sees no row at all. A second statement takes a new snapshot and finds it.
	var stored string
	for attempt := 0; ; attempt++ {
		err = b.pool.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO retrieval_settings (name, value) VALUES ('analyzer', $1)
				ON CONFLICT (name) DO NOTHING RETURNING value)
			SELECT value FROM ins UNION ALL SELECT value FROM retrieval_settings WHERE name = 'analyzer'`,
			string(want)).Scan(&stored)
		if !errors.Is(err, pgx.ErrNoRows) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("read the index's analyzer settings: %w", err)
	}
	if stored != string(want) {
		return fmt.Errorf("the database's index was built with analyzer settings %s, this worker has %s; "+
			"start it with the same RETRIEVAL_STOP_WORDS and RETRIEVAL_STEMMER", stored, want)
	}
	return nil
}

// Pool is the backend's connection pool (for tests and bulk loading).
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

// Close stops a background vacuum and closes the pool.
func (b *Backend) Close() error {
	b.upkeep.close()
	b.pool.Close()
	return nil
}

// collectionRow is a collection's row: its id, dimension and statistics.
type collectionRow struct {
	id          int32
	dim         int
	documents   int64
	totalLength int64
	vectors     int64
}

const collectionColumns = `id, dimension, documents, total_length, vectors`

func (c *collectionRow) scan(row pgx.Row) error {
	return row.Scan(&c.id, &c.dim, &c.documents, &c.totalLength, &c.vectors)
}

// collection reads the named collection's row in q's snapshot, locking it
// for update when lock is set.
func (b *Backend) collection(ctx context.Context, q pgx.Tx, name string, lock bool) (collectionRow, error) {
	sql := `SELECT ` + collectionColumns + ` FROM retrieval_collections WHERE name = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var c collectionRow
	err := c.scan(q.QueryRow(ctx, sql, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%w: %q", index.ErrUnknownCollection, name)
	}
	return c, err
}

// Collections names every collection, in name order.
func (b *Backend) Collections(ctx context.Context) ([]string, error) {
	rows, err := b.pool.Query(ctx, `SELECT name FROM retrieval_collections ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Stats describes every collection, in name order, from the statistics its
// writers keep (no scan of the documents).
func (b *Backend) Stats(ctx context.Context) ([]backend.Stats, error) {
	rows, err := b.pool.Query(ctx, `SELECT name, documents, dimension, vectors, content_bytes FROM retrieval_collections ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (backend.Stats, error) {
		var s backend.Stats
		var docs, vectors int64
		if err := row.Scan(&s.Name, &docs, &s.Dimension, &vectors, &s.BytesOnDisk); err != nil {
			return s, err
		}
		s.Documents, s.Vectors = int(docs), int(vectors)
		s.VectorIndex = b.vectorIndex(vectors)
		if s.VectorIndex == index.VectorIndexHNSW {
			s.GraphNodes = s.Vectors
		}
		return s, nil
	})
}

// vectorIndex says how a collection with n vectors is searched: exactly up
// to ExactVectorLimit, as the embedded engine does, through HNSW beyond.
func (b *Backend) vectorIndex(n int64) string {
	switch {
	case n == 0:
		return index.VectorIndexNone
	case b.opts.ExactVectorLimit >= 0 && n <= int64(b.opts.ExactVectorLimit):
		return index.VectorIndexExact
	}
	return index.VectorIndexHNSW
}
