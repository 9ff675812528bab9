package retrieval

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// Validation checks a request against the contract. It does not know which
// collections exist or their dimensions; the handlers check those against
// the index. Every message is one sentence a caller can act on.

// ValidateSearchRequest checks req and returns the mode it resolves to.
func ValidateSearchRequest(req SearchRequest) (index.Mode, error) {
	if err := validateCollection(req.Collection); err != nil {
		return "", err
	}
	if q := utf8.RuneCountInString(req.Query); q > MaxQueryLength {
		return "", fmt.Errorf("query is %d characters long; the maximum is %d", q, MaxQueryLength)
	}
	if req.TopK < MinTopK || req.TopK > MaxTopK {
		return "", fmt.Errorf("top_k must be between %d and %d, got %d", MinTopK, MaxTopK, req.TopK)
	}
	if req.QueryVector != nil {
		if err := validateVector("query_vector", req.QueryVector); err != nil {
			return "", err
		}
	}
	if err := validateMap("filters", req.Filters, MaxFilters); err != nil {
		return "", err
	}
	blank := strings.TrimSpace(req.Query) == ""
	mode := index.Mode(req.Mode)
	switch mode {
	case "":
		switch {
		case req.QueryVector != nil && !blank:
			mode = index.ModeHybrid
		case req.QueryVector != nil:
			mode = index.ModeVector
		default:
			mode = index.ModeBM25
		}
	case index.ModeBM25, index.ModeVector, index.ModeHybrid:
	default:
		return "", fmt.Errorf("mode must be bm25, vector or hybrid, got %q", req.Mode)
	}
	switch {
	case mode == index.ModeBM25 && blank:
		return "", errors.New("query must not be empty in bm25 mode; give a query, or a query_vector for vector mode")
	case mode == index.ModeHybrid && blank:
		return "", errors.New("query must not be empty in hybrid mode; use vector mode to search by query_vector alone")
	case mode != index.ModeBM25 && req.QueryVector == nil:
		return "", fmt.Errorf("mode %s needs a query_vector", mode)
	}
	return mode, nil
}

// ValidateIndexRequest checks req's shape: sizes, ids, versions, vectors.
// Dimensions are checked against the collection by the handler.
func ValidateIndexRequest(req IndexRequest) error {
	if err := validateCollection(req.Collection); err != nil {
		return err
	}
	switch n := utf8.RuneCountInString(req.BatchID); {
	case strings.TrimSpace(req.BatchID) == "":
		return errors.New("batch_id must not be empty; derive it from what you are indexing so that a retry reuses it")
	case n > MaxBatchIDLength:
		return fmt.Errorf("batch_id is %d characters long; the maximum is %d", n, MaxBatchIDLength)
	}
	switch n := len(req.Documents); {
	case n == 0:
		return errors.New("documents must not be empty")
	case n > MaxIndexDocuments:
		return fmt.Errorf("%d documents in one request; the maximum is %d, so split them into several requests with their own batch_id", n, MaxIndexDocuments)
	}
	size := 0
	seen := make(map[string]int, len(req.Documents))
	for i, d := range req.Documents {
		where := fmt.Sprintf("document %d (%q)", i+1, d.ID)
		switch n := utf8.RuneCountInString(d.ID); {
		case strings.TrimSpace(d.ID) == "":
			return fmt.Errorf("document %d has an empty id", i+1)
		case n > MaxDocIDLength:
			return fmt.Errorf("document %d has an id %d characters long; the maximum is %d", i+1, n, MaxDocIDLength)
		}
		if j, dup := seen[d.ID]; dup {
			return fmt.Errorf("documents %d and %d have the same id %q; send one version per id in a request", j+1, i+1, d.ID)
		}
		seen[d.ID] = i
		if d.Version < MinVersion {
			return fmt.Errorf("%s has version %d; versions start at %d", where, d.Version, MinVersion)
		}
		if n := utf8.RuneCountInString(d.Title); n > MaxTitleLength {
			return fmt.Errorf("%s has a title %d characters long; the maximum is %d", where, n, MaxTitleLength)
		}
		if n := utf8.RuneCountInString(d.Text); n > MaxTextLength {
			return fmt.Errorf("%s has a text %d characters long; the maximum is %d, so split it into chunks", where, n, MaxTextLength)
		}
		if err := validateMap(where+" metadata", d.Metadata, MaxMetadataEntries); err != nil {
			return err
		}
		if d.Vector != nil {
			if err := validateVector(where+" vector", d.Vector); err != nil {
				return err
			}
			if first := req.Documents[0].Vector; first != nil && len(d.Vector) != len(first) {
				return fmt.Errorf("%s has a vector of dimension %d but document 1 has %d; all vectors of a collection have one dimension", where, len(d.Vector), len(first))
			}
		}
		size += len(d.ID) + len(d.Title) + len(d.Text) + 20*len(d.Vector) + 64
		for k, v := range d.Metadata {
			size += len(k) + len(v) + 6
		}
	}
	if size > MaxIndexRequestBytes {
		return fmt.Errorf("the request is about %d KiB; the maximum is %d KiB, so split it into several requests with their own batch_id", size>>10, MaxIndexRequestBytes>>10)
	}
	return nil
}

