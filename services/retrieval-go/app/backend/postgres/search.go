package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// ranked is a document id with its score during ranking.
type ranked struct {
	id    string
	score float64
}

// Search ranks the collection's documents as the embedded engine does. One
// read-only repeatable-read transaction holds the statistics, both rankings
// of a hybrid search and the hits' content to one snapshot, so a concurrent
// write is seen entirely or not at all.
func (b *Backend) Search(ctx context.Context, q index.Query) (index.Result, error) {
	mode, err := index.ResolveMode(q)
	if err != nil {
		return index.Result{}, err
	}
	var terms []string
	if mode != index.ModeVector {
		terms = b.opts.Analyzer.Terms(q.Text)
	}
	var qvec []float32
	if mode != index.ModeBM25 {
		if err := index.CheckVector(q.Vector); err != nil {
			return index.Result{}, fmt.Errorf("%w: query vector: %w", index.ErrInvalid, err)
		}
		qvec = index.Normalize(q.Vector)
	}
	var filter []byte
	if len(q.Filters) > 0 {
		if filter, err = json.Marshal(q.Filters); err != nil {
			return index.Result{}, err
		}
	}
	var out index.Result
	err = pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		c, err := b.collection(ctx, tx, q.Collection, false)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, searchWorkMem); err != nil {
			return err
		}
		if qvec != nil && c.dim != 0 && len(qvec) != c.dim {
			return fmt.Errorf("%w: the query vector has dimension %d; collection %q uses %d", index.ErrInvalid, len(qvec), q.Collection, c.dim)
		}
		limit := q.TopK
		if limit <= 0 {
			limit = int(c.documents)
		}
		var list []ranked
		switch mode {
		case index.ModeBM25:
			list, err = b.searchBM25(ctx, tx, c, terms, limit, filter)
		case index.ModeVector:
			list, err = b.searchVector(ctx, tx, c, qvec, limit, filter)
		case index.ModeHybrid:
			depth := max(limit, b.opts.RRFDepth)
			var lex, sem []ranked
			if lex, err = b.searchBM25(ctx, tx, c, terms, depth, filter); err == nil {
				if sem, err = b.searchVector(ctx, tx, c, qvec, depth, filter); err == nil {
					list = fuse(b.opts.RRFK, limit, lex, sem)
				}
			}
		}
		if err != nil {
			return err
		}
		hits, err := fetchHits(ctx, tx, c.id, list)
		out = index.Result{Hits: hits, TotalDocuments: int(c.documents), Mode: mode}
		return err
	})
	if err != nil {
		return index.Result{}, err
	}
	return out, nil
}

// queryTerms returns the distinct terms in first-occurrence order with
// their counts in the query (Anserini's bag-of-words boost, as embedded).
func queryTerms(terms []string) ([]string, []float64) {
	var distinct []string
	var counts []float64
	for _, t := range terms {
		if i := slices.Index(distinct, t); i >= 0 {
			counts[i]++
			continue
		}
		distinct = append(distinct, t)
		counts = append(counts, 1)
	}
	return distinct, counts
}

// bm25SQL scores documents with the embedded engine's formula,
//
//	Σ qtf(t) · ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5)) · f(t,d)·(k1+1) / (f(t,d) + k1·(1 - b + b·|d|/avgdl))
//
// from the postings of the query's terms. n(t) is counted over all of the
// term's postings before filters apply, as embedded, in this snapshot: a
// grouped count over the covering index, in index order, so that no sort of
// the postings is needed. %s is the filter's join, if any.
const bm25SQL = `
WITH q(term, qtf) AS (SELECT * FROM unnest($2::text[], $3::float8[])),
df AS (
	SELECT p.term, ln(1 + ($4::float8 - count(*) + 0.5) / (count(*) + 0.5)) AS idf
	FROM retrieval_postings p
	WHERE p.collection_id = $1 AND p.term = ANY($2::text[])
	GROUP BY p.term)
SELECT p.doc_id, sum(q.qtf * df.idf
	* p.tf * ($5::float8 + 1) / (p.tf + $5::float8 * (1 - $6::float8 + $6::float8 * p.doc_length / $7::float8))) AS score
FROM retrieval_postings p JOIN q ON q.term = p.term JOIN df ON df.term = p.term %s
WHERE p.collection_id = $1
GROUP BY p.doc_id
ORDER BY score DESC, p.doc_id
LIMIT $8::int`

// searchWorkMem lets a search hash its candidate documents in memory: the
// postings of common terms at 100k documents overflow the 4 MB default to
// disk, which made such a search several times slower.
const searchWorkMem = `SET LOCAL work_mem = '64MB'`

const filterJoin = `JOIN retrieval_documents d ON d.collection_id = $1 AND d.doc_id = p.doc_id AND d.metadata @> $9`

