// Package index is the retrieval worker's search engine: an in-memory BM25
// index over named collections of documents.
//
// Scoring is Okapi BM25 over the title and text of each document, with the
// non-negative IDF used by Lucene:
//
//	idf(t)      = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))
//	score(d, q) = Σ_t∈q idf(t) · f(t,d)·(k1+1) / (f(t,d) + k1·(1 - b + b·|d|/avgdl))
//
// where N is the number of documents in the collection, n(t) the number that
// contain term t, f(t,d) the frequency of t in d, |d| the number of terms in d
// and avgdl the mean of |d| over the collection. Each distinct query term
// counts once. K1 and B hold the parameters.
package index

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
)

// BM25 parameters, the values most engines (Lucene, Elasticsearch) ship with.
// K1 controls how quickly repeated occurrences of a term stop adding to the
// score; B controls how strongly long documents are penalised.
const (
	K1 = 1.2
	B  = 0.75
)

// ErrUnknownCollection is returned when searching a collection that was never
// created.
var ErrUnknownCollection = errors.New("unknown collection")

// cancelCheckInterval is how many postings are scored between checks of the
// context, so that a search over a huge collection honours its deadline
// without paying for a check on every posting.
const cancelCheckInterval = 4096

// Document is a unit of retrieval.
type Document struct {
	ID    string
	Title string
	Text  string
}

// Hit is a document that matched a query, with its BM25 score.
type Hit struct {
	Document
	Score float64
}

// Result is the outcome of a search.
type Result struct {
	// Hits are ordered by descending score, ties by ascending document ID.
	Hits []Hit
	// TotalDocuments is the size of the searched collection.
	TotalDocuments int
}

// Index holds named collections of documents. It is safe for concurrent use:
// any number of searches run in parallel, and writes wait for them.
type Index struct {
	mu          sync.RWMutex
	collections map[string]*collection
}

type collection struct {
	docs map[string]*entry
	// postings maps a term to the documents containing it and the term's
	// frequency in each.
	postings map[string]map[string]int
	// totalLen is the sum of all document lengths, kept to derive avgdl.
	totalLen int
}

type entry struct {
	Document
	length int
	// terms is kept so that replacing a document can remove exactly its
	// postings without scanning the whole collection.
	terms map[string]int
}

// New returns an empty index.
func New() *Index {
	return &Index{collections: make(map[string]*collection)}
}

// CreateCollection makes sure the named collection exists, so that searching
// it before any document arrives yields no hits instead of
// ErrUnknownCollection. Creating an existing collection is a no-op.
func (ix *Index) CreateCollection(name string) error {
	if name == "" {
		return errors.New("collection name must not be empty")
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.collectionLocked(name)
	return nil
}

// Add indexes docs into the named collection, creating it if needed. A
// document whose ID is already present replaces the earlier version; within
// one call the last document with a given ID wins. Add is atomic: if any
// document is invalid, nothing is indexed.
func (ix *Index) Add(name string, docs ...Document) error {
	if name == "" {
		return errors.New("collection name must not be empty")
	}
	// Tokenising is the expensive part, so it happens before taking the
	// write lock that blocks searches.
	entries := make([]*entry, len(docs))
	for i, d := range docs {
		if d.ID == "" {
			return fmt.Errorf("document %d of %d has an empty ID", i+1, len(docs))
		}
		entries[i] = newEntry(d)
	}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	c := ix.collectionLocked(name)
	for _, e := range entries {
		c.remove(e.ID)
		c.insert(e)
	}
	return nil
}

// Len reports the number of documents in the named collection and whether the
// collection exists.
func (ix *Index) Len(name string) (int, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	c, ok := ix.collections[name]
	if !ok {
		return 0, false
	}
	return len(c.docs), true
}

// Collections returns the names of all collections in ascending order.
func (ix *Index) Collections() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return slices.Sorted(maps.Keys(ix.collections))
}

// Search ranks the documents of the named collection against query and
// returns at most limit hits; a limit of zero or less returns every match.
// Documents that share no term with the query are not hits, so a query made
// only of stop words returns no hits. Search returns ErrUnknownCollection (wrapped)
// for a collection that does not exist, and the context's error if it is
// cancelled or its deadline passes while ranking.
func (ix *Index) Search(ctx context.Context, name, query string, limit int) (Result, error) {
	terms := distinct(Tokenize(query))
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	ix.mu.RLock()
	c, ok := ix.collections[name]
	if !ok {
		ix.mu.RUnlock()
		return Result{}, fmt.Errorf("%w %q", ErrUnknownCollection, name)
	}
	hits, err := c.score(ctx, terms)
	total := len(c.docs)
	ix.mu.RUnlock()
	if err != nil {
		return Result{}, err
	}

	slices.SortFunc(hits, func(a, b Hit) int {
		if a.Score != b.Score {
			return cmp.Compare(b.Score, a.Score)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit:limit]
	}
	return Result{Hits: hits, TotalDocuments: total}, nil
}

func (ix *Index) collectionLocked(name string) *collection {
	c, ok := ix.collections[name]
	if !ok {
		c = &collection{
			docs:     make(map[string]*entry),
			postings: make(map[string]map[string]int),
		}
		ix.collections[name] = c
	}
	return c
}

func newEntry(d Document) *entry {
	terms := make(map[string]int)
	length := 0
	for _, field := range [...]string{d.Title, d.Text} {
		for _, t := range Tokenize(field) {
			terms[t]++
			length++
		}
	}
	return &entry{Document: d, length: length, terms: terms}
}

func (c *collection) insert(e *entry) {
	c.docs[e.ID] = e
	c.totalLen += e.length
	for t, f := range e.terms {
		p, ok := c.postings[t]
		if !ok {
			p = make(map[string]int)
			c.postings[t] = p
		}
		p[e.ID] = f
	}
}

func (c *collection) remove(id string) {
	old, ok := c.docs[id]
	if !ok {
		return
	}
	delete(c.docs, id)
	c.totalLen -= old.length
	for t := range old.terms {
		p := c.postings[t]
		delete(p, id)
		if len(p) == 0 {
			delete(c.postings, t)
		}
	}
}

// score returns an unordered hit for every document containing at least one
// of terms. The caller must hold at least a read lock.
func (c *collection) score(ctx context.Context, terms []string) ([]Hit, error) {
	n := float64(len(c.docs))
	if n == 0 || len(terms) == 0 {
		return []Hit{}, nil
	}
	avgdl := float64(c.totalLen) / n

	// Summing each document's contributions in query-term order keeps the
	// floating-point result, and so the ranking, identical across runs even
	// though map iteration order is random.
	scores := make(map[string]float64)
	scored := 0
	for _, t := range terms {
		p := c.postings[t]
		if len(p) == 0 {
			continue
		}
		df := float64(len(p))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for id, f := range p {
			if scored++; scored%cancelCheckInterval == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			tf := float64(f)
			// Every document in a posting list has length >= 1, so avgdl > 0.
			norm := K1 * (1 - B + B*float64(c.docs[id].length)/avgdl)
			scores[id] += idf * tf * (K1 + 1) / (tf + norm)
		}
	}

	hits := make([]Hit, 0, len(scores))
	for id, s := range scores {
		hits = append(hits, Hit{Document: c.docs[id].Document, Score: s})
	}
	return hits, nil
}

// distinct removes repeated terms, keeping first occurrences in order.
func distinct(terms []string) []string {
	seen := make(map[string]struct{}, len(terms))
	out := terms[:0]
	for _, t := range terms {
		if _, ok := seen[t]; ok {
			continue
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	return out
}
