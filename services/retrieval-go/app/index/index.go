// Package index is the retrieval worker's search engine: named collections of
// versioned documents, searchable by BM25 over their words, by cosine
// similarity over caller-supplied embeddings, or by both fused with
// reciprocal rank fusion. It lives in memory; package store makes it
// durable.
//
// # BM25
//
// Okapi BM25 over title and text as one field ("flat", as Anserini's BEIR
// baselines), with Lucene's non-negative IDF:
//
//	idf(t)      = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))
//	score(d, q) = Σ over query terms t: qtf(t) · idf(t) · f(t,d)·(k1+1) / (f(t,d) + k1·(1 - b + b·|d|/avgdl))
//
// N is the number of documents in the collection, n(t) the number containing
// t, f(t,d) the frequency of t in d, |d| the number of terms of d, avgdl the
// mean |d|, and qtf(t) how often t occurs in the query (Anserini's
// bag-of-words query boosts a repeated term by its count). The defaults
// k1 = 0.9 and b = 0.4 are Anserini's, which reproduce BEIR's published BM25
// numbers; Lucene and Elasticsearch default to 1.2 and 0.75.
//
// # Vectors
//
// A collection's vector dimension is fixed by the first vector it receives.
// Vectors are stored normalised to unit length, so a document's cosine
// similarity to a query is a dot product. Collections with at most
// Options.ExactVectorLimit vectors are searched exactly; larger ones through
// an HNSW graph (package hnsw), which every collection with vectors maintains
// as documents arrive.
//
// # Hybrid
//
// Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): the
// BM25 and vector rankings, each cut at max(top_k, Options.RRFDepth), are
// fused by score(d) = Σ 1/(k + rank(d)) with ranks from 1 and k = 60, the
// constant of the paper.
//
// # Versions
//
// Every document has a version. Putting a document whose id is stored with
// the same version changes nothing, even if its content differs; an older
// version is ignored; a newer one replaces the stored document. Deleting
// removes a document and its version, so a later put of any version adds it
// again.
package index

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/durable-agents/reference/services/retrieval-go/app/index/hnsw"
)

// Search modes.
type Mode string

const (
	ModeBM25   Mode = "bm25"
	ModeVector Mode = "vector"
	ModeHybrid Mode = "hybrid"
)

// How a collection's vector searches run (CollectionStats.VectorIndex).
const (
	VectorIndexNone  = "none"
	VectorIndexExact = "exact"
	VectorIndexHNSW  = "hnsw"
)

// Defaults for Options.
const (
	DefaultK1               = 0.9
	DefaultB                = 0.4
	DefaultRRFK             = 60
	DefaultRRFDepth         = 100
	DefaultExactVectorLimit = 10_000
)

// Sentinel errors; the messages wrapped around them are meant for callers.
var (
	// ErrUnknownCollection: the collection does not exist.
	ErrUnknownCollection = errors.New("unknown collection")
	// ErrInvalid: the request cannot succeed as made (bad vector, bad
	// document, wrong dimension). Retrying it is pointless.
	ErrInvalid = errors.New("invalid request")
)

// cancelCheckInterval is how many postings or vectors are scored between
// checks of the context, so that a search over a large collection honours
// its deadline without paying for a check on every step.
const cancelCheckInterval = 4096

// Document is a unit of retrieval. Chunks are documents too: a caller that
// splits a text gives each chunk its own ID (for example "manual#3") and
// names the parent in its metadata.
type Document struct {
	ID      string
	Version int64
	Title   string
	Text    string
	// Metadata is matched exactly by search filters. Read-only once indexed.
	Metadata map[string]string
	// Vector is the document's embedding, or nil. Indexed documents hold it
	// normalised to unit length. Read-only once indexed.
	Vector []float32
}

// Query is one search.
type Query struct {
	Collection string
	Text       string
	// Vector is the query embedding for vector and hybrid mode; it is
	// normalised by the search.
	Vector []float32
	Mode   Mode
	// TopK bounds the hits; zero or less means every match.
	TopK int
	// Filters keep only documents whose metadata has every key with exactly
	// the given value.
	Filters map[string]string
}

