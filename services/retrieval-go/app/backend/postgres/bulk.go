package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// BulkLoad fills an empty (or new) collection with docs in one transaction
// through COPY, then builds its HNSW index once over all the vectors, which
// is much faster than Put's row-by-row inserts into a live graph. Every
// document is added at its given version. It is for loading a corpus before
// serving (benchmarks, drills, a first import), not for live writes.
func (b *Backend) BulkLoad(ctx context.Context, collection string, docs []index.Document) error {
	dim, err := index.ValidateDocumentsFor(collection, 0, docs)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		c, err := b.lockCollection(ctx, tx, collection)
		if err != nil {
			return err
		}
		if c.documents > 0 || c.dim != 0 {
			return fmt.Errorf("%w: bulk loading needs an empty collection; %q holds %d documents", index.ErrInvalid, collection, c.documents)
		}
		var added stats
		// In slices, so that memory stays bounded however large the corpus.
		for part := range slices.Chunk(docs, bulkSlice) {
			var docRows, postingRows bytes.Buffer
			for _, d := range part {
				if d.Vector != nil {
					d.Vector = index.Normalize(d.Vector)
				}
				a := analyzeDocument(b.opts.Analyzer, d)
				md, err := json.Marshal(cmpNil(d.Metadata))
				if err != nil {
					return err
				}
				vec := `\N`
				if d.Vector != nil {
					vec = vectorText(d.Vector)
					added.vectors++
				}
				cid := strconv.Itoa(int(c.id))
				copyRow(&docRows, cid, d.ID, strconv.FormatInt(d.Version, 10), d.Title, d.Text, string(md), strconv.Itoa(int(a.length)), vec)
				for i, t := range a.terms {
					copyRow(&postingRows, cid, t, d.ID, strconv.Itoa(int(a.tfs[i])), strconv.Itoa(int(a.length)))
				}
				added.documents++
				added.length += int64(a.length)
			}
			if err := copyIn(ctx, tx, &docRows, `COPY retrieval_documents (collection_id, doc_id, version, title, body, metadata, length, embedding) FROM STDIN`); err != nil {
				return fmt.Errorf("copy documents: %w", err)
			}
			if err := copyIn(ctx, tx, &postingRows, `COPY retrieval_postings (collection_id, term, doc_id, tf, doc_length) FROM STDIN`); err != nil {
				return fmt.Errorf("copy postings: %w", err)
			}
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(`+contentBytes+`), 0) FROM retrieval_documents WHERE collection_id = $1`, c.id).Scan(&added.bytes); err != nil {
			return err
		}
		if err := moveStats(ctx, tx, c.id, added); err != nil {
			return err
		}
		if dim == 0 {
			return nil
		}
		// The graph is built once, in memory when it fits.
		if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '1GB'`); err != nil {
			return err
		}
		return b.fixDimension(ctx, tx, c.id, dim)
	})
	if err != nil {
		return err
	}
	// VACUUM sets the pages all-visible and ANALYZE gives the planner
	// statistics, now rather than when autovacuum gets to them. Until then
	// every index-only scan of the postings checks the heap for each row: on
	// a fresh 100k load BM25 ran past the search deadline on most queries (the
	// retrieval drill failed 16 of 23 searches; the same queries took 0.1 s
	// once autovacuum had run).
	if err := b.vacuum(ctx); err != nil {
		return fmt.Errorf("vacuum after the bulk load: %w", err)
	}
	return nil
}

// bulkSlice is how many documents go to the server per COPY.
const bulkSlice = 4096

func cmpNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// copyEscaper escapes a field for COPY's text format.
var copyEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// copyRow appends one row in COPY's text format; a field `\N` is NULL.
func copyRow(buf *bytes.Buffer, fields ...string) {
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte('\t')
		}
		if f == `\N` {
			buf.WriteString(f)
			continue
		}
		copyEscaper.WriteString(buf, f) //nolint:errcheck // a bytes.Buffer does not fail
	}
	buf.WriteByte('\n')
}

func copyIn(ctx context.Context, tx pgx.Tx, r io.Reader, sql string) error {
	_, err := tx.Conn().PgConn().CopyFrom(ctx, r, sql)
	return err
}
