package retrieval

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateSearchRequest(t *testing.T) {
	tests := []struct {
		name    string
		req     SearchRequest
		wantErr string
	}{
		{"minimal", SearchRequest{Query: "a", Collection: "kb", TopK: 1}, ""},
		{"largest", SearchRequest{Query: strings.Repeat("é", MaxQueryLength), Collection: strings.Repeat("c", MaxCollectionLength), TopK: MaxTopK}, ""},
		{"stop words only is still a query", SearchRequest{Query: "the", Collection: "kb", TopK: 3}, ""},
		{"empty query", SearchRequest{Collection: "kb", TopK: 3}, "query must not be empty"},
		{"whitespace query", SearchRequest{Query: "\u2003\n", Collection: "kb", TopK: 3}, "query must not be empty"},
		{"long query", SearchRequest{Query: strings.Repeat("a", MaxQueryLength+1), Collection: "kb", TopK: 3}, "query is 4097 characters long"},
		{"whitespace collection", SearchRequest{Query: "q", Collection: " ", TopK: 3}, "collection must not be empty"},
		{"long collection", SearchRequest{Query: "q", Collection: strings.Repeat("c", MaxCollectionLength+1), TopK: 3}, "collection name is 129 characters long"},
		{"top_k below range", SearchRequest{Query: "q", Collection: "kb", TopK: 0}, "top_k must be between 1 and 100, got 0"},
		{"top_k above range", SearchRequest{Query: "q", Collection: "kb", TopK: 1000}, "top_k must be between 1 and 100, got 1000"},
		{"query checked first", SearchRequest{TopK: 0}, "query must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSearchRequest(tt.req)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzValidateSearchRequest(f *testing.F) {
	f.Add("how long do refunds take", "kb", 3)
	f.Add("", "kb", 3)
	f.Add(" \t", "kb", 1)
	f.Add("refund", "", 100)
	f.Add("refund", "kb", 0)
	f.Add("refund", "kb", 101)
	f.Add("\xff", "\xfe", -1)
	f.Add("q", "kb", int(^uint(0)>>1))
	f.Fuzz(func(t *testing.T, query, collection string, topK int) {
		req := SearchRequest{Query: query, Collection: collection, TopK: topK}
		err := ValidateSearchRequest(req)
		valid := strings.TrimSpace(query) != "" && utf8.RuneCountInString(query) <= MaxQueryLength &&
			strings.TrimSpace(collection) != "" && utf8.RuneCountInString(collection) <= MaxCollectionLength &&
			topK >= MinTopK && topK <= MaxTopK
		if valid != (err == nil) {
			t.Fatalf("ValidateSearchRequest(%+v) = %v, but the request is valid=%v", req, err, valid)
		}
		if err != nil && (err.Error() == "" || strings.Contains(err.Error(), "\n")) {
			t.Fatalf("error message %q is not one line", err.Error())
		}
	})
}
