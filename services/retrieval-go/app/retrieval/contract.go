// Package retrieval is the retrieval worker's Nexus service: the contract
// types shared with callers and the handlers that serve them.
//
// The names and JSON field names here are wire contracts defined in
// nexus/retrieval at the repository root; contract_test.go holds them to it.
package retrieval

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nexus-rpc/sdk-go/nexus"
)

// Names the rest of the system uses to reach this service; they must match
// nexus/retrieval/service.json and nexus/endpoints.json.
const (
	ServiceName         = "retrieval"
	SearchOperationName = "search"

	// DefaultNamespace and DefaultTaskQueue are where the "retrieval" Nexus
	// endpoint routes requests.
	DefaultNamespace = "retrieval"
	DefaultTaskQueue = "retrieval"
)

// Limits from nexus/retrieval/schemas/search.input.json.
const (
	MaxQueryLength      = 4096 // in Unicode code points, as JSON Schema counts
	MaxCollectionLength = 128
	MinTopK             = 1
	MaxTopK             = 100
)

// SearchOperation lets Go callers (workflows using a Nexus client) invoke
// search with typed input and output.
var SearchOperation = nexus.NewOperationReference[SearchRequest, SearchResponse](SearchOperationName)

// SearchRequest is the input of the search operation.
type SearchRequest struct {
	Query      string `json:"query"`
	Collection string `json:"collection"`
	TopK       int    `json:"top_k"`
}

// SearchHit is one ranked document.
type SearchHit struct {
	DocID string  `json:"doc_id"`
	Title string  `json:"title"`
	Text  string  `json:"text"`
	Score float64 `json:"score"`
}

// SearchResponse is the output of the search operation.
type SearchResponse struct {
	// Hits is never nil, so that it encodes as [] rather than null.
	Hits []SearchHit `json:"hits"`
	// TotalDocuments is the size of the searched collection.
	TotalDocuments int `json:"total_documents"`
	// TookMs is the time the handler spent ranking, in milliseconds.
	TookMs float64 `json:"took_ms"`
}

// ValidateSearchRequest checks req against the contract. It does not know
// which collections exist; the handler checks that against the index.
func ValidateSearchRequest(req SearchRequest) error {
	switch q := utf8.RuneCountInString(req.Query); {
	case strings.TrimSpace(req.Query) == "":
		return errors.New("query must not be empty")
	case q > MaxQueryLength:
		return fmt.Errorf("query is %d characters long; the maximum is %d", q, MaxQueryLength)
	}
	switch c := utf8.RuneCountInString(req.Collection); {
	case strings.TrimSpace(req.Collection) == "":
		return errors.New("collection must not be empty")
	case c > MaxCollectionLength:
		return fmt.Errorf("collection name is %d characters long; the maximum is %d", c, MaxCollectionLength)
	}
	if req.TopK < MinTopK || req.TopK > MaxTopK {
		return fmt.Errorf("top_k must be between %d and %d, got %d", MinTopK, MaxTopK, req.TopK)
	}
	return nil
}
