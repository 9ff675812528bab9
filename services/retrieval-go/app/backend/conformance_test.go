package backend_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres"
	"github.com/durable-agents/reference/services/retrieval-go/app/backend/postgres/pgtest"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// implementations are the backends every conformance test runs against,
// each also with its vector searches forced through the HNSW graph.
var implementations = []struct {
	name string
	open func(t *testing.T, opts index.Options) backend.Backend
}{
	{"embedded", openEmbedded},
	{"postgres", openPostgres},
}

func openEmbedded(t *testing.T, opts index.Options) backend.Backend {
	st, err := store.Open(t.TempDir(), store.Options{Index: opts})
	if err != nil {
		t.Fatal(err)
	}
	b := backend.EmbeddedStore{Store: st}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func openPostgres(t *testing.T, opts index.Options) backend.Backend {
	b, err := postgres.Open(context.Background(), postgres.Options{URL: pgtest.Database(t, true), Index: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// forEach runs test against every backend, with exact and graph vector
// search.
func forEach(t *testing.T, test func(t *testing.T, b backend.Backend)) {
	for _, impl := range implementations {
		for _, vs := range []struct {
			name  string
			limit int
		}{{"exact", 0}, {"hnsw", -1}} {
			t.Run(impl.name+"/"+vs.name, func(t *testing.T) {
				test(t, impl.open(t, index.Options{ExactVectorLimit: vs.limit}))
			})
		}
	}
}

var ctx = context.Background()

func doc(id string, version int64, text string, vec []float32, md map[string]string) index.Document {
	return index.Document{ID: id, Version: version, Title: "", Text: text, Vector: vec, Metadata: md}
}

func ids(res index.Result) []string {
	out := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		out[i] = h.ID
	}
	return out
}

func mustPut(t *testing.T, b backend.Backend, coll string, docs ...index.Document) index.PutResult {
	t.Helper()
	res, err := b.Put(ctx, coll, docs)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return res
}

func mustSearch(t *testing.T, b backend.Backend, q index.Query) index.Result {
	t.Helper()
	res, err := b.Search(ctx, q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return res
}

func TestVersionedWrites(t *testing.T) {
	forEach(t, func(t *testing.T, b backend.Backend) {
		steps := []struct {
			name string
			docs []index.Document
			want index.PutResult
		}{
			{"first versions are added", []index.Document{doc("a", 1, "red apples", nil, nil), doc("b", 1, "green pears", nil, nil)}, index.PutResult{Added: 2}},
			{"the same version changes nothing, even with other text", []index.Document{doc("a", 1, "blue plums", nil, nil)}, index.PutResult{Unchanged: 1}},
			{"a newer version replaces", []index.Document{doc("a", 3, "yellow bananas", nil, nil)}, index.PutResult{Replaced: 1}},
			{"an older version is stale", []index.Document{doc("a", 2, "black cherries", nil, nil)}, index.PutResult{Stale: 1}},
			{"a mixed batch counts each", []index.Document{doc("a", 3, "x", nil, nil), doc("b", 2, "green pears ripe", nil, nil), doc("c", 1, "ripe figs", nil, nil)}, index.PutResult{Unchanged: 1, Replaced: 1, Added: 1}},
		}
		for _, s := range steps {
			if got := mustPut(t, b, "fruit", s.docs...); got != s.want {
				t.Fatalf("%s: got %+v, want %+v", s.name, got, s.want)
			}
		}
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"apples", nil}, {"blue", nil}, {"cherries", nil}, {"bananas", []string{"a"}}, {"ripe", []string{"c", "b"}},
		} {
			res := mustSearch(t, b, index.Query{Collection: "fruit", Text: c.query, TopK: 10})
			if got := ids(res); !slices.Equal(got, c.want) && len(got)+len(c.want) > 0 {
				t.Errorf("search %q: got %v, want %v", c.query, got, c.want)
			}
			if res.TotalDocuments != 3 {
				t.Errorf("search %q: total documents %d, want 3", c.query, res.TotalDocuments)
			}
		}
		hit := mustSearch(t, b, index.Query{Collection: "fruit", Text: "bananas", TopK: 1}).Hits[0]
		if hit.Version != 3 || hit.Text != "yellow bananas" {
			t.Errorf("stored a: version %d text %q, want 3 %q", hit.Version, hit.Text, "yellow bananas")
		}

		del, err := b.Delete(ctx, "fruit", []string{"a", "a", "zzz"})
		if err != nil || del != (index.DeleteResult{Deleted: 1, NotFound: 1}) {
			t.Fatalf("delete: %+v, %v; want 1 deleted, 1 not found", del, err)
		}
		if got := ids(mustSearch(t, b, index.Query{Collection: "fruit", Text: "bananas", TopK: 10})); len(got) != 0 {
			t.Errorf("a deleted document is found: %v", got)
		}
		if got := mustPut(t, b, "fruit", doc("a", 1, "red apples", nil, nil)); got != (index.PutResult{Added: 1}) {
			t.Errorf("after a delete any version adds again: got %+v", got)
		}
		if _, err := b.Delete(ctx, "nope", []string{"a"}); !errors.Is(err, index.ErrUnknownCollection) {
			t.Errorf("delete in an unknown collection: %v, want ErrUnknownCollection", err)
		}
	})
}

func TestPutIsAtomicAndValidated(t *testing.T) {
	forEach(t, func(t *testing.T, b backend.Backend) {
		mustPut(t, b, "c", doc("a", 1, "alpha", []float32{1, 0, 0}, nil))
		bad := []struct {
			name string
			docs []index.Document
		}{
			{"empty id", []index.Document{doc("ok", 1, "beta", nil, nil), doc("", 1, "x", nil, nil)}},
			{"version 0", []index.Document{doc("ok", 1, "beta", nil, nil), doc("z", 0, "x", nil, nil)}},
			{"duplicate id", []index.Document{doc("ok", 1, "beta", nil, nil), doc("ok", 2, "x", nil, nil)}},
			{"wrong dimension", []index.Document{doc("ok", 1, "beta", nil, nil), doc("z", 1, "x", []float32{1, 2}, nil)}},
			{"zero vector", []index.Document{doc("ok", 1, "beta", nil, nil), doc("z", 1, "x", []float32{0, 0, 0}, nil)}},
			{"NaN", []index.Document{doc("ok", 1, "beta", nil, nil), doc("z", 1, "x", []float32{float32(math.NaN()), 0, 1}, nil)}},
		}
		for _, c := range bad {
			if err := b.ValidateDocuments(ctx, "c", c.docs); !errors.Is(err, index.ErrInvalid) {
				t.Errorf("validate %s: %v, want ErrInvalid", c.name, err)
			}
			if _, err := b.Put(ctx, "c", c.docs); !errors.Is(err, index.ErrInvalid) {
				t.Errorf("put %s: %v, want ErrInvalid", c.name, err)
			}
		}
		if got := ids(mustSearch(t, b, index.Query{Collection: "c", Text: "beta", TopK: 10})); len(got) != 0 {
			t.Errorf("a refused batch left documents behind: %v", got)
		}
		if _, err := b.Put(ctx, "fresh", []index.Document{doc("", 1, "x", nil, nil)}); err == nil {
			t.Error("a refused put into a new collection succeeded")
		}
		names, err := b.Collections(ctx)
		if err != nil || !slices.Equal(names, []string{"c"}) {
			t.Errorf("collections after a refused put into a new one: %v, %v; want [c]", names, err)
		}
	})
}

func TestCollectionsAndStats(t *testing.T) {
	forEach(t, func(t *testing.T, b backend.Backend) {
		if _, err := b.Search(ctx, index.Query{Collection: "kb", Text: "x", TopK: 1}); !errors.Is(err, index.ErrUnknownCollection) {
			t.Fatalf("search an unknown collection: %v, want ErrUnknownCollection", err)
		}
		for _, c := range []struct {
			name string
			dim  int
		}{{"kb", 0}, {"kb", 0}, {"vec", 3}, {"vec", 3}, {"vec", 0}} {
			if err := b.CreateCollection(ctx, c.name, c.dim); err != nil {
				t.Fatalf("create %s/%d: %v", c.name, c.dim, err)
			}
		}
		if err := b.CreateCollection(ctx, "vec", 4); !errors.Is(err, index.ErrInvalid) {
			t.Errorf("create with another dimension: %v, want ErrInvalid", err)
		}
		if err := b.CreateCollection(ctx, "", 0); !errors.Is(err, index.ErrInvalid) {
			t.Errorf("create with an empty name: %v, want ErrInvalid", err)
		}
		res := mustSearch(t, b, index.Query{Collection: "kb", Text: "anything", TopK: 5})
		if len(res.Hits) != 0 || res.TotalDocuments != 0 {
			t.Errorf("an empty collection answered %+v", res)
		}
		mustPut(t, b, "vec", doc("a", 1, "one", []float32{1, 0, 0}, nil), doc("b", 1, "two", nil, nil))
		mustPut(t, b, "kb", doc("x", 1, "words only", nil, nil))
		if _, err := b.Put(ctx, "vec", []index.Document{doc("c", 1, "x", []float32{1, 0}, nil)}); !errors.Is(err, index.ErrInvalid) {
			t.Errorf("a vector of another dimension: %v, want ErrInvalid", err)
		}
		if _, err := b.Search(ctx, index.Query{Collection: "vec", Vector: []float32{1, 0}, Mode: index.ModeVector, TopK: 1}); !errors.Is(err, index.ErrInvalid) {
			t.Errorf("a query vector of another dimension: %v, want ErrInvalid", err)
		}
		names, err := b.Collections(ctx)
		if err != nil || !slices.Equal(names, []string{"kb", "vec"}) {
			t.Fatalf("collections: %v, %v", names, err)
		}
		stats, err := b.Stats(ctx)
		if err != nil || len(stats) != 2 {
			t.Fatalf("stats: %+v, %v", stats, err)
		}
		got := []index.CollectionStats{stats[0].CollectionStats, stats[1].CollectionStats}
		for i := range got {
			got[i].GraphNodes = 0 // how the graph counts waypoints is the engine's own
			if stats[i].BytesOnDisk <= 0 {
				t.Errorf("%s: bytes %d, want > 0", got[i].Name, stats[i].BytesOnDisk)
			}
		}
		if got[0] != (index.CollectionStats{Name: "kb", Documents: 1, VectorIndex: index.VectorIndexNone}) {
			t.Errorf("kb stats %+v", got[0])
		}
		if got[1].Name != "vec" || got[1].Documents != 2 || got[1].Dimension != 3 || got[1].Vectors != 1 || got[1].VectorIndex == index.VectorIndexNone {
			t.Errorf("vec stats %+v", got[1])
		}
		// Re-indexing the same versions changes nothing, statistics included.
		if r := mustPut(t, b, "vec", doc("a", 1, "one", []float32{1, 0, 0}, nil), doc("b", 1, "two", nil, nil)); r != (index.PutResult{Unchanged: 2}) {
			t.Errorf("re-index: %+v", r)
		}
		again, _ := b.Stats(ctx)
		if !slices.Equal(again, stats) {
			t.Errorf("stats moved on a re-index: %+v, was %+v", again, stats)
		}
	})
}

func TestSearchModesAndFilters(t *testing.T) {
	forEach(t, func(t *testing.T, b backend.Backend) {
		mustPut(t, b, "shop",
			doc("refund-policy", 1, "Refunds are paid within 14 days of the return", []float32{1, 0.1, 0}, map[string]string{"kind": "policy"}),
			doc("shipping", 1, "Parcels ship within 2 days; refunds for lost parcels", []float32{0, 1, 0}, map[string]string{"kind": "policy"}),
			doc("faq-refund", 1, "How do I ask for a refund? Open a ticket", []float32{0.9, 0, 0.3}, map[string]string{"kind": "faq"}),
			doc("warranty", 1, "The warranty lasts two years", []float32{0, 0, 1}, nil),
		)
		cases := []struct {
			name string
			q    index.Query
			want []string
		}{
			{"bm25", index.Query{Text: "refund", TopK: 10}, []string{"refund-policy", "faq-refund", "shipping"}},
			{"bm25 top 1", index.Query{Text: "refund", TopK: 1}, []string{"refund-policy"}},
			{"bm25 filtered", index.Query{Text: "refund", TopK: 10, Filters: map[string]string{"kind": "policy"}}, []string{"refund-policy", "shipping"}},
			{"bm25 filter matching nothing", index.Query{Text: "refund", TopK: 10, Filters: map[string]string{"kind": "none"}}, nil},
			{"vector", index.Query{Vector: []float32{1, 0, 0}, Mode: index.ModeVector, TopK: 2}, []string{"refund-policy", "faq-refund"}},
			{"vector filtered", index.Query{Vector: []float32{1, 0, 0}, Mode: index.ModeVector, TopK: 2, Filters: map[string]string{"kind": "policy"}}, []string{"refund-policy", "shipping"}},
			{"hybrid", index.Query{Text: "refund", Vector: []float32{1, 0, 0}, TopK: 2}, []string{"refund-policy", "faq-refund"}},
			{"hybrid filtered", index.Query{Text: "warranty", Vector: []float32{0, 0, 1}, TopK: 3, Filters: map[string]string{"kind": "faq"}}, []string{"faq-refund"}},
		}
		for _, c := range cases {
			c.q.Collection = "shop"
			res := mustSearch(t, b, c.q)
			if got := ids(res); !slices.Equal(got, c.want) && len(got)+len(c.want) > 0 {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
			wantMode := c.q.Mode
			if wantMode == "" {
				wantMode, _ = index.ResolveMode(c.q)
			}
			if res.Mode != wantMode {
				t.Errorf("%s: mode %s, want %s", c.name, res.Mode, wantMode)
			}
		}
		hit := mustSearch(t, b, index.Query{Collection: "shop", Text: "ticket", TopK: 1}).Hits[0]
		if hit.ID != "faq-refund" || hit.Metadata["kind"] != "faq" || hit.Version != 1 || hit.Score <= 0 {
			t.Errorf("hit content: %+v", hit)
		}
		for _, q := range []index.Query{
			{Collection: "shop", Mode: index.ModeVector, TopK: 1},
			{Collection: "shop", Text: "x", Mode: "fuzzy", TopK: 1},
			{Collection: "shop", Vector: []float32{0, 0, 0}, Mode: index.ModeVector, TopK: 1},
		} {
			if _, err := b.Search(ctx, q); !errors.Is(err, index.ErrInvalid) {
				t.Errorf("search %+v: %v, want ErrInvalid", q, err)
			}
		}
	})
}

// TestBackendsRankAlike puts one random corpus into both backends and checks
// that every mode ranks it the same way with the same scores: PostgreSQL's
// BM25 is the embedded formula over the embedded analyzer's terms, and its
// exact vector search the same cosine.
func TestBackendsRankAlike(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	vocab := make([]string, 60)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%03dx", i)
	}
	word := func() string { return vocab[int(math.Min(float64(len(vocab)-1), rng.ExpFloat64()*12))] }
	vec := func() []float32 {
		v := make([]float32, 8)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	docs := make([]index.Document, 400)
	for i := range docs {
		text := ""
		for range 3 + rng.IntN(30) {
			text += word() + " "
		}
		md := map[string]string{"shard": fmt.Sprint(i % 3)}
		docs[i] = doc(fmt.Sprintf("d%03d", i), 1, text, vec(), md)
	}
	replacement := doc("d001", 2, "w000x w000x w001x", vec(), nil)
	queries := make([]index.Query, 40)
	for n := range queries {
		q := index.Query{Collection: "r", Text: word() + " " + word() + " " + word(), Vector: vec(), TopK: 10}
		switch n % 4 {
		case 0:
			q.Mode = index.ModeBM25
		case 1:
			q.Mode = index.ModeVector
		case 2:
			q.Mode = index.ModeHybrid
		default:
			q.Mode, q.Filters = index.ModeBM25, map[string]string{"shard": "1"}
		}
		queries[n] = q
	}
	backends := make([]backend.Backend, len(implementations))
	for i, impl := range implementations {
		backends[i] = impl.open(t, index.Options{})
		for part := range slices.Chunk(docs, 128) {
			mustPut(t, backends[i], "r", part...)
		}
		// Replace and delete some, so that the statistics have moved.
		mustPut(t, backends[i], "r", replacement)
		if _, err := backends[i].Delete(ctx, "r", []string{"d002", "d003"}); err != nil {
			t.Fatal(err)
		}
	}
	for n, q := range queries {
		want := mustSearch(t, backends[0], q)
		got := mustSearch(t, backends[1], q)
		if !sameRanking(want, got) {
			t.Errorf("query %d (%s %q): postgres %v, embedded %v", n, q.Mode, q.Text, scoresOf(got), scoresOf(want))
		}
	}
}

// sameRanking compares rankings whose scores agree to 1e-6; documents whose
// scores tie within that may come in either order.
func sameRanking(a, b index.Result) bool {
	if len(a.Hits) != len(b.Hits) || a.TotalDocuments != b.TotalDocuments {
		return false
	}
	for i := range a.Hits {
		if math.Abs(a.Hits[i].Score-b.Hits[i].Score) > 1e-6 {
			return false
		}
		if a.Hits[i].ID != b.Hits[i].ID {
			j := slices.IndexFunc(b.Hits, func(h index.Hit) bool { return h.ID == a.Hits[i].ID })
			if j < 0 || math.Abs(b.Hits[j].Score-a.Hits[i].Score) > 1e-6 {
				return false
			}
		}
	}
	return true
}

func scoresOf(r index.Result) []string {
	out := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		out[i] = fmt.Sprintf("%s:%.6f", h.ID, h.Score)
	}
	return out
}

// TestSearchesDuringWrites searches while another goroutine replaces
// documents: every search sees each document in one version, never both or
// neither.
func TestSearchesDuringWrites(t *testing.T) {
	forEach(t, func(t *testing.T, b backend.Backend) {
		const n = 20
		put := func(version int64) {
			docs := make([]index.Document, n)
			for i := range docs {
				docs[i] = doc(fmt.Sprintf("d%02d", i), version, fmt.Sprintf("common v%d", version), []float32{1, float32(i), float32(version)}, nil)
			}
			mustPut(t, b, "live", docs...)
		}
		put(1)
		var wg sync.WaitGroup
		wg.Go(func() {
			for v := int64(2); v <= 15; v++ {
				put(v)
			}
		})
		for range 30 {
			res := mustSearch(t, b, index.Query{Collection: "live", Text: "common", Vector: []float32{1, 0, 0}, TopK: 100})
			if len(res.Hits) != n || res.TotalDocuments != n {
				t.Fatalf("a search during writes saw %d hits of %d documents, want %d", len(res.Hits), res.TotalDocuments, n)
			}
		}
		wg.Wait()
	})
}
