package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// benchCorpus is built once per test binary: a Zipf corpus of 50,000
// documents over a 20,000-word vocabulary with dead postings, and 64
// queries of 1-6 terms mixing common and rare words.
var benchCorpus = sync.OnceValues(func() (*Index, [][]string) {
	r := rand.New(rand.NewPCG(31, 32))
	ix, words := zipfCorpus(nopTB{}, r, 50000, 20000, true)
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(words)-1))
	queries := make([][]string, 64)
	for i := range queries {
		for range 1 + r.IntN(6) {
			if r.IntN(2) == 0 {
				queries[i] = append(queries[i], words[zipf.Uint64()])
			} else {
				queries[i] = append(queries[i], words[r.IntN(len(words))])
			}
		}
	}
	return ix, queries
})

// nopTB lets zipfCorpus run outside a test; it panics where a test would fail.
type nopTB struct{ testing.TB }

func (nopTB) Helper()                   {}
func (nopTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (nopTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// BenchmarkSearchBM25 times one query (cycling through 64) per strategy
// and result length, straight on the collection as Search calls it.
func BenchmarkSearchBM25(b *testing.B) {
	ix, queries := benchCorpus()
	c, err := ix.collection("c")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		how   bm25Strategy
		limit int
	}{
		{"maxscore/k=10", bm25MaxScore, 10},
		{"maxscore/k=100", bm25MaxScore, 100},
		{"exhaustive/k=10", bm25Exhaustive, 10},
		{"exhaustive/k=2000", bm25Exhaustive, 2000},
		{"bruteforce/k=10", bm25BruteForce, 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c.mu.RLock()
			defer c.mu.RUnlock()
			i := 0
			for b.Loop() {
				if _, err := c.searchBM25(context.Background(), queries[i%len(queries)], bc.limit, nil, bc.how); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAttachPostings times installing the saved postings of 5,000
// documents (the index of held documents is made outside the timer).
func BenchmarkAttachPostings(b *testing.B) {
	zipf, _ := zipfCorpus(b, rand.New(rand.NewPCG(41, 42)), 5000, 4000, false)
	var docs []Document
	for _, d := range zipf.Snapshot(nil)[0].Documents {
		docs = append(docs, *d)
	}
	built := New(Options{}) // heldIndex's analyzer
	if _, err := built.Put("c", docs, nil); err != nil {
		b.Fatal(err)
	}
	snap := built.Snapshot(nil)[0]
	for b.Loop() {
		b.StopTimer()
		ix := heldIndex(b, docs)
		b.StartTimer()
		if err := ix.AttachPostings("c", snap.Postings); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut times indexing batches of 100 new documents into a
// collection of 2,000.
func BenchmarkPut(b *testing.B) {
	ix, _ := zipfCorpus(b, rand.New(rand.NewPCG(51, 52)), 2000, 2000, false)
	r := rand.New(rand.NewPCG(53, 54))
	batch := make([]Document, 100)
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = Document{ID: fmt.Sprintf("b%07d", n), Version: 1, Title: "bench", Text: fmt.Sprintf("w%03dx w%03dx w%03dx w%03dx", r.IntN(2000), r.IntN(2000), r.IntN(50), r.IntN(5))}
			n++
		}
		if _, err := ix.Put("c", batch, nil); err != nil {
			b.Fatal(err)
		}
	}
}
