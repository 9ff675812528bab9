package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// contentBytes is what a document's row holds, for Stats.BytesOnDisk.
const contentBytes = `octet_length(title) + octet_length(body) + octet_length(metadata::text) + 4 * coalesce(vector_dims(embedding), 0)`

// CreateCollection creates the collection if it does not exist. A dimension
// given here, or later by the first vector, creates its HNSW index.
func (b *Backend) CreateCollection(ctx context.Context, name string, dim int) error {
	if name == "" {
		return fmt.Errorf("%w: collection name must not be empty", index.ErrInvalid)
	}
	if dim < 0 {
		return fmt.Errorf("%w: vector dimension must not be negative", index.ErrInvalid)
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		c, err := b.lockCollection(ctx, tx, name)
		if err != nil {
			return err
		}
		switch {
		case dim == 0 || c.dim == dim:
			return nil
		case c.dim != 0:
			return fmt.Errorf("%w: collection %q has vector dimension %d, not %d", index.ErrInvalid, name, c.dim, dim)
		}
		return b.fixDimension(ctx, tx, c.id, dim)
	})
}

// lockCollection creates the collection if needed and locks its row until
// the transaction ends: the writers of one collection take turns, so the
// version checks and the statistics they update never race.
func (b *Backend) lockCollection(ctx context.Context, tx pgx.Tx, name string) (collectionRow, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO retrieval_collections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return collectionRow{}, err
	}
	return b.collection(ctx, tx, name, true)
}

// fixDimension records the collection's vector dimension and builds its
// HNSW index: a partial expression index, because the documents of every
// collection share one table and only one collection's vectors have this
// dimension. The collection id is a literal so that the planner can match
// the index's predicate. M and efConstruction are the embedded graph's
// (pgvector, like it, keeps 2·M links on layer 0).
func (b *Backend) fixDimension(ctx context.Context, tx pgx.Tx, id int32, dim int) error {
	if _, err := tx.Exec(ctx, `UPDATE retrieval_collections SET dimension = $2 WHERE id = $1`, id, dim); err != nil {
		return err
	}
	p := b.opts.HNSW
	_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON retrieval_documents
		USING hnsw ((embedding::vector(%d)) vector_ip_ops) WITH (m = %d, ef_construction = %d)
		WHERE collection_id = %d`, vectorIndexName(id), dim, p.M, p.EfConstruction, id))
	if err != nil {
		return fmt.Errorf("create the HNSW index of collection %d: %w", id, err)
	}
	return nil
}

func vectorIndexName(id int32) string { return "retrieval_vectors_" + strconv.Itoa(int(id)) }

// ValidateDocuments checks docs against the collection's dimension.
func (b *Backend) ValidateDocuments(ctx context.Context, collection string, docs []index.Document) error {
	var dim int
	err := b.pool.QueryRow(ctx, `SELECT dimension FROM retrieval_collections WHERE name = $1`, collection).Scan(&dim)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	_, err = index.ValidateDocumentsFor(collection, dim, docs)
	return err
}

// analyzed is a document with its term frequencies and length.
type analyzed struct {
	doc    index.Document
	terms  []string
	tfs    []int32
	length int32
}

// analyzeDocument counts the terms of title and text, analysed as the
// embedded engine does (title's terms, then text's, as one field).
func analyzeDocument(a *index.Analyzer, d index.Document) analyzed {
	terms := a.AppendTerms(a.Terms(d.Title), d.Text)
	out := analyzed{doc: d, length: int32(len(terms))}
	at := make(map[string]int, len(terms))
	for _, t := range terms {
		i, ok := at[t]
		if !ok {
			i = len(out.terms)
			at[t] = i
			out.terms = append(out.terms, t)
			out.tfs = append(out.tfs, 0)
		}
		out.tfs[i]++
	}
	return out
}

// vectorText is v in pgvector's text form; the shortest decimal that reads
// back as the same float32, so nothing is lost on the way.
func vectorText(v []float32) string {
	var sb strings.Builder
	sb.Grow(len(v) * 11)
	sb.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	}
	sb.WriteByte(']')
	return sb.String()
}

// Put adds, replaces or ignores each document by its version in one
// transaction, with its postings and the collection's statistics.
func (b *Backend) Put(ctx context.Context, collection string, docs []index.Document) (index.PutResult, error) {
	if _, err := index.ValidateDocumentsFor(collection, 0, docs); err != nil {
		return index.PutResult{}, err
	}
	// Analysis needs no database; do it before the collection is locked.
	prepared := make([]analyzed, len(docs))
	for i, d := range docs {
		if d.Vector != nil {
			d.Vector = index.Normalize(d.Vector)
		}
		prepared[i] = analyzeDocument(b.opts.Analyzer, d)
	}
	var res index.PutResult
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		res = index.PutResult{}
		c, err := b.lockCollection(ctx, tx, collection)
		if err != nil {
			return err
		}
		dim, err := index.ValidateDocumentsFor(collection, c.dim, docs)
		if err != nil {
			return err
		}
		if c.dim == 0 && dim != 0 {
			if err := b.fixDimension(ctx, tx, c.id, dim); err != nil {
				return err
			}
		}
		changed, replaced, err := pickChanged(ctx, tx, c.id, prepared, &res)
		if err != nil || len(changed) == 0 {
			return err
		}
		return writeDocuments(ctx, tx, c.id, changed, replaced)
	})
	if err != nil {
		return index.PutResult{}, err
	}
	b.changed(res.Added + res.Replaced)
	return res, nil
}

// pickChanged reads the stored versions and returns the documents to write
// and the ids among them that replace a stored document.
func pickChanged(ctx context.Context, tx pgx.Tx, cid int32, docs []analyzed, res *index.PutResult) ([]analyzed, []string, error) {
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.doc.ID
	}
	rows, err := tx.Query(ctx, `SELECT doc_id, version FROM retrieval_documents WHERE collection_id = $1 AND doc_id = ANY($2)`, cid, ids)
	if err != nil {
		return nil, nil, err
	}
	stored := make(map[string]int64, len(docs))
	var id string
	var version int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &version}, func() error { stored[id] = version; return nil }); err != nil {
		return nil, nil, err
	}
	var changed []analyzed
	var replaced []string
	for _, d := range docs {
		old, ok := stored[d.doc.ID]
		switch {
		case !ok:
			res.Added++
		case d.doc.Version == old:
			res.Unchanged++
			continue
		case d.doc.Version < old:
			res.Stale++
			continue
		default:
			res.Replaced++
			replaced = append(replaced, d.doc.ID)
		}
		changed = append(changed, d)
	}
	return changed, replaced, nil
}

// writeDocuments removes the replaced documents (their postings go with
// them), inserts the changed ones with their postings, and moves the
// collection's statistics by the difference.
func writeDocuments(ctx context.Context, tx pgx.Tx, cid int32, docs []analyzed, replaced []string) error {
	var gone stats
	if len(replaced) > 0 {
		var err error
		if gone, err = deleteDocuments(ctx, tx, cid, replaced); err != nil {
			return err
		}
	}
	n := len(docs)
	ids, versions, titles, bodies, metas, vecs, lengths := make([]string, n), make([]int64, n), make([]string, n),
		make([]string, n), make([]map[string]string, n), make([]*string, n), make([]int32, n)
	var pTerms, pDocs []string
	var pTFs, pLens []int32
	for i, d := range docs {
		ids[i], versions[i], titles[i], bodies[i], lengths[i] = d.doc.ID, d.doc.Version, d.doc.Title, d.doc.Text, d.length
		metas[i] = d.doc.Metadata
		if metas[i] == nil {
			metas[i] = map[string]string{}
		}
		if d.doc.Vector != nil {
			v := vectorText(d.doc.Vector)
			vecs[i] = &v
		}
		for j, t := range d.terms {
			pTerms, pDocs = append(pTerms, t), append(pDocs, d.doc.ID)
			pTFs, pLens = append(pTFs, d.tfs[j]), append(pLens, d.length)
		}
	}
	var added stats
	err := tx.QueryRow(ctx, `WITH ins AS (
			INSERT INTO retrieval_documents (collection_id, doc_id, version, title, body, metadata, length, embedding)
			SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::int[], $8::text[]::vector[])
			RETURNING length, embedding IS NOT NULL AS has_vector, `+contentBytes+` AS bytes)
		SELECT count(*), coalesce(sum(length), 0), count(*) FILTER (WHERE has_vector), coalesce(sum(bytes), 0) FROM ins`,
		cid, ids, versions, titles, bodies, metas, lengths, vecs).Scan(&added.documents, &added.length, &added.vectors, &added.bytes)
	if err != nil {
		return fmt.Errorf("insert documents: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO retrieval_postings (collection_id, term, doc_id, tf, doc_length)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::int[])`, cid, pTerms, pDocs, pTFs, pLens); err != nil {
		return fmt.Errorf("insert postings: %w", err)
	}
	return moveStats(ctx, tx, cid, added.minus(gone))
}

