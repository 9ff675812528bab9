package index

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var shop = []Document{
	{ID: "refund-policy", Version: 1, Title: "Refund policy", Text: "Refunds are issued to the original payment method within 5 business days. Refunds over 100 EUR need approval.", Metadata: map[string]string{"lang": "en", "team": "billing"}},
	{ID: "shipping", Version: 1, Title: "Shipping", Text: "Parcels leave the warehouse within 1 business day. Express shipping is available.", Metadata: map[string]string{"lang": "en", "team": "logistics"}},
	{ID: "warranty", Version: 1, Title: "Warranty", Text: "Products carry a 2-year warranty. We repair, replace or refund defective items.", Metadata: map[string]string{"lang": "en", "team": "billing"}},
	{ID: "account", Version: 1, Title: "Account security", Text: "Support never asks for your password.", Metadata: map[string]string{"lang": "de"}},
}

func newShopIndex(t *testing.T, opts Options) *Index {
	t.Helper()
	ix := New(opts)
	if _, err := ix.Put("kb", shop, nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return ix
}

func ids(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func search(t *testing.T, ix *Index, q Query) Result {
	t.Helper()
	res, err := ix.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	return res
}

func TestBM25Ranking(t *testing.T) {
	ix := newShopIndex(t, Options{})
	tests := []struct {
		name    string
		query   string
		limit   int
		filters map[string]string
		want    []string
	}{
		{"most relevant first", "how long do refunds take", 10, nil, []string{"refund-policy", "warranty"}},
		{"stemming matches inflections", "refunded", 10, nil, []string{"refund-policy", "warranty"}},
		{"case and punctuation are ignored", "SHIPPING!!!", 10, nil, []string{"shipping"}},
		{"several terms add up", "business days refunds", 10, nil, []string{"refund-policy", "shipping", "warranty"}},
		{"limit truncates", "business days refunds", 1, nil, []string{"refund-policy"}},
		{"zero limit returns all matches", "refund", 0, nil, []string{"refund-policy", "warranty"}},
		{"filter by metadata", "business days refunds", 10, map[string]string{"team": "billing"}, []string{"refund-policy", "warranty"}},
		{"filters combine", "business refunds password", 10, map[string]string{"team": "billing", "lang": "de"}, []string{}},
		{"filter on a missing key", "refund", 10, map[string]string{"nope": ""}, []string{}},
		{"no matching term", "bicycle", 10, nil, []string{}},
		{"only stop words", "to be or not to be", 10, nil, []string{}},
		{"empty query", "", 10, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := search(t, ix, Query{Collection: "kb", Text: tt.query, TopK: tt.limit, Filters: tt.filters})
			if got := ids(res.Hits); !slices.Equal(got, tt.want) {
				t.Errorf("Search(%q) = %q, want %q", tt.query, got, tt.want)
			}
			if res.TotalDocuments != len(shop) || res.Mode != ModeBM25 {
				t.Errorf("TotalDocuments = %d, mode %s; want %d, bm25", res.TotalDocuments, res.Mode, len(shop))
			}
			for _, h := range res.Hits {
				if h.Title == "" || h.Score <= 0 || h.Version != 1 || h.Metadata["lang"] == "" {
					t.Errorf("incomplete hit %+v", h)
				}
			}
		})
	}
}

func TestBM25ScoresMatchFormula(t *testing.T) {
	// Lengths 2 and 4 (avgdl 3); "alpha" occurs once in each, so N=2, n=2.
	ix := New(Options{Analyzer: MustNewAnalyzer(AnalyzerConfig{Stemmer: StemmerNone})})
	if _, err := ix.Put("c", []Document{
		{ID: "a", Version: 1, Text: "alpha beta"},
		{ID: "b", Version: 1, Text: "alpha gamma delta epsilon"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	res := search(t, ix, Query{Collection: "c", Text: "alpha"})
	idf := math.Log(1 + (2-2+0.5)/(2+0.5))
	bm25 := func(dl float64) float64 { return idf * (DefaultK1 + 1) / (1 + DefaultK1*(1-DefaultB+DefaultB*dl/3)) }
	want := map[string]float64{"a": bm25(2), "b": bm25(4)}
	if len(res.Hits) != 2 || res.Hits[0].ID != "a" {
		t.Fatalf("hits %q, want a then b", ids(res.Hits))
	}
	for _, h := range res.Hits {
		if math.Abs(h.Score-want[h.ID]) > 1e-12 {
			t.Errorf("score(%s) = %v, want %v", h.ID, h.Score, want[h.ID])
		}
	}
	// A repeated query term counts as often as it occurs, as in Anserini.
	twice := search(t, ix, Query{Collection: "c", Text: "alpha ALPHA"})
	for i, h := range twice.Hits {
		if math.Abs(h.Score-2*res.Hits[i].Score) > 1e-12 {
			t.Errorf("repeated term: score(%s) = %v, want %v", h.ID, h.Score, 2*res.Hits[i].Score)
		}
	}
}

func TestTiesBrokenByID(t *testing.T) {
	ix := New(Options{})
	for _, id := range []string{"delta", "alpha", "charlie", "bravo"} {
		if _, err := ix.Put("c", []Document{{ID: id, Version: 1, Text: "identical words", Vector: []float32{1, 1}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"alpha", "bravo", "charlie", "delta"}
	for _, mode := range []Mode{ModeBM25, ModeVector, ModeHybrid} {
		for range 5 {
			res := search(t, ix, Query{Collection: "c", Text: "identical words", Vector: []float32{1, 0}, Mode: mode})
			if got := ids(res.Hits); !slices.Equal(got, want) {
				t.Fatalf("%s: got %q, want %q", mode, got, want)
			}
		}
		res := search(t, ix, Query{Collection: "c", Text: "words", Vector: []float32{1, 0}, Mode: mode, TopK: 2})
		if got := ids(res.Hits); !slices.Equal(got, want[:2]) {
			t.Errorf("%s limited ties: got %q, want %q", mode, got, want[:2])
		}
	}
}

func TestUnicodeSearch(t *testing.T) {
	ix := New(Options{})
	if _, err := ix.Put("intl", []Document{
		{ID: "de", Version: 1, Title: "Rückerstattung", Text: "Erstattung innerhalb von 30 Tagen."},
		{ID: "fr", Version: 1, Title: "Remboursement", Text: "Le café est offert."},
		{ID: "zh", Version: 1, Title: "退款政策", Text: "在 5 个工作日内"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"RÜCKERSTATTUNG", []string{"de"}},
		{"cafe\u0301", []string{"fr"}},
		{"退款", []string{"zh"}},
		{"ｔａｇｅｎ", []string{"de"}},
	}
	for _, tt := range tests {
		if got := ids(search(t, ix, Query{Collection: "intl", Text: tt.query, TopK: 10}).Hits); !slices.Equal(got, tt.want) {
			t.Errorf("Search(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestVersions(t *testing.T) {
	ix := newShopIndex(t, Options{})
	put := func(docs ...Document) PutResult {
		t.Helper()
		res, err := ix.Put("kb", docs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if got := put(shop...); got != (PutResult{Unchanged: 4}) {
		t.Errorf("putting the same versions again = %+v, want 4 unchanged", got)
	}
	if got := put(Document{ID: "shipping", Version: 1, Title: "Changed", Text: "couriers"}); got != (PutResult{Unchanged: 1}) {
		t.Errorf("same version, other content = %+v, want unchanged", got)
	}
	if got := put(Document{ID: "shipping", Version: 3, Title: "Delivery", Text: "Couriers deliver parcels."}); got != (PutResult{Replaced: 1}) {
		t.Errorf("newer version = %+v, want replaced", got)
	}
	if got := put(Document{ID: "shipping", Version: 2, Text: "older"}, Document{ID: "new", Version: 1, Text: "fresh"}); got != (PutResult{Added: 1, Stale: 1}) {
		t.Errorf("older version = %+v, want stale and added", got)
	}
	if n, _ := ix.Len("kb"); n != 5 {
		t.Errorf("Len = %d, want 5", n)
	}
	if res := search(t, ix, Query{Collection: "kb", Text: "express"}); len(res.Hits) != 0 {
		t.Errorf("terms of the replaced version still match: %q", ids(res.Hits))
	}
	res := search(t, ix, Query{Collection: "kb", Text: "couriers"})
	if got := ids(res.Hits); !slices.Equal(got, []string{"shipping"}) || res.Hits[0].Title != "Delivery" || res.Hits[0].Version != 3 {
		t.Errorf("new version not searchable: %+v", res.Hits)
	}
	if d, ok := ix.Get("kb", "shipping"); !ok || d.Version != 3 {
		t.Errorf("Get = %+v, %v", d, ok)
	}
}

func TestPutValidation(t *testing.T) {
	ix := New(Options{})
	if _, err := ix.Put("v", []Document{{ID: "a", Version: 1, Vector: []float32{1, 0, 0}}}, nil); err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	tests := []struct {
		name string
		coll string
		docs []Document
		want string
	}{
		{"no documents", "v", nil, "no documents"},
		{"empty collection", "", []Document{{ID: "a", Version: 1}}, "collection name must not be empty"},
		{"empty id", "v", []Document{{ID: "ok", Version: 1}, {Version: 1}}, "document 2 of 2 has an empty id"},
		{"version zero", "v", []Document{{ID: "a"}}, "versions start at 1"},
		{"duplicate id", "v", []Document{{ID: "a", Version: 1}, {ID: "a", Version: 2}}, `"a" occurs more than once`},
		{"wrong dimension", "v", []Document{{ID: "b", Version: 1, Vector: []float32{1, 2}}}, "dimension 2; collection \"v\" uses 3"},
		{"mixed dimensions in a new collection", "w", []Document{{ID: "a", Version: 1, Vector: []float32{1}}, {ID: "b", Version: 1, Vector: []float32{1, 2}}}, "uses 1"},
		{"NaN", "v", []Document{{ID: "b", Version: 1, Vector: []float32{1, nan, 0}}}, "element 1 is NaN"},
		{"infinity", "v", []Document{{ID: "b", Version: 1, Vector: []float32{float32(math.Inf(1)), 0, 0}}}, "element 0 is +Inf"},
		{"zero vector", "v", []Document{{ID: "b", Version: 1, Vector: []float32{0, 0, 0}}}, "zero length"},
		{"empty vector", "v", []Document{{ID: "b", Version: 1, Vector: []float32{}}}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			_, err := ix.Put(tt.coll, tt.docs, func([]Document) error { called = true; return nil })
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want ErrInvalid containing %q", err, tt.want)
			}
			if called {
				t.Error("commit was called for an invalid put")
			}
			if err := ix.ValidateDocuments(tt.coll, tt.docs); err == nil {
				t.Error("ValidateDocuments accepted it")
			}
		})
	}
	if n, _ := ix.Len("v"); n != 1 {
		t.Errorf("failed puts changed the collection: %d documents", n)
	}
	if _, ok := ix.Len("w"); ok {
		t.Error("a failed put created a collection")
	}
}

func TestCommitFailureChangesNothing(t *testing.T) {
	ix := newShopIndex(t, Options{})
	boom := errors.New("disk full")
	if _, err := ix.Put("kb", []Document{{ID: "x", Version: 1, Text: "x"}}, func([]Document) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("error = %v", err)
	}
	if _, err := ix.Put("new", []Document{{ID: "x", Version: 1}}, func([]Document) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("error = %v", err)
	}
	if _, err := ix.Delete("kb", []string{"shipping"}, func([]string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("error = %v", err)
	}
	if n, _ := ix.Len("kb"); n != len(shop) {
		t.Errorf("Len = %d", n)
	}
	if got := ix.Collections(); !slices.Equal(got, []string{"kb"}) {
		t.Errorf("Collections = %q", got)
	}
	// Commit sees only what changes.
	var seen []string
	if _, err := ix.Put("kb", []Document{shop[0], {ID: "y", Version: 1}}, func(ch []Document) error {
		for _, d := range ch {
			seen = append(seen, d.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"y"}) {
		t.Errorf("commit saw %q, want [y]", seen)
	}
}

func TestDelete(t *testing.T) {
	ix := newShopIndex(t, Options{})
	res, err := ix.Delete("kb", []string{"shipping", "nope", "shipping"}, nil)
	if err != nil || res != (DeleteResult{Deleted: 1, NotFound: 1}) {
		t.Fatalf("Delete = %+v, %v", res, err)
	}
	if got := search(t, ix, Query{Collection: "kb", Text: "parcels"}); len(got.Hits) != 0 || got.TotalDocuments != 3 {
		t.Errorf("deleted document still found: %+v", got)
	}
	if _, err := ix.Delete("nope", []string{"a"}, nil); !errors.Is(err, ErrUnknownCollection) {
		t.Errorf("Delete(unknown collection) = %v", err)
	}
	// After a delete, any version adds the document again.
	if r, _ := ix.Put("kb", []Document{{ID: "shipping", Version: 1, Text: "parcels"}}, nil); r.Added != 1 {
		t.Errorf("re-adding after delete = %+v", r)
	}
}

func TestCollections(t *testing.T) {
	ix := newShopIndex(t, Options{})
	if _, err := ix.Search(context.Background(), Query{Collection: "nope", Text: "refund"}); !errors.Is(err, ErrUnknownCollection) {
		t.Errorf("Search(unknown) error = %v", err)
	}
	if err := ix.CreateCollection("empty", 0, nil); err != nil {
		t.Fatal(err)
	}
	if res := search(t, ix, Query{Collection: "empty", Text: "refund"}); len(res.Hits) != 0 || res.TotalDocuments != 0 {
		t.Errorf("Search(empty) = %+v", res)
	}
	if err := ix.CreateCollection("vec", 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := ix.CreateCollection("vec", 4, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("changing a dimension: %v", err)
	}
	if _, err := ix.Put("vec", []Document{{ID: "a", Version: 1, Vector: []float32{1, 2}}}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a vector of the wrong dimension for a created collection: %v", err)
	}
	if got, want := ix.Collections(), []string{"empty", "kb", "vec"}; !slices.Equal(got, want) {
		t.Errorf("Collections() = %q, want %q", got, want)
	}
	if err := ix.CreateCollection("", 0, nil); err == nil {
		t.Error("CreateCollection accepted an empty name")
	}
}

func TestSearchModes(t *testing.T) {
	ix := New(Options{})
	docs := []Document{
		{ID: "a", Version: 1, Text: "refund money back", Vector: []float32{1, 0, 0}},
		{ID: "b", Version: 1, Text: "shipping parcels", Vector: []float32{0, 1, 0}},
		{ID: "c", Version: 1, Text: "refund policy for parcels", Vector: []float32{0.6, 0.8, 0}},
		{ID: "d", Version: 1, Text: "no vector here refund"},
	}
	if _, err := ix.Put("m", docs, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		q        Query
		wantMode Mode
		want     []string
	}{
		{"default without vector is bm25", Query{Text: "refund"}, ModeBM25, []string{"a", "c", "d"}},
		{"default with vector and text is hybrid", Query{Text: "parcels", Vector: []float32{0, 2, 0}}, ModeHybrid, []string{"b", "c", "a"}},
		{"default with only a vector is vector", Query{Vector: []float32{0, 2, 0}}, ModeVector, []string{"b", "c", "a"}},
		{"vector ignores the text", Query{Text: "refund", Vector: []float32{1, 0.1, 0}, Mode: ModeVector}, ModeVector, []string{"a", "c", "b"}},
		{"vector with a filter", Query{Vector: []float32{0, 1, 0}, Mode: ModeVector, TopK: 1, Filters: map[string]string{"x": "y"}}, ModeVector, []string{}},
		{"bm25 ignores the vector", Query{Text: "refund", Vector: []float32{0, 1, 0}, Mode: ModeBM25}, ModeBM25, []string{"a", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Collection = "m"
			res := search(t, ix, tt.q)
			if got := ids(res.Hits); res.Mode != tt.wantMode || !slices.Equal(got, tt.want) {
				t.Errorf("mode %s hits %q, want %s %q", res.Mode, got, tt.wantMode, tt.want)
			}
		})
	}
	// RRF: c is second in BM25 ("parcels": b, c) and second by vector; a
	// document first in one list and absent from the other scores 1/61.
	res := search(t, ix, Query{Collection: "m", Text: "parcels", Vector: []float32{0, 1, 0}})
	if math.Abs(res.Hits[0].Score-2.0/61) > 1e-12 || math.Abs(res.Hits[1].Score-2.0/62) > 1e-12 {
		t.Errorf("RRF scores = %v, %v; want 2/61 and 2/62", res.Hits[0].Score, res.Hits[1].Score)
	}

	bad := []struct {
		q    Query
		want string
	}{
		{Query{Mode: ModeVector, Text: "x"}, "needs a query vector"},
		{Query{Mode: ModeHybrid, Text: "x"}, "needs a query vector"},
		{Query{Mode: "semantic", Text: "x"}, `"semantic" is not one of`},
		{Query{Vector: []float32{1, 0}}, "dimension 2; collection \"m\" uses 3"},
		{Query{Vector: []float32{0, 0, 0}}, "zero length"},
		{Query{Vector: []float32{float32(math.NaN()), 0, 0}}, "NaN"},
	}
	for _, b := range bad {
		b.q.Collection = "m"
		if _, err := ix.Search(context.Background(), b.q); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Search(%+v) error = %v, want ErrInvalid with %q", b.q, err, b.want)
		}
	}
}

// randomCorpus builds documents with random words and vectors.
func randomCorpus(r *rand.Rand, n, dim int) []Document {
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega")
	docs := make([]Document, n)
	for i := range docs {
		var b strings.Builder
		for range 3 + r.IntN(20) {
			b.WriteString(words[int(math.Min(float64(len(words)-1), r.ExpFloat64()*5))])
			b.WriteByte(' ')
		}
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(r.NormFloat64())
		}
		docs[i] = Document{ID: fmt.Sprintf("d%05d", i), Version: 1, Text: b.String(), Vector: v,
			Metadata: map[string]string{"parity": fmt.Sprint(i % 2)}}
	}
	return docs
}

// The inverted index and the exact scan must agree on every query, filters
// and deletions included; so must the graph, for the top hit, on vectors the
// collection holds.
func TestIndexAgreesWithBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ix := New(Options{ExactVectorLimit: -1})
	docs := randomCorpus(r, 1500, 16)
	if _, err := ix.Put("c", docs, nil); err != nil {
		t.Fatal(err)
	}
	var gone []string
	for i := 0; i < len(docs); i += 7 {
		gone = append(gone, docs[i].ID)
	}
	if _, err := ix.Delete("c", gone, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		q := Query{Collection: "c", Text: docs[r.IntN(len(docs))].Text, TopK: 10}
		if i%2 == 0 {
			q.Filters = map[string]string{"parity": "1"}
		}
		a, err := ix.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ix.SearchBruteForce(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(a.Hits), ids(b.Hits)) {
			t.Fatalf("query %q: index %q, brute force %q", q.Text, ids(a.Hits), ids(b.Hits))
		}
		for j := range a.Hits {
			if math.Abs(a.Hits[j].Score-b.Hits[j].Score) > 1e-9 {
				t.Fatalf("scores differ: %v vs %v", a.Hits[j].Score, b.Hits[j].Score)
			}
		}
	}
	found := 0
	for i := 1; i < len(docs); i += 37 {
		if i%7 == 0 {
			continue
		}
		res := search(t, ix, Query{Collection: "c", Vector: docs[i].Vector, TopK: 1})
		if len(res.Hits) == 1 && res.Hits[0].ID == docs[i].ID {
			found++
		}
		exact, _ := ix.SearchBruteForce(ctx, Query{Collection: "c", Vector: docs[i].Vector, TopK: 1})
		if exact.Hits[0].ID != docs[i].ID || math.Abs(exact.Hits[0].Score-1) > 1e-5 {
			t.Errorf("exact search for a stored vector returned %+v", exact.Hits[0])
		}
	}
	if found < 35 {
		t.Errorf("the graph found %d of 40 stored vectors as their own nearest neighbour", found)
	}
	if st := ix.Stats()[0]; st.VectorIndex != "hnsw" || st.Documents != len(docs)-len(gone) || st.Vectors != st.Documents || st.Dimension != 16 {
		t.Errorf("stats = %+v", st)
	}
}

func TestGraphRebuildAfterManyDeletes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	ix := New(Options{ExactVectorLimit: -1})
	docs := randomCorpus(r, 2400, 8)
	if _, err := ix.Put("c", docs, nil); err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, d := range docs[:1300] {
		gone = append(gone, d.ID)
	}
	if _, err := ix.Delete("c", gone, nil); err != nil {
		t.Fatal(err)
	}
	// Writes go on while the graph is rebuilt in the background; the new
	// graph must include them.
	extra := randomCorpus(r, 2500, 8)[2400:]
	for i := range extra {
		extra[i].ID = fmt.Sprintf("extra%03d", i)
	}
	if _, err := ix.Put("c", extra, nil); err != nil {
		t.Fatal(err)
	}
	c, _ := ix.collection("c")
	for deadline := time.Now().Add(10 * time.Second); c.rebuildings.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if c.rebuildings.Load() != 1 || c.graph.Load().Len() != 1200 {
		t.Errorf("rebuilds %d, graph nodes %d; want 1 and 1200", c.rebuildings.Load(), c.graph.Load().Len())
	}
	if res := search(t, ix, Query{Collection: "c", Vector: extra[50].Vector, TopK: 1}); res.Hits[0].ID != "extra050" {
		t.Errorf("a document added during the rebuild: top hit %q", res.Hits[0].ID)
	}
	res := search(t, ix, Query{Collection: "c", Vector: docs[2000].Vector, TopK: 3})
	if res.Hits[0].ID != docs[2000].ID {
		t.Errorf("after rebuild, top hit %q", res.Hits[0].ID)
	}
}

func TestSearchHonoursContext(t *testing.T) {
	ix := New(Options{})
	docs := make([]Document, 3*cancelCheckInterval)
	for i := range docs {
		docs[i] = Document{ID: fmt.Sprintf("d%05d", i), Version: 1, Text: "common term", Vector: []float32{1, float32(i)}}
	}
	if _, err := ix.Put("big", docs, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, q := range []Query{{Text: "common"}, {Vector: []float32{1, 1}}} {
		q.Collection = "big"
		if _, err := ix.Search(ctx, q); !errors.Is(err, context.Canceled) {
			t.Errorf("Search with cancelled context: error = %v", err)
		}
	}
}

func TestConcurrentSearchAndPut(t *testing.T) {
	ix := New(Options{ExactVectorLimit: 50})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 300 {
				doc := Document{ID: fmt.Sprintf("doc-%d-%d", w, i%40), Version: int64(i/40 + 1), Text: "refund shipping warranty",
					Vector: []float32{float32(w), float32(i), 1}}
				if _, err := ix.Put("kb", []Document{doc}, nil); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 9 {
					if _, err := ix.Delete("kb", []string{fmt.Sprintf("doc-%d-%d", w, i%40-3)}, nil); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for i := range 300 {
				if _, ok := ix.Len("kb"); !ok {
					continue
				}
				res, err := ix.Search(ctx, Query{Collection: "kb", Text: "refund shipping", Vector: []float32{1, float32(i), 1}, TopK: 5})
				if err != nil {
					t.Error(err)
					return
				}
				for j := 1; j < len(res.Hits); j++ {
					if res.Hits[j].Score > res.Hits[j-1].Score {
						t.Errorf("hits out of order: %+v", res.Hits)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if n, _ := ix.Len("kb"); n > 80 || n < 60 {
		t.Errorf("Len = %d, want between 60 and 80", n)
	}
}
