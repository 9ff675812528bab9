// Package retrieval is the retrieval worker's Nexus service: the contract
// types shared with callers, their validation, the handlers, and the
// workflow behind the index operation.
//
// The names and JSON field names here are wire contracts defined in
// nexus/retrieval at the repository root; contract_test.go holds them to it.
package retrieval

import (
	"github.com/nexus-rpc/sdk-go/nexus"
)

// Names the rest of the system uses to reach this service; they must match
// nexus/retrieval/service.json and nexus/endpoints.json.
const (
	ServiceName         = "retrieval"
	SearchOperationName = "search"
	IndexOperationName  = "index"
	DeleteOperationName = "delete"
	StatsOperationName  = "stats"

	// DefaultNamespace and DefaultTaskQueue are where the "retrieval" Nexus
	// endpoint routes requests.
	DefaultNamespace = "retrieval"
	DefaultTaskQueue = "retrieval"
)

// Limits of nexus/retrieval/schemas, named once for the validators.
// contract_test.go binds each to the schema location it comes from, so a
// limit changed in a schema fails here (and in nexus/python/tests) until the
// constants follow. Lengths count Unicode code points, as JSON Schema does.
const (
	MaxQueryLength      = 4096
	MaxCollectionLength = 128
	MinTopK             = 1
	MaxTopK             = 100
	MaxVectorDimension  = 4096
	MaxFilters          = 16
	MaxMetadataEntries  = 32
	MaxKeyLength        = 128
	MaxValueLength      = 1024
	MaxDocIDLength      = 512
	MaxTitleLength      = 1024
	MaxTextLength       = 100_000
	MaxBatchIDLength    = 200
	MinVersion          = 1
	// MaxIndexDocuments bounds one index request; larger loads are split by
	// the caller into several requests (several batch ids).
	MaxIndexDocuments = 256
	// MaxIndexRequestBytes bounds an index request's estimated JSON size
	// (strings plus 20 bytes a vector element), so that it stays under
	// Temporal's payload size limit once it is workflow input.
	MaxIndexRequestBytes = 2 << 20
	MaxDeleteIDs         = 1000
)

// Typed references let Go callers (workflows using a Nexus client) invoke
// the operations with typed input and output.
var (
	SearchOperation = nexus.NewOperationReference[SearchRequest, SearchResponse](SearchOperationName)
	IndexOperation  = nexus.NewOperationReference[IndexRequest, IndexResponse](IndexOperationName)
	DeleteOperation = nexus.NewOperationReference[DeleteRequest, DeleteResponse](DeleteOperationName)
	StatsOperation  = nexus.NewOperationReference[StatsRequest, StatsResponse](StatsOperationName)
)

// SearchRequest is the input of the search operation.
type SearchRequest struct {
	// Query is free text. It may be empty in vector mode.
	Query      string `json:"query"`
	Collection string `json:"collection"`
	TopK       int    `json:"top_k"`
	// Mode is "bm25", "vector" or "hybrid". Empty (or null) means hybrid
	// when QueryVector is set and Query is not empty, vector when only
	// QueryVector is set, and bm25 otherwise.
	Mode string `json:"mode,omitempty"`
	// QueryVector is the query's embedding, from the same model as the
	// documents' vectors; null when there is none.
	QueryVector []float64 `json:"query_vector"`
	// Filters keep only documents whose metadata holds each key with exactly
	// the given value; null or {} for none.
	Filters map[string]string `json:"filters"`
}

// SearchHit is one ranked document.
type SearchHit struct {
	DocID   string `json:"doc_id"`
	Version int64  `json:"version"`
	Title   string `json:"title"`
	Text    string `json:"text"`
	// Score is the BM25 score, the cosine similarity, or the reciprocal rank
	// fusion score, by mode; comparable only within one response.
	Score float64 `json:"score"`
	// Metadata is never nil, so that it encodes as {} rather than null.
	Metadata map[string]string `json:"metadata"`
}

// SearchResponse is the output of the search operation.
type SearchResponse struct {
	// Hits is never nil, so that it encodes as [] rather than null.
	Hits []SearchHit `json:"hits"`
	// TotalDocuments is the size of the searched collection.
	TotalDocuments int `json:"total_documents"`
	// TookMs is the time the handler spent ranking, in milliseconds.
	TookMs float64 `json:"took_ms"`
	// Mode is the mode the search ran in.
	Mode string `json:"mode"`
}

// IndexDocument is a document to add or replace. A chunk of a longer text is
// a document of its own; callers give it an id such as "manual#3" and may
// name the parent in its metadata.
type IndexDocument struct {
	ID string `json:"id"`
	// Version orders the writes of one id: the same version again changes
	// nothing, an older one is ignored, a newer one replaces.
	Version  int64             `json:"version"`
	Title    string            `json:"title"`
	Text     string            `json:"text"`
	Metadata map[string]string `json:"metadata"`
	// Vector is the document's embedding, or null. The first vector a
	// collection receives fixes its dimension.
	Vector []float64 `json:"vector"`
}

// IndexRequest is the input of the index operation.
type IndexRequest struct {
	Collection string `json:"collection"`
	// BatchID identifies the request for idempotency: the workflow id is
	// derived from the collection and it, so a retried request joins the
	// indexing already under way instead of starting another.
	BatchID   string          `json:"batch_id"`
	Documents []IndexDocument `json:"documents"`
}

// IndexResponse is the output of the index operation: what happened to each
// document, counted.
type IndexResponse struct {
	Collection string `json:"collection"`
	BatchID    string `json:"batch_id"`
	Added      int    `json:"added"`
	Replaced   int    `json:"replaced"`
	Unchanged  int    `json:"unchanged"`
	// Stale counts documents older than the stored version, ignored.
	Stale int `json:"stale"`
}

// DeleteRequest is the input of the delete operation.
type DeleteRequest struct {
	Collection string   `json:"collection"`
	IDs        []string `json:"ids"`
}

// DeleteResponse is the output of the delete operation.
type DeleteResponse struct {
	Deleted  int `json:"deleted"`
	NotFound int `json:"not_found"`
}

// StatsRequest is the input of the stats operation.
type StatsRequest struct {
	// Collection limits the answer to one collection; empty or null means
	// all.
	Collection string `json:"collection,omitempty"`
}

// CollectionStats describes one collection.
type CollectionStats struct {
	Name      string `json:"name"`
	Documents int    `json:"documents"`
	// Dimension is the vector dimension, 0 until the first vector arrives.
	Dimension int `json:"dimension"`
	Vectors   int `json:"vectors"`
	// VectorIndex is how vector searches run now: index.VectorIndexNone,
	// VectorIndexExact or VectorIndexHNSW.
	VectorIndex string `json:"vector_index"`
	// BytesOnDisk counts the collection's records in the snapshot and the
	// journal.
	BytesOnDisk int64 `json:"bytes_on_disk"`
}

// StatsResponse is the output of the stats operation.
type StatsResponse struct {
	// Collections is never nil, in name order.
	Collections []CollectionStats `json:"collections"`
}