func (b *Backend) searchBM25(ctx context.Context, tx pgx.Tx, c collectionRow, terms []string, limit int, filter []byte) ([]ranked, error) {
	if c.documents == 0 || len(terms) == 0 || limit <= 0 {
		return nil, nil
	}
	distinct, qtf := queryTerms(terms)
	avgdl := float64(c.totalLength) / float64(c.documents)
	args := []any{c.id, distinct, qtf, float64(c.documents), b.opts.K1, b.opts.B, avgdl, limit}
	join := ""
	if filter != nil {
		join = filterJoin
		args = append(args, string(filter))
	}
	return collectRanked(tx.Query(ctx, fmt.Sprintf(bm25SQL, join), args...))
}

// searchVector ranks by cosine similarity (the negated inner product of unit
// vectors). Up to ExactVectorLimit vectors it compares every one, ordered
// by score and id (which no index serves, so none is used); beyond, it asks
// the collection's HNSW index with efSearch = max(EfSearch, limit), and with
// filters lets pgvector scan on (iterative scan, strict order) until enough
// rows match.
func (b *Backend) searchVector(ctx context.Context, tx pgx.Tx, c collectionRow, qvec []float32, limit int, filter []byte) ([]ranked, error) {
	if c.vectors == 0 || limit <= 0 {
		return nil, nil
	}
	// Literals, not parameters: the partial index is usable only when the
	// planner sees its predicate and expression, which a generic plan with
	// parameters would hide.
	expr := fmt.Sprintf(`embedding::vector(%d)`, c.dim)
	where := fmt.Sprintf(`collection_id = %d AND embedding IS NOT NULL`, c.id)
	args := []any{vectorText(qvec), limit}
	if filter != nil {
		where += ` AND metadata @> $3`
		args = append(args, string(filter))
	}
	score := fmt.Sprintf(`-(%s <#> $1::text::vector(%d))`, expr, c.dim)
	order := `score DESC, doc_id`
	if b.vectorIndex(c.vectors) == index.VectorIndexHNSW {
		order = fmt.Sprintf(`%s <#> $1::text::vector(%d)`, expr, c.dim)
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL hnsw.ef_search = %d`, min(max(b.opts.HNSW.EfSearch, limit), 1000))); err != nil {
			return nil, err
		}
		if filter != nil {
			if _, err := tx.Exec(ctx, `SET LOCAL hnsw.iterative_scan = strict_order`); err != nil {
				return nil, err
			}
		}
		// The graph was chosen above, by the same rule as the embedded
		// engine; the planner's estimate must not swap it for an exact scan
		// (it does for a few thousand rows). Only this statement is affected.
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return nil, err
		}
		defer tx.Exec(context.WithoutCancel(ctx), `RESET enable_seqscan`) //nolint:errcheck // a failed transaction ends anyway
	}
	list, err := collectRanked(tx.Query(ctx, fmt.Sprintf(`SELECT doc_id, %s AS score FROM retrieval_documents WHERE %s ORDER BY %s LIMIT $2`,
		score, where, order), args...))
	if err != nil {
		return nil, err
	}
	// The graph's order is by distance alone; ties go by id, as embedded.
	sortRanked(list)
	return list, nil
}

func collectRanked(rows pgx.Rows, err error) ([]ranked, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ranked, error) {
		var r ranked
		return r, row.Scan(&r.id, &r.score)
	})
}

func sortRanked(list []ranked) {
	slices.SortStableFunc(list, func(a, b ranked) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
}

// fuse merges rankings by reciprocal rank fusion, score(d) = Σ 1/(k + rank),
// ranks from 1, keeping the best limit.
func fuse(k, limit int, lists ...[]ranked) []ranked {
	scores := make(map[string]float64)
	for _, list := range lists {
		for rank, r := range list {
			scores[r.id] += 1 / float64(k+rank+1)
		}
	}
	out := make([]ranked, 0, len(scores))
	for id, s := range scores {
		out = append(out, ranked{id: id, score: s})
	}
	sortRanked(out)
	return out[:min(limit, len(out))]
}

// fetchHits reads the ranked documents' content.
func fetchHits(ctx context.Context, tx pgx.Tx, cid int32, list []ranked) ([]index.Hit, error) {
	if len(list) == 0 {
		return []index.Hit{}, nil
	}
	ids := make([]string, len(list))
	for i, r := range list {
		ids[i] = r.id
	}
	rows, err := tx.Query(ctx, `SELECT doc_id, version, title, body, metadata FROM retrieval_documents WHERE collection_id = $1 AND doc_id = ANY($2)`, cid, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]index.Hit, len(list))
	var h index.Hit
	if _, err := pgx.ForEachRow(rows, []any{&h.ID, &h.Version, &h.Title, &h.Text, &h.Metadata}, func() error {
		byID[h.ID] = h
		h.Metadata = nil // the next row scans into a new map
		return nil
	}); err != nil {
		return nil, err
	}
	hits := make([]index.Hit, 0, len(list))
	for _, r := range list {
		hit, ok := byID[r.id]
		if !ok {
			return nil, fmt.Errorf("document %q was ranked but is not in the snapshot", r.id)
		}
		hit.Score = r.score
		hits = append(hits, hit)
	}
	return hits, nil
}