// Hit is a ranked document.
type Hit struct {
	ID       string
	Version  int64
	Title    string
	Text     string
	Metadata map[string]string
	// Score is the BM25 score, the cosine similarity, or the fused RRF score,
	// by mode.
	Score float64
}

// Result is the outcome of a search.
type Result struct {
	// Hits are ordered by descending score, ties by ascending document ID.
	Hits []Hit
	// TotalDocuments is the size of the searched collection.
	TotalDocuments int
	Mode           Mode
}

// PutResult counts what a put did with each document.
type PutResult struct {
	Added     int `json:"added"`
	Replaced  int `json:"replaced"`
	Unchanged int `json:"unchanged"`
	// Stale counts documents older than the stored version, ignored.
	Stale int `json:"stale"`
}

// DeleteResult counts what a delete did.
type DeleteResult struct {
	Deleted  int `json:"deleted"`
	NotFound int `json:"not_found"`
}

// Options configure an Index. The zero value means the defaults.
type Options struct {
	Analyzer *Analyzer
	K1, B    float64
	HNSW     hnsw.Parameters
	// ExactVectorLimit: collections with at most this many vectors are
	// searched exactly. Zero means DefaultExactVectorLimit; a negative value
	// means always use the graph.
	ExactVectorLimit int
	RRFK             int
	RRFDepth         int
}

// WithDefaults returns o with every unset option at its default: the
// parameters an Index built from o ranks with.
func (o Options) WithDefaults() Options { return o.withDefaults() }

func (o Options) withDefaults() Options {
	if o.Analyzer == nil {
		o.Analyzer = MustNewAnalyzer(AnalyzerConfig{})
	}
	if o.K1 == 0 {
		o.K1 = DefaultK1
	}
	if o.B == 0 {
		o.B = DefaultB
	}
	if o.ExactVectorLimit == 0 {
		o.ExactVectorLimit = DefaultExactVectorLimit
	}
	if o.RRFK <= 0 {
		o.RRFK = DefaultRRFK
	}
	if o.RRFDepth <= 0 {
		o.RRFDepth = DefaultRRFDepth
	}
	o.HNSW = o.HNSW.WithDefaults()
	return o
}

// Index holds named collections. It is safe for concurrent use: searches run
// in parallel with each other and with writes, which are serialised and
// block a collection's searches only while they change its in-memory state.
type Index struct {
	opts Options

	// writeMu serialises writers, so that the outcome of a write computed
	// before its commit hook runs still holds when it is applied.
	writeMu sync.Mutex
	// graphsHeld (under writeMu): writes leave the HNSW graphs alone; see
	// HoldGraphs.
	graphsHeld bool
	// postingsHeld: writes register documents without analysing them; see
	// HoldPostings. Atomic because AnalyzeDocuments reads it without locks.
	postingsHeld atomic.Bool

	mu          sync.RWMutex
	collections map[string]*collection
}

// New returns an empty index.
func New(opts Options) *Index {
	return &Index{opts: opts.withDefaults(), collections: make(map[string]*collection)}
}

// Options returns the index's options with defaults filled in.
func (ix *Index) Options() Options { return ix.opts }

// Analyzer returns the analyzer the index uses.
func (ix *Index) Analyzer() *Analyzer { return ix.opts.Analyzer }

func (ix *Index) collection(name string) (*collection, error) {
	ix.mu.RLock()
	c, ok := ix.collections[name]
	ix.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCollection, name)
	}
	return c, nil
}

// Commit is called by writes after validation and before the in-memory
// state changes, with what is about to change; an error aborts the write.
// The store journals the write here.
type Commit func() error

