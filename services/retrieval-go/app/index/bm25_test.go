package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// zipfCorpus makes an index of n documents over a small Zipf vocabulary,
// with replaced and deleted documents (dead postings) when churn is set.
func zipfCorpus(t testing.TB, r *rand.Rand, n, vocab int, churn bool) (*Index, []string) {
	t.Helper()
	words := make([]string, vocab)
	for i := range words {
		words[i] = fmt.Sprintf("w%03dx", i)
	}
	zipf := rand.NewZipf(r, 1.1, 1, uint64(vocab-1))
	text := func(k int) string {
		var b strings.Builder
		for range k {
			b.WriteString(words[zipf.Uint64()])
			b.WriteByte(' ')
		}
		return b.String()
	}
	ix := New(Options{Analyzer: MustNewAnalyzer(AnalyzerConfig{StopWords: "none", Stemmer: "none"})})
	var docs []Document
	for i := range n {
		docs = append(docs, Document{ID: fmt.Sprintf("d%05d", i), Version: 1, Title: text(1 + r.IntN(3)), Text: text(3 + r.IntN(40)),
			Metadata: map[string]string{"shard": fmt.Sprint(i % 3)}})
	}
	for chunk := range slices.Chunk(docs, 100) {
		if _, err := ix.Put("c", chunk, nil); err != nil {
			t.Fatal(err)
		}
	}
	if churn {
		var replaced []Document
		var gone []string
		for i := 0; i < n; i += 5 {
			replaced = append(replaced, Document{ID: fmt.Sprintf("d%05d", i), Version: 2, Text: text(5 + r.IntN(20))})
		}
		for i := 1; i < n; i += 9 {
			gone = append(gone, fmt.Sprintf("d%05d", i))
		}
		if _, err := ix.Put("c", replaced, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ix.Delete("c", gone, nil); err != nil {
			t.Fatal(err)
		}
	}
	return ix, words
}

// rankAll runs the query with every strategy; they must agree exactly.
func rankAll(t testing.TB, ix *Index, terms []string, limit int, filters map[string]string) {
	t.Helper()
	c, err := ix.collection("c")
	if err != nil {
		t.Fatal(err)
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	filter := c.filter(filters)
	want, err := c.searchBM25(context.Background(), terms, limit, filter, bm25BruteForce)
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []bm25Strategy{bm25Exhaustive, bm25MaxScore, bm25Auto} {
		got, err := c.searchBM25(context.Background(), terms, limit, filter, how)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("strategy %d, terms %q, limit %d, filters %v:\n got %v\nwant %v", how, terms, limit, filters, got, want)
		}
	}
}

func TestBM25StrategiesAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	plain, words := zipfCorpus(t, r, 3000, 400, false)
	churned, _ := zipfCorpus(t, r, 3000, 400, true)
	tests := []struct {
		name    string
		ix      *Index
		terms   []string
		limit   int
		filters map[string]string
	}{
		{"one common term", plain, []string{words[0]}, 10, nil},
		{"one rare term", plain, []string{words[399]}, 10, nil},
		{"common and rare", plain, []string{words[0], words[1], words[250]}, 10, nil},
		{"repeated term counts twice", plain, []string{words[2], words[300], words[2]}, 10, nil},
		{"unknown term ignored", plain, []string{"nosuchword", words[3]}, 5, nil},
		{"only unknown terms", plain, []string{"nosuchword"}, 5, nil},
		{"limit 1", plain, []string{words[0], words[5], words[50]}, 1, nil},
		{"limit beyond the matches", plain, []string{words[390], words[391]}, 1000, nil},
		{"hybrid depth 100", plain, []string{words[0], words[1], words[2], words[3]}, 100, nil},
		{"long limit: exhaustive", plain, []string{words[0], words[7]}, 2500, nil},
		{"filtered", plain, []string{words[0], words[9], words[200]}, 10, map[string]string{"shard": "1"}},
		{"filter matching nothing", plain, []string{words[0]}, 10, map[string]string{"shard": "9"}},
		{"dead postings", churned, []string{words[0], words[4], words[120]}, 10, nil},
		{"dead postings, filtered", churned, []string{words[1], words[33]}, 20, map[string]string{"shard": "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rankAll(t, tc.ix, tc.terms, tc.limit, tc.filters)
		})
	}
}

// TestBM25StrategiesAgreeOnRandomQueries draws many queries of 1-8 terms
// (common, rare, repeated) and limits, with and without dead postings.
func TestBM25StrategiesAgreeOnRandomQueries(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, churn := range []bool{false, true} {
		ix, words := zipfCorpus(t, r, 2000, 300, churn)
		zipf := rand.NewZipf(r, 1.1, 1, uint64(len(words)-1))
		for range 400 {
			var terms []string
			for range 1 + r.IntN(8) {
				if r.IntN(2) == 0 {
					terms = append(terms, words[zipf.Uint64()])
				} else {
					terms = append(terms, words[r.IntN(len(words))])
				}
			}
			var filters map[string]string
			if r.IntN(4) == 0 {
				filters = map[string]string{"shard": fmt.Sprint(r.IntN(3))}
			}
			rankAll(t, ix, terms, []int{1, 3, 10, 50, 100}[r.IntN(5)], filters)
		}
	}
}

func FuzzBM25StrategiesAgree(f *testing.F) {
	ix, words := zipfCorpus(f, rand.New(rand.NewPCG(1, 1)), 800, 120, true)
	f.Add([]byte{0, 1, 2}, uint8(10))
	f.Add([]byte{0, 0, 119, 64}, uint8(1))
	f.Fuzz(func(t *testing.T, picks []byte, limit uint8) {
		if len(picks) == 0 || len(picks) > 16 || limit == 0 {
			return
		}
		var terms []string
		for _, p := range picks {
			terms = append(terms, words[int(p)%len(words)])
		}
		rankAll(t, ix, terms, int(limit), nil)
	})
}

func TestSeek(t *testing.T) {
	list := []posting{{slot: 2}, {slot: 3}, {slot: 7}, {slot: 8}, {slot: 20}, {slot: 21}, {slot: 40}}
	for _, tc := range []struct {
		slot uint32
		want int
	}{{0, 0}, {2, 0}, {3, 1}, {4, 2}, {8, 3}, {9, 4}, {21, 5}, {22, 6}, {40, 6}, {41, 7}} {
		if got := seek(list, tc.slot); got != tc.want {
			t.Errorf("seek(%d) = %d, want %d", tc.slot, got, tc.want)
		}
	}
	if seek(nil, 5) != 0 {
		t.Error("seek in an empty list")
	}
}
