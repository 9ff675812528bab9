package index

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
)

var shop = []Document{
	{ID: "refund-policy", Title: "Refund policy", Text: "Refunds are issued to the original payment method within 5 business days. Refunds over 100 EUR need approval."},
	{ID: "shipping", Title: "Shipping", Text: "Parcels leave the warehouse within 1 business day. Express shipping is available."},
	{ID: "warranty", Title: "Warranty", Text: "Products carry a 2-year warranty. We repair, replace or refund defective items."},
	{ID: "account", Title: "Account security", Text: "Support never asks for your password."},
}

func newShopIndex(t *testing.T) *Index {
	t.Helper()
	ix := New()
	if err := ix.Add("kb", shop...); err != nil {
		t.Fatalf("Add: %v", err)
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

func TestSearchRanking(t *testing.T) {
	ix := newShopIndex(t)
	tests := []struct {
		name  string
		query string
		limit int
		want  []string
	}{
		{"most relevant first", "how long do refunds take", 10, []string{"refund-policy"}},
		// Both contain "refund" once (one in the title, one in the text); the
		// shorter document wins.
		{"title and text both count", "refund", 10, []string{"warranty", "refund-policy"}},
		{"case and punctuation are ignored", "SHIPPING!!!", 10, []string{"shipping"}},
		{"several terms add up", "business days refunds", 10, []string{"refund-policy", "shipping"}},
		{"limit truncates", "business days refunds", 1, []string{"refund-policy"}},
		{"zero limit returns all matches", "refund", 0, []string{"warranty", "refund-policy"}},
		{"no matching term", "bicycle", 10, []string{}},
		{"only stop words", "what is the", 10, []string{}},
		{"empty query", "", 10, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ix.Search(context.Background(), "kb", tt.query, tt.limit)
			if err != nil {
				t.Fatalf("Search(%q): %v", tt.query, err)
			}
			if got := ids(res.Hits); !slices.Equal(got, tt.want) {
				t.Errorf("Search(%q) = %q, want %q", tt.query, got, tt.want)
			}
			if res.Hits == nil {
				t.Errorf("Search(%q) returned nil hits; want an empty slice so JSON encodes []", tt.query)
			}
			if res.TotalDocuments != len(shop) {
				t.Errorf("TotalDocuments = %d, want %d", res.TotalDocuments, len(shop))
			}
		})
	}
}

func TestSearchScoresMatchBM25(t *testing.T) {
	// Two documents of lengths 2 and 4 (avgdl 3); "alpha" occurs in both,
	// once in each, so N=2, n=2.
	ix := New()
	if err := ix.Add("c",
		Document{ID: "a", Text: "alpha beta"},
		Document{ID: "b", Text: "alpha gamma delta epsilon"},
	); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(context.Background(), "c", "alpha", 0)
	if err != nil {
		t.Fatal(err)
	}
	idf := math.Log(1 + (2-2+0.5)/(2+0.5))
	bm25 := func(dl float64) float64 { return idf * (K1 + 1) / (1 + K1*(1-B+B*dl/3)) }
	want := map[string]float64{"a": bm25(2), "b": bm25(4)}
	if len(res.Hits) != 2 {
		t.Fatalf("got %d hits, want 2", len(res.Hits))
	}
	for _, h := range res.Hits {
		if math.Abs(h.Score-want[h.ID]) > 1e-12 {
			t.Errorf("score(%s) = %v, want %v", h.ID, h.Score, want[h.ID])
		}
	}
	if res.Hits[0].ID != "a" {
		t.Errorf("shorter document should rank first, got %q", ids(res.Hits))
	}

	repeated, err := ix.Search(context.Background(), "c", "alpha ALPHA alpha", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(repeated.Hits, res.Hits) {
		t.Errorf("repeating a query term changed the result: %+v, want %+v", repeated.Hits, res.Hits)
	}
}

func TestSearchTiesBrokenByID(t *testing.T) {
	ix := New()
	// Identical content gives identical scores; insertion order is scrambled
	// on purpose so that only the tie-break can produce the expected order.
	for _, id := range []string{"delta", "alpha", "charlie", "bravo"} {
		if err := ix.Add("c", Document{ID: id, Text: "identical words"}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"alpha", "bravo", "charlie", "delta"}
	for i := range 20 {
		res, err := ix.Search(context.Background(), "c", "identical words", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res.Hits); !slices.Equal(got, want) {
			t.Fatalf("run %d: got %q, want %q", i, got, want)
		}
	}
	res, _ := ix.Search(context.Background(), "c", "words", 2)
	if got := ids(res.Hits); !slices.Equal(got, want[:2]) {
		t.Errorf("limited ties: got %q, want %q", got, want[:2])
	}
}

func TestSearchUnicode(t *testing.T) {
	ix := New()
	if err := ix.Add("intl",
		Document{ID: "de", Title: "Rückerstattung", Text: "Erstattung innerhalb von 30 Tagen."},
		Document{ID: "fr", Title: "Remboursement", Text: "Le café est offert."},
		Document{ID: "zh", Title: "退款政策", Text: "退款 在 5 个工作日内"},
	); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"RÜCKERSTATTUNG", []string{"de"}},
		{"cafe\u0301", []string{"fr"}}, // decomposed query, precomposed document
		{"退款", []string{"zh"}},
		{"ｔａｇｅｎ", []string{"de"}}, // full-width query
	}
	for _, tt := range tests {
		res, err := ix.Search(context.Background(), "intl", tt.query, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res.Hits); !slices.Equal(got, tt.want) {
			t.Errorf("Search(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestAddReplacesByID(t *testing.T) {
	ix := newShopIndex(t)
	if err := ix.Add("kb", Document{ID: "shipping", Title: "Delivery", Text: "Couriers deliver parcels."}); err != nil {
		t.Fatal(err)
	}
	if n, _ := ix.Len("kb"); n != len(shop) {
		t.Errorf("Len = %d after replacing, want %d", n, len(shop))
	}
	ctx := context.Background()
	if res, _ := ix.Search(ctx, "kb", "express", 10); len(res.Hits) != 0 {
		t.Errorf("terms of the replaced version still match: %q", ids(res.Hits))
	}
	res, _ := ix.Search(ctx, "kb", "couriers", 10)
	if got := ids(res.Hits); !slices.Equal(got, []string{"shipping"}) {
		t.Errorf("new version not searchable: %q", got)
	}
	if res.Hits[0].Title != "Delivery" {
		t.Errorf("hit title = %q, want the new title", res.Hits[0].Title)
	}

	// Within one call the last document with an ID wins.
	if err := ix.Add("kb", Document{ID: "x", Text: "first"}, Document{ID: "x", Text: "second"}); err != nil {
		t.Fatal(err)
	}
	if res, _ := ix.Search(ctx, "kb", "first", 10); len(res.Hits) != 0 {
		t.Errorf("earlier duplicate kept: %q", ids(res.Hits))
	}
}

func TestAddIsAtomic(t *testing.T) {
	ix := New()
	err := ix.Add("kb", Document{ID: "ok", Text: "fine"}, Document{Text: "no id"})
	if err == nil {
		t.Fatal("Add accepted a document without an ID")
	}
	if _, ok := ix.Len("kb"); ok {
		t.Error("a failed Add created the collection")
	}
	if err := ix.Add("", Document{ID: "a"}); err == nil {
		t.Error("Add accepted an empty collection name")
	}
}

func TestCollections(t *testing.T) {
	ix := newShopIndex(t)
	ctx := context.Background()

	_, err := ix.Search(ctx, "nope", "refund", 10)
	if !errors.Is(err, ErrUnknownCollection) {
		t.Errorf("Search(unknown) error = %v, want ErrUnknownCollection", err)
	}

	if err := ix.CreateCollection("empty"); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, "empty", "refund", 10)
	if err != nil || len(res.Hits) != 0 || res.TotalDocuments != 0 {
		t.Errorf("Search(empty) = %+v, %v; want no hits and no error", res, err)
	}

	// Collections are independent.
	if err := ix.Add("other", Document{ID: "refund-policy", Text: "unrelated"}); err != nil {
		t.Fatal(err)
	}
	if res, _ := ix.Search(ctx, "kb", "refunds", 10); !slices.Equal(ids(res.Hits), []string{"refund-policy"}) {
		t.Errorf("adding to another collection changed kb: %q", ids(res.Hits))
	}
	if got, want := ix.Collections(), []string{"empty", "kb", "other"}; !slices.Equal(got, want) {
		t.Errorf("Collections() = %q, want %q", got, want)
	}
	if err := ix.CreateCollection(""); err == nil {
		t.Error("CreateCollection accepted an empty name")
	}
}

func TestSearchHonoursContext(t *testing.T) {
	ix := New()
	docs := make([]Document, 3*cancelCheckInterval)
	for i := range docs {
		docs[i] = Document{ID: fmt.Sprintf("d%05d", i), Text: "common term"}
	}
	if err := ix.Add("big", docs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Search(ctx, "big", "common", 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Search with cancelled context: error = %v, want context.Canceled", err)
	}
}

func TestConcurrentSearchAndAdd(t *testing.T) {
	ix := newShopIndex(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("doc-%d-%d", w, i%10)
				if err := ix.Add("kb", Document{ID: id, Text: "refund shipping warranty"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 200 {
				res, err := ix.Search(ctx, "kb", "refund shipping", 5)
				if err != nil {
					t.Error(err)
					return
				}
				if !slices.IsSortedFunc(res.Hits, func(a, b Hit) int {
					if a.Score != b.Score {
						return cmp.Compare(b.Score, a.Score)
					}
					return cmp.Compare(a.ID, b.ID)
				}) {
					t.Errorf("hits out of order: %+v", res.Hits)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, _ := ix.Len("kb"); n != len(shop)+40 {
		t.Errorf("Len = %d, want %d", n, len(shop)+40)
	}
}