// ValidateDeleteRequest checks req.
func ValidateDeleteRequest(req DeleteRequest) error {
	if err := validateCollection(req.Collection); err != nil {
		return err
	}
	switch n := len(req.IDs); {
	case n == 0:
		return errors.New("ids must not be empty")
	case n > MaxDeleteIDs:
		return fmt.Errorf("%d ids in one request; the maximum is %d", n, MaxDeleteIDs)
	}
	for i, id := range req.IDs {
		if strings.TrimSpace(id) == "" {
			return fmt.Errorf("id %d is empty", i+1)
		}
		if n := utf8.RuneCountInString(id); n > MaxDocIDLength {
			return fmt.Errorf("id %d is %d characters long; the maximum is %d", i+1, n, MaxDocIDLength)
		}
	}
	return nil
}

// ValidateStatsRequest checks req.
func ValidateStatsRequest(req StatsRequest) error {
	if req.Collection == "" {
		return nil
	}
	return validateCollection(req.Collection)
}

func validateCollection(name string) error {
	switch c := utf8.RuneCountInString(name); {
	case strings.TrimSpace(name) == "":
		return errors.New("collection must not be empty")
	case c > MaxCollectionLength:
		return fmt.Errorf("collection name is %d characters long; the maximum is %d", c, MaxCollectionLength)
	}
	return nil
}

func validateVector(what string, v []float64) error {
	if len(v) == 0 {
		return fmt.Errorf("%s is empty; omit it or send null instead", what)
	}
	if len(v) > MaxVectorDimension {
		return fmt.Errorf("%s has %d dimensions; the maximum is %d", what, len(v), MaxVectorDimension)
	}
	zero := true
	for i, x := range v {
		// JSON cannot carry NaN or infinity, but a Go caller's payload
		// converter may; float32 overflow would make an infinity anyway.
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxFloat32 {
			return fmt.Errorf("%s element %d is %v, not a finite number", what, i, x)
		}
		if float32(x) != 0 {
			zero = false
		}
	}
	if zero {
		return fmt.Errorf("%s is all zeros, so it has no direction to compare", what)
	}
	return nil
}

func validateMap(what string, m map[string]string, maxEntries int) error {
	if len(m) > maxEntries {
		return fmt.Errorf("%s has %d entries; the maximum is %d", what, len(m), maxEntries)
	}
	for k, v := range m {
		if k == "" {
			return fmt.Errorf("%s has an empty key", what)
		}
		if n := utf8.RuneCountInString(k); n > MaxKeyLength {
			return fmt.Errorf("%s has a key %d characters long; the maximum is %d", what, n, MaxKeyLength)
		}
		if n := utf8.RuneCountInString(v); n > MaxValueLength {
			return fmt.Errorf("%s key %q has a value %d characters long; the maximum is %d", what, k, n, MaxValueLength)
		}
	}
	return nil
}

// toFloat32 converts a validated contract vector.
func toFloat32(v []float64) []float32 {
	if v == nil {
		return nil
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// toDocuments converts a validated request's documents.
func toDocuments(docs []IndexDocument) []index.Document {
	out := make([]index.Document, len(docs))
	for i, d := range docs {
		out[i] = index.Document{ID: d.ID, Version: d.Version, Title: d.Title, Text: d.Text, Metadata: d.Metadata, Vector: toFloat32(d.Vector)}
	}
	return out
}