// CreateCollection makes sure the named collection exists, so that searching
// it before any document arrives yields no hits instead of
// ErrUnknownCollection. dim fixes its vector dimension (0: set by the first
// vector). Creating an existing collection with a compatible dimension is a
// no-op and does not call commit.
func (ix *Index) CreateCollection(name string, dim int, commit Commit) error {
	if name == "" {
		return fmt.Errorf("%w: collection name must not be empty", ErrInvalid)
	}
	if dim < 0 {
		return fmt.Errorf("%w: vector dimension must not be negative", ErrInvalid)
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	if c, err := ix.collection(name); err == nil {
		c.mu.RLock()
		cur := c.dim
		c.mu.RUnlock()
		if dim != 0 && cur != 0 && cur != dim {
			return fmt.Errorf("%w: collection %q has vector dimension %d, not %d", ErrInvalid, name, cur, dim)
		}
		if dim == 0 || cur == dim {
			return nil
		}
	}
	if commit != nil {
		if err := commit(); err != nil {
			return err
		}
	}
	c := ix.ensureCollection(name)
	c.mu.Lock()
	if c.dim == 0 {
		c.dim = dim
	}
	c.mu.Unlock()
	return nil
}

func (ix *Index) ensureCollection(name string) *collection {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	c, ok := ix.collections[name]
	if !ok {
		c = newCollection(name, ix.opts, &ix.writeMu, !ix.postingsHeld.Load())
		ix.collections[name] = c
	}
	return c
}

// Collections returns the names of all collections in ascending order.
func (ix *Index) Collections() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return slices.Sorted(maps.Keys(ix.collections))
}

