package retrieval

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

func TestValidateSearchRequest(t *testing.T) {
	tests := []struct {
		name     string
		req      SearchRequest
		wantMode index.Mode
		wantErr  string
	}{
		{"minimal", SearchRequest{Query: "a", Collection: "kb", TopK: 1}, index.ModeBM25, ""},
		{"largest", SearchRequest{Query: strings.Repeat("é", MaxQueryLength), Collection: strings.Repeat("c", MaxCollectionLength), TopK: MaxTopK}, index.ModeBM25, ""},
		{"stop words only is still a query", SearchRequest{Query: "the", Collection: "kb", TopK: 3}, index.ModeBM25, ""},
		{"vector defaults to hybrid", SearchRequest{Query: "q", Collection: "kb", TopK: 3, QueryVector: []float64{1}}, index.ModeHybrid, ""},
		{"vector alone defaults to vector", SearchRequest{Query: " ", Collection: "kb", TopK: 3, QueryVector: []float64{1}}, index.ModeVector, ""},
		{"explicit mode wins", SearchRequest{Query: "q", Collection: "kb", TopK: 3, QueryVector: []float64{1}, Mode: "bm25"}, index.ModeBM25, ""},
		{"empty query", SearchRequest{Collection: "kb", TopK: 3}, "", "query must not be empty in bm25 mode"},
		{"whitespace query", SearchRequest{Query: "\u2003\n", Collection: "kb", TopK: 3}, "", "query must not be empty"},
		{"long query", SearchRequest{Query: strings.Repeat("a", MaxQueryLength+1), Collection: "kb", TopK: 3}, "", "query is 4097 characters long"},
		{"whitespace collection", SearchRequest{Query: "q", Collection: " ", TopK: 3}, "", "collection must not be empty"},
		{"long collection", SearchRequest{Query: "q", Collection: strings.Repeat("c", MaxCollectionLength+1), TopK: 3}, "", "collection name is 129 characters long"},
		{"top_k below range", SearchRequest{Query: "q", Collection: "kb", TopK: 0}, "", "top_k must be between 1 and 100, got 0"},
		{"top_k above range", SearchRequest{Query: "q", Collection: "kb", TopK: 1000}, "", "got 1000"},
		{"infinite element", SearchRequest{Collection: "kb", TopK: 3, QueryVector: []float64{math.Inf(-1)}}, "", "element 0 is -Inf"},
		{"element beyond float32", SearchRequest{Collection: "kb", TopK: 3, QueryVector: []float64{1e300}}, "", "not a finite number"},
		{"huge vector", SearchRequest{Collection: "kb", TopK: 3, QueryVector: make([]float64, MaxVectorDimension+1)}, "", "4097 dimensions"},
		{"empty filter key", SearchRequest{Query: "q", Collection: "kb", TopK: 3, Filters: map[string]string{"": "x"}}, "", "filters has an empty key"},
		{"collection checked first", SearchRequest{TopK: 0}, "", "collection must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, err := ValidateSearchRequest(tt.req)
			switch {
			case tt.wantErr == "" && (err != nil || mode != tt.wantMode):
				t.Errorf("= %q, %v; want %q", mode, err, tt.wantMode)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateIndexRequest(t *testing.T) {
	doc := func(id string, mod func(*IndexDocument)) IndexDocument {
		d := IndexDocument{ID: id, Version: 1, Title: "t", Text: "x"}
		if mod != nil {
			mod(&d)
		}
		return d
	}
	req := func(docs ...IndexDocument) IndexRequest {
		return IndexRequest{Collection: "c", BatchID: "b", Documents: docs}
	}
	big := make([]IndexDocument, 100)
	for i := range big {
		big[i] = doc(strings.Repeat("x", i+1), func(d *IndexDocument) { d.Vector = make([]float64, 1100); d.Vector[0] = 1 })
	}
	tests := []struct {
		name    string
		req     IndexRequest
		wantErr string
	}{
		{"ok", req(doc("a", nil), doc("b", func(d *IndexDocument) { d.Vector = []float64{1, 2} })), ""},
		{"no documents", req(), "documents must not be empty"},
		{"no collection", IndexRequest{BatchID: "b", Documents: []IndexDocument{doc("a", nil)}}, "collection must not be empty"},
		{"batch id too long", IndexRequest{Collection: "c", BatchID: strings.Repeat("b", 201), Documents: []IndexDocument{doc("a", nil)}}, "batch_id is 201 characters long"},
		{"empty id", req(doc(" ", nil)), "document 1 has an empty id"},
		{"duplicate ids", req(doc("a", nil), doc("b", nil), doc("a", nil)), `documents 1 and 3 have the same id "a"`},
		{"version zero", req(doc("a", func(d *IndexDocument) { d.Version = 0 })), "versions start at 1"},
		{"text too long", req(doc("a", func(d *IndexDocument) { d.Text = strings.Repeat("x", MaxTextLength+1) })), "split it into chunks"},
		{"too much metadata", req(doc("a", func(d *IndexDocument) { d.Metadata = manyEntries(33) })), "metadata has 33 entries"},
		{"mixed dimensions", req(doc("a", func(d *IndexDocument) { d.Vector = []float64{1} }), doc("b", func(d *IndexDocument) { d.Vector = []float64{1, 2} })), "dimension 2 but document 1 has 1"},
		{"NaN", req(doc("a", func(d *IndexDocument) { d.Vector = []float64{math.NaN()} })), "vector element 0 is NaN"},
		{"request too large", req(big...), "the maximum is 2048 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateIndexRequest(tt.req)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateDeleteAndStatsRequests(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"delete ok", ValidateDeleteRequest(DeleteRequest{Collection: "c", IDs: []string{"a"}}), ""},
		{"delete no ids", ValidateDeleteRequest(DeleteRequest{Collection: "c"}), "ids must not be empty"},
		{"delete blank id", ValidateDeleteRequest(DeleteRequest{Collection: "c", IDs: []string{"a", ""}}), "id 2 is empty"},
		{"delete too many", ValidateDeleteRequest(DeleteRequest{Collection: "c", IDs: make([]string, MaxDeleteIDs+1)}), "1001 ids"},
		{"delete no collection", ValidateDeleteRequest(DeleteRequest{IDs: []string{"a"}}), "collection must not be empty"},
		{"stats all", ValidateStatsRequest(StatsRequest{}), ""},
		{"stats one", ValidateStatsRequest(StatsRequest{Collection: "kb"}), ""},
		{"stats blank", ValidateStatsRequest(StatsRequest{Collection: " "}), "collection must not be empty"},
	}
	for _, tt := range tests {
		switch {
		case tt.wantErr == "" && tt.err != nil:
			t.Errorf("%s: unexpected error: %v", tt.name, tt.err)
		case tt.wantErr != "" && (tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantErr)):
			t.Errorf("%s: error = %v, want one containing %q", tt.name, tt.err, tt.wantErr)
		}
	}
}

func oneLine(t *testing.T, err error) {
	t.Helper()
	if err != nil && (err.Error() == "" || strings.Contains(err.Error(), "\n")) {
		t.Fatalf("error message %q is not one line", err.Error())
	}
}

func FuzzValidateSearchRequest(f *testing.F) {
	f.Add("how long do refunds take", "kb", 3, "", []byte(nil), "")
	f.Add("", "kb", 3, "vector", []byte(`[1, 2]`), "")
	f.Add(" \t", "kb", 1, "hybrid", []byte(`[0]`), "")
	f.Add("refund", "", 100, "bm25", []byte(nil), "lang")
	f.Add("refund", "kb", 0, "semantic", []byte(`[]`), "")
	f.Add("\xff", "\xfe", -1, "", []byte(`[1e308]`), "\x00")
	f.Add("q", "kb", int(^uint(0)>>1), "", []byte(`null`), "k")
	f.Fuzz(func(t *testing.T, query, collection string, topK int, mode string, vector []byte, filterKey string) {
		req := SearchRequest{Query: query, Collection: collection, TopK: topK, Mode: mode}
		_ = json.Unmarshal(vector, &req.QueryVector)
		if filterKey != "" {
			req.Filters = map[string]string{filterKey: query}
		}
		got, err := ValidateSearchRequest(req)
		oneLine(t, err)
		if err != nil {
			return
		}
		// Whatever passes is within the contract's bounds and runs in a
		// mode that has what it needs.
		if strings.TrimSpace(collection) == "" || utf8.RuneCountInString(collection) > MaxCollectionLength ||
			utf8.RuneCountInString(query) > MaxQueryLength || topK < MinTopK || topK > MaxTopK {
			t.Fatalf("accepted an out-of-bounds request %+v", req)
		}
		if (got != index.ModeBM25 && req.QueryVector == nil) || (got != index.ModeVector && strings.TrimSpace(query) == "") {
			t.Fatalf("accepted %+v in mode %s", req, got)
		}
		if req.QueryVector != nil {
			if err := index.CheckVector(toFloat32(req.QueryVector)); err != nil {
				t.Fatalf("accepted a vector the index rejects: %v", err)
			}
		}
	})
}

func FuzzValidateIndexRequest(f *testing.F) {
	f.Add("c", "b", "a", int64(1), "title", "text", "k", "v", []byte(`[1, 0]`), 2)
	f.Add("", "", "", int64(0), "", "", "", "", []byte(nil), 0)
	f.Add("c", "b", "a", int64(-5), "t", "x", "", "v", []byte(`[NaN]`), 1)
	f.Add("c", " ", "a\xff", int64(1), "t", "x", "k", "", []byte(`[0, 0]`), 300)
	f.Fuzz(func(t *testing.T, collection, batchID, id string, version int64, title, text, key, value string, vector []byte, copies int) {
		d := IndexDocument{ID: id, Version: version, Title: title, Text: text}
		if key != "" || value != "" {
			d.Metadata = map[string]string{key: value}
		}
		_ = json.Unmarshal(vector, &d.Vector)
		copies = max(0, min(copies, MaxIndexDocuments+2))
		req := IndexRequest{Collection: collection, BatchID: batchID}
		for i := range copies {
			dd := d
			if i > 0 {
				dd.ID = id + strings.Repeat("#", i)
			}
			req.Documents = append(req.Documents, dd)
		}
		err := ValidateIndexRequest(req)
		oneLine(t, err)
		if err != nil {
			return
		}
		if len(req.Documents) == 0 || len(req.Documents) > MaxIndexDocuments {
			t.Fatalf("accepted %d documents", len(req.Documents))
		}
		// The index accepts whatever validation accepts, for a new collection.
		if err := index.New(index.Options{}).ValidateDocuments(collection, toDocuments(req.Documents)); err != nil {
			t.Fatalf("validation passed but the index rejects it: %v", err)
		}
	})
}

func FuzzValidateDeleteRequest(f *testing.F) {
	f.Add("kb", "a", 1)
	f.Add("", "", 0)
	f.Add("kb", " ", 1001)
	f.Fuzz(func(t *testing.T, collection, id string, n int) {
		req := DeleteRequest{Collection: collection}
		for range max(0, min(n, MaxDeleteIDs+2)) {
			req.IDs = append(req.IDs, id)
		}
		err := ValidateDeleteRequest(req)
		oneLine(t, err)
		if err == nil && (len(req.IDs) == 0 || len(req.IDs) > MaxDeleteIDs || strings.TrimSpace(id) == "") {
			t.Fatalf("accepted %+v", req)
		}
	})
}

func FuzzValidateStatsRequest(f *testing.F) {
	f.Add("kb")
	f.Add("")
	f.Add(" ")
	f.Add(strings.Repeat("c", 129))
	f.Fuzz(func(t *testing.T, collection string) {
		err := ValidateStatsRequest(StatsRequest{Collection: collection})
		oneLine(t, err)
		if err == nil && collection != "" && (strings.TrimSpace(collection) == "" || utf8.RuneCountInString(collection) > MaxCollectionLength) {
			t.Fatalf("accepted %q", collection)
		}
	})
}