// stats are the counts a write moves a collection's statistics by.
type stats struct {
	documents, length, vectors, bytes int64
}

func (s stats) minus(o stats) stats {
	return stats{s.documents - o.documents, s.length - o.length, s.vectors - o.vectors, s.bytes - o.bytes}
}

func moveStats(ctx context.Context, tx pgx.Tx, cid int32, d stats) error {
	_, err := tx.Exec(ctx, `UPDATE retrieval_collections SET documents = documents + $2, total_length = total_length + $3,
		vectors = vectors + $4, content_bytes = content_bytes + $5 WHERE id = $1`, cid, d.documents, d.length, d.vectors, d.bytes)
	return err
}

// deleteDocuments deletes the documents with the given ids (and, by
// cascade, their postings) and returns what they counted for.
func deleteDocuments(ctx context.Context, tx pgx.Tx, cid int32, ids []string) (stats, error) {
	var s stats
	err := tx.QueryRow(ctx, `WITH del AS (
			DELETE FROM retrieval_documents WHERE collection_id = $1 AND doc_id = ANY($2)
			RETURNING length, embedding IS NOT NULL AS has_vector, `+contentBytes+` AS bytes)
		SELECT count(*), coalesce(sum(length), 0), count(*) FILTER (WHERE has_vector), coalesce(sum(bytes), 0) FROM del`,
		cid, ids).Scan(&s.documents, &s.length, &s.vectors, &s.bytes)
	if err != nil {
		return s, fmt.Errorf("delete documents: %w", err)
	}
	return s, nil
}

// Delete removes the documents with the given ids in one transaction.
func (b *Backend) Delete(ctx context.Context, collection string, ids []string) (index.DeleteResult, error) {
	unique := make([]string, 0, len(ids))
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			unique = append(unique, id)
		}
	}
	var res index.DeleteResult
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		c, err := b.collection(ctx, tx, collection, true)
		if err != nil {
			return err
		}
		gone, err := deleteDocuments(ctx, tx, c.id, unique)
		if err != nil {
			return err
		}
		res = index.DeleteResult{Deleted: int(gone.documents), NotFound: len(unique) - int(gone.documents)}
		return moveStats(ctx, tx, c.id, stats{}.minus(gone))
	})
	if err != nil {
		return index.DeleteResult{}, err
	}
	b.changed(res.Deleted)
	return res, nil
}