// Len reports the number of documents in the named collection and whether the
// collection exists.
func (ix *Index) Len(name string) (int, bool) {
	c, err := ix.collection(name)
	if err != nil {
		return 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.live, true
}

// Get returns the stored document with the given id.
func (ix *Index) Get(collection, id string) (Document, bool) {
	c, err := ix.collection(collection)
	if err != nil {
		return Document{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.ids[id]
	if !ok {
		return Document{}, false
	}
	return *c.slots[s].doc, true
}

// Find returns, in ascending order, the ids of the documents of the named
// collection whose metadata matches every filter.
func (ix *Index) Find(collection string, filters map[string]string) []string {
	c, err := ix.collection(collection)
	if err != nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	match := c.filter(filters)
	var out []string
	for id, s := range c.ids {
		if match == nil || match(s) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// ValidateDocuments checks docs the way Put does before anything changes,
// against the named collection's dimension if it exists. Handlers call it
// to reject a bad request before starting work.
func (ix *Index) ValidateDocuments(collection string, docs []Document) error {
	dim := 0
	if c, err := ix.collection(collection); err == nil {
		c.mu.RLock()
		dim = c.dim
		c.mu.RUnlock()
	}
	_, err := validateDocuments(collection, dim, docs)
	return err
}

// ValidateDocumentsFor checks docs the way Put does against a collection of
// vector dimension dim (0: not fixed yet) and returns the dimension the
// collection will have after they are put. Other backends use it so that
// every backend refuses exactly what the embedded one refuses.
func ValidateDocumentsFor(collection string, dim int, docs []Document) (int, error) {
	return validateDocuments(collection, dim, docs)
}

// validateDocuments returns the dimension the collection will have after
// docs are put.
func validateDocuments(collection string, dim int, docs []Document) (int, error) {
	if collection == "" {
		return 0, fmt.Errorf("%w: collection name must not be empty", ErrInvalid)
	}
	if len(docs) == 0 {
		return 0, fmt.Errorf("%w: no documents to index", ErrInvalid)
	}
	seen := make(map[string]struct{}, len(docs))
	for i, d := range docs {
		switch {
		case d.ID == "":
			return 0, fmt.Errorf("%w: document %d of %d has an empty id", ErrInvalid, i+1, len(docs))
		case d.Version < 1:
			return 0, fmt.Errorf("%w: document %q has version %d; versions start at 1", ErrInvalid, d.ID, d.Version)
		}
		if _, dup := seen[d.ID]; dup {
			return 0, fmt.Errorf("%w: document id %q occurs more than once in one request", ErrInvalid, d.ID)
		}
		seen[d.ID] = struct{}{}
		if d.Vector == nil {
			continue
		}
		if err := CheckVector(d.Vector); err != nil {
			return 0, fmt.Errorf("%w: document %q: %w", ErrInvalid, d.ID, err)
		}
		if dim == 0 {
			dim = len(d.Vector)
		} else if len(d.Vector) != dim {
			return 0, fmt.Errorf("%w: document %q has a vector of dimension %d; collection %q uses %d",
				ErrInvalid, d.ID, len(d.Vector), collection, dim)
		}
	}
	return dim, nil
}

// CheckVector reports why v cannot be indexed or searched: it is empty, holds
// NaN or infinity, or has no direction (all zeros).
func CheckVector(v []float32) error {
	if len(v) == 0 {
		return errors.New("the vector is empty")
	}
	var norm float64
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("vector element %d is %v", i, x)
		}
		norm += float64(x) * float64(x)
	}
	if norm == 0 || math.IsInf(norm, 0) {
		return errors.New("the vector has zero length, so it has no direction to compare")
	}
	return nil
}

// Normalize returns v scaled to unit length, in a new slice.
func Normalize(v []float32) []float32 {
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	inv := 1 / math.Sqrt(norm)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// Put adds, replaces or ignores each document according to its version (see
// the package documentation), creating the collection if needed. It is
// atomic: if any document is invalid, nothing changes. commit, if not nil,
// is called with the documents that will change before they do; the
// documents it sees hold their vectors normalised. Put does not call commit
// when nothing would change.
func (ix *Index) Put(collection string, docs []Document, commit func(changed []Document) error) (PutResult, error) {
	return ix.put(collection, docs, nil, commit)
}

// Analyzed is a batch of documents prepared for a put by AnalyzeDocuments.
type Analyzed struct {
	docs []Document
	// entries[i] holds docs[i] as it will be stored (vector normalised,
	// metadata copied) with its text analysed.
	entries []*slotEntry
}

// AnalyzeDocuments does the expensive part of putting docs ahead of the
// put: it normalises their vectors and analyses their text, touching no
// collection. PutAnalyzed then applies the batch as Put would apply docs.
// A store loading a snapshot overlaps this with applying the batch before.
func (ix *Index) AnalyzeDocuments(docs []Document) *Analyzed {
	a := &Analyzed{docs: docs, entries: make([]*slotEntry, len(docs))}
	for i := range docs {
		a.entries[i] = newSlotEntry(docs[i])
	}
	if !ix.postingsHeld.Load() {
		analyze(ix.opts.Analyzer, a.entries)
	}
	return a
}

// PutAnalyzed is Put for a batch from AnalyzeDocuments, with the same
// validation, versioning and atomicity.
func (ix *Index) PutAnalyzed(collection string, a *Analyzed, commit func(changed []Document) error) (PutResult, error) {
	return ix.put(collection, a.docs, a, commit)
}

// newSlotEntry copies d as the index stores it: vector normalised, metadata
// cloned so that the caller's map can change afterwards.
func newSlotEntry(d Document) *slotEntry {
	if d.Vector != nil {
		if CheckVector(d.Vector) == nil {
			d.Vector = Normalize(d.Vector)
		}
	}
	if d.Metadata != nil {
		d.Metadata = maps.Clone(d.Metadata)
	}
	return &slotEntry{doc: &d}
}

// put is Put, and PutAnalyzed when pre is not nil.
func (ix *Index) put(collection string, docs []Document, pre *Analyzed, commit func(changed []Document) error) (PutResult, error) {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()

	c, _ := ix.collection(collection)
	dim := 0
	if c != nil {
		c.mu.RLock()
		dim = c.dim
		c.mu.RUnlock()
	}
	if _, err := validateDocuments(collection, dim, docs); err != nil {
		return PutResult{}, err
	}
	res, picked := pickChanged(c, docs)
	if len(picked) == 0 {
		return res, nil
	}
	prepared := make([]*slotEntry, len(picked))
	for j, i := range picked {
		if pre != nil {
			prepared[j] = pre.entries[i]
		} else {
			prepared[j] = newSlotEntry(docs[i])
		}
	}
	if c == nil {
		c = ix.ensureCollectionUncommitted(collection)
	}
	if pre == nil && !ix.postingsHeld.Load() {
		// The expensive part, analysis, happens before any lock that blocks
		// searches is taken.
		analyze(ix.opts.Analyzer, prepared)
	}
	if commit != nil {
		changed := make([]Document, len(prepared))
		for j, e := range prepared {
			changed[j] = *e.doc
		}
		if err := commit(changed); err != nil {
			return PutResult{}, err
		}
	}
	c.apply(prepared)
	if !ix.graphsHeld {
		c.catchUpGraph()
	}
	return res, nil
}

// pickChanged compares each document's version with the stored one's (c is
// nil for a collection that does not exist yet) and returns the counts of a
// put and the indexes in docs of the documents it adds or replaces.
func pickChanged(c *collection, docs []Document) (res PutResult, picked []int) {
	picked = make([]int, 0, len(docs)) // one allocation, not one per doubling
	if c != nil {
		c.mu.RLock()
		defer c.mu.RUnlock()
	}
	for i, d := range docs {
		var stored *Document
		if c != nil {
			if s, ok := c.ids[d.ID]; ok {
				stored = c.slots[s].doc
			}
		}
		switch {
		case stored == nil:
			res.Added++
		case d.Version == stored.Version:
			res.Unchanged++
			continue
		case d.Version < stored.Version:
			res.Stale++
			continue
		default:
			res.Replaced++
		}
		picked = append(picked, i)
	}
	return res, picked
}

// ensureCollectionUncommitted returns the named collection, creating an
// invisible one if needed; apply publishes it. Creating it visibly before
// the commit succeeded would leave an empty collection behind a failed put.
func (ix *Index) ensureCollectionUncommitted(name string) *collection {
	c := newCollection(name, ix.opts, &ix.writeMu, !ix.postingsHeld.Load())
	c.publish = func() {
		ix.mu.Lock()
		if _, ok := ix.collections[name]; !ok {
			ix.collections[name] = c
		}
		ix.mu.Unlock()
	}
	return c
}

// Delete removes the documents with the given ids from the named collection.
// commit, if not nil, is called with the ids that exist before they are
// removed; it is not called when none does.
func (ix *Index) Delete(collection string, ids []string, commit func(existing []string) error) (DeleteResult, error) {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	c, err := ix.collection(collection)
	if err != nil {
		return DeleteResult{}, err
	}
	var res DeleteResult
	var existing []string
	seen := make(map[string]struct{}, len(ids))
	c.mu.RLock()
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		if _, ok := c.ids[id]; ok {
			existing = append(existing, id)
		} else {
			res.NotFound++
		}
	}
	c.mu.RUnlock()
	if len(existing) == 0 {
		return res, nil
	}
	if commit != nil {
		if err := commit(existing); err != nil {
			return DeleteResult{}, err
		}
	}
	c.mu.Lock()
	for _, id := range existing {
		c.remove(c.ids[id])
		delete(c.ids, id)
	}
	c.mu.Unlock()
	res.Deleted = len(existing)
	if !ix.graphsHeld {
		c.maybeRebuildGraph()
	}
	return res, nil
}

// CollectionStats describes one collection.
type CollectionStats struct {
	Name      string
	Documents int
	Dimension int
	Vectors   int
	// VectorIndex is VectorIndexNone (no vectors), VectorIndexExact or
	// VectorIndexHNSW: how vector searches of the collection run now.
	VectorIndex string
	// GraphNodes counts the HNSW graph's nodes, deleted documents included
	// until the graph is rebuilt.
	GraphNodes int
}

// Stats describes every collection, in name order.
func (ix *Index) Stats() []CollectionStats {
	var out []CollectionStats
	for _, name := range ix.Collections() {
		c, err := ix.collection(name)
		if err != nil {
			continue
		}
		out = append(out, c.stats())
	}
	return out
}

// Snapshot returns every collection's dimension and documents, consistent
// per collection and as of a moment when no write was in progress. The
// documents are shared with the index and must not be modified.
func (ix *Index) Snapshot(fn func()) []CollectionSnapshot {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	if fn != nil {
		fn()
	}
	var out []CollectionSnapshot
	for _, name := range ix.Collections() {
		c, _ := ix.collection(name)
		c.mu.RLock()
		cs := CollectionSnapshot{Name: name, Dimension: c.dim, Documents: make([]*Document, 0, c.live)}
		for _, s := range c.slots {
			if s != nil {
				cs.Documents = append(cs.Documents, s.doc)
			}
		}
		c.mu.RUnlock()
		if !ix.graphsHeld {
			// A graph still catching up after a start is completed first, so
			// that the saved graph covers every document of the snapshot.
			c.catchUpGraph()
			c.mu.RLock()
			cs.Graph, cs.GraphErr = c.saveGraph()
			c.mu.RUnlock()
		}
		if !ix.postingsHeld.Load() {
			c.mu.RLock()
			cs.Postings = c.savePostings(ix.opts.Analyzer.Config())
			c.mu.RUnlock()
		}
		out = append(out, cs)
	}
	return out
}

// CollectionSnapshot is one collection's content, from Snapshot.
type CollectionSnapshot struct {
	Name      string
	Dimension int
	Documents []*Document
	// Graph is the collection's HNSW graph numbered to match Documents, or
	// nil (no vectors, or GraphErr says why it could not be saved: the
	// documents are complete regardless).
	Graph    *SavedGraph
	GraphErr error
	// Postings is the collection's inverted index numbered to match
	// Documents, for AttachPostings.
	Postings []byte
}

// Search ranks the documents of q.Collection. An empty mode means hybrid when
// q has both text and a vector, vector when it has only a vector, and BM25
// otherwise. It returns an error wrapping ErrUnknownCollection for a
// collection that does not exist, one wrapping ErrInvalid for a query that
// cannot be run (a vector of the wrong dimension, a vector mode without a
// vector), and the context's error if it ends while ranking.
func (ix *Index) Search(ctx context.Context, q Query) (Result, error) {
	return ix.search(ctx, q, false)
}

// SearchBruteForce ranks like Search without the inverted index or the HNSW
// graph: BM25 scores every document from its own term counts and vector
// search compares the query with every vector. It is the baseline the
// benchmarks measure the index against, and the oracle tests compare it with.
func (ix *Index) SearchBruteForce(ctx context.Context, q Query) (Result, error) {
	return ix.search(ctx, q, true)
}

func (ix *Index) search(ctx context.Context, q Query, brute bool) (Result, error) {
	mode, err := ResolveMode(q)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	c, err := ix.collection(q.Collection)
	if err != nil {
		return Result{}, err
	}
	var terms []string
	if mode != ModeVector {
		terms = ix.opts.Analyzer.Terms(q.Text)
	}
	var qvec []float32
	if mode != ModeBM25 {
		if err := CheckVector(q.Vector); err != nil {
			return Result{}, fmt.Errorf("%w: query vector: %w", ErrInvalid, err)
		}
		qvec = Normalize(q.Vector)
	}

	c.mu.RLock()
	defer c.mu.RUnlock()
	if qvec != nil && c.dim != 0 && len(qvec) != c.dim {
		return Result{}, fmt.Errorf("%w: the query vector has dimension %d; collection %q uses %d", ErrInvalid, len(qvec), q.Collection, c.dim)
	}
	limit := q.TopK
	if limit <= 0 {
		limit = c.live
	}
	filter := c.filter(q.Filters)

	bm25How := bm25Auto
	if brute {
		bm25How = bm25BruteForce
	}
	var ranked []scored
	switch mode {
	case ModeBM25:
		ranked, err = c.searchBM25(ctx, terms, limit, filter, bm25How)
	case ModeVector:
		ranked, err = c.searchVector(ctx, qvec, limit, filter, brute)
	case ModeHybrid:
		depth := max(limit, ix.opts.RRFDepth)
		var lex, sem []scored
		if lex, err = c.searchBM25(ctx, terms, depth, filter, bm25How); err == nil {
			if sem, err = c.searchVector(ctx, qvec, depth, filter, brute); err == nil {
				ranked = c.fuse(limit, lex, sem)
			}
		}
	}
	if err != nil {
		return Result{}, err
	}
	hits := make([]Hit, len(ranked))
	for i, r := range ranked {
		d := c.slots[r.slot].doc
		hits[i] = Hit{ID: d.ID, Version: d.Version, Title: d.Title, Text: d.Text, Metadata: d.Metadata, Score: r.score}
	}
	return Result{Hits: hits, TotalDocuments: c.live, Mode: mode}, nil
}

// ResolveMode returns the mode q runs in, or an error wrapping ErrInvalid if
// q lacks what its mode needs.
func ResolveMode(q Query) (Mode, error) {
	mode := q.Mode
	if mode == "" {
		switch {
		case q.Vector != nil && q.Text != "":
			mode = ModeHybrid
		case q.Vector != nil:
			mode = ModeVector
		default:
			mode = ModeBM25
		}
	}
	switch mode {
	case ModeBM25:
	case ModeVector, ModeHybrid:
		if q.Vector == nil {
			return "", fmt.Errorf("%w: mode %s needs a query vector", ErrInvalid, mode)
		}
	default:
		return "", fmt.Errorf("%w: mode %q is not one of bm25, vector, hybrid", ErrInvalid, mode)
	}
	return mode, nil
}

// scored is a slot with its score during ranking.
type scored struct {
	slot  uint32
	score float64
}

// topK keeps the k best entries seen, by descending score and then
// ascending document id.
type topK struct {
	k     int
	items []scored // a heap whose root is the worst kept entry
	c     *collection
}

func (c *collection) newTopK(k int) *topK {
	return &topK{k: k, items: make([]scored, 0, min(k, 1024)), c: c}
}

// better reports whether a ranks before b.
func (t *topK) better(a, b scored) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return t.c.slots[a.slot].doc.ID < t.c.slots[b.slot].doc.ID
}

func (t *topK) offer(s scored) {
	if t.k <= 0 {
		return
	}
	if len(t.items) < t.k {
		t.items = append(t.items, s)
		// Sift up: the root must be the worst.
		i := len(t.items) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !t.better(t.items[p], t.items[i]) {
				break
			}
			t.items[i], t.items[p] = t.items[p], t.items[i]
			i = p
		}
		return
	}
	if !t.better(s, t.items[0]) {
		return
	}
	t.items[0] = s
	i, n := 0, len(t.items)
	for {
		l, r, w := 2*i+1, 2*i+2, i
		if l < n && t.better(t.items[w], t.items[l]) {
			w = l
		}
		if r < n && t.better(t.items[w], t.items[r]) {
			w = r
		}
		if w == i {
			return
		}
		t.items[i], t.items[w] = t.items[w], t.items[i]
		i = w
	}
}

// sorted returns the kept entries, best first.
func (t *topK) sorted() []scored {
	out := t.items
	slices.SortFunc(out, func(a, b scored) int {
		if t.better(a, b) {
			return -1
		}
		if t.better(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// fuse merges rankings by reciprocal rank fusion.
func (c *collection) fuse(limit int, lists ...[]scored) []scored {
	fused := make(map[uint32]float64)
	for _, list := range lists {
		for rank, s := range list {
			fused[s.slot] += 1 / float64(c.opts.RRFK+rank+1)
		}
	}
	t := c.newTopK(limit)
	for slot, score := range fused {
		t.offer(scored{slot: slot, score: score})
	}
	return t.sorted()
}
