package retrieval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// DefaultSearchTimeout bounds one search. Nexus gives a sync handler 10 s in
// total, including the round trips through the Temporal server; failing well
// before that leaves the caller time to retry instead of seeing a generic
// upstream timeout.
const DefaultSearchTimeout = 2 * time.Second

// Options configure the service. The zero value is usable.
type Options struct {
	// SearchTimeout bounds one search; zero means DefaultSearchTimeout.
	SearchTimeout time.Duration
	// Logger receives handler failures; nil means slog.Default().
	Logger *slog.Logger
}

// NewService returns the "retrieval" Nexus service backed by idx, ready for
// worker.RegisterNexusService.
func NewService(idx *index.Index, opts Options) (*nexus.Service, error) {
	if idx == nil {
		return nil, errors.New("retrieval service needs an index")
	}
	h := &handler{index: idx, timeout: opts.SearchTimeout, logger: opts.Logger}
	if h.timeout <= 0 {
		h.timeout = DefaultSearchTimeout
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	svc := nexus.NewService(ServiceName)
	if err := svc.Register(
		nexus.NewSyncOperation(SearchOperationName, h.search),
	); err != nil {
		return nil, fmt.Errorf("register retrieval operations: %w", err)
	}
	return svc, nil
}

type handler struct {
	index   *index.Index
	timeout time.Duration
	logger  *slog.Logger
}

func (h *handler) search(ctx context.Context, req SearchRequest, _ nexus.StartOperationOptions) (SearchResponse, error) {
	if err := ValidateSearchRequest(req); err != nil {
		return SearchResponse{}, badRequest(err)
	}

	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	start := time.Now()
	res, err := h.index.Search(ctx, req.Collection, req.Query, req.TopK)
	took := time.Since(start)
	if err != nil {
		return SearchResponse{}, h.searchError(req, took, err)
	}

	hits := make([]SearchHit, len(res.Hits))
	for i, hit := range res.Hits {
		hits[i] = SearchHit{DocID: hit.ID, Title: hit.Title, Text: hit.Text, Score: hit.Score}
	}
	return SearchResponse{
		Hits:           hits,
		TotalDocuments: res.TotalDocuments,
		TookMs:         float64(took.Microseconds()) / 1000,
	}, nil
}

// searchError classifies a failed search: the caller can fix an unknown
// collection, so retrying it is pointless; anything else (a deadline, an
// internal fault) may pass, so it is retryable.
func (h *handler) searchError(req SearchRequest, took time.Duration, err error) error {
	if errors.Is(err, index.ErrUnknownCollection) {
		return badRequest(fmt.Errorf("collection %q does not exist%s", req.Collection, h.knownCollections()))
	}
	// The query is user content and stays out of logs.
	h.logger.Warn("search failed", "collection", req.Collection, "top_k", req.TopK, "took", took, "error", err)
	msg := fmt.Sprintf("search in collection %q failed; retry later", req.Collection)
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("search in collection %q did not finish within %s; retry later", req.Collection, h.timeout)
	}
	return &nexus.HandlerError{
		Type:          nexus.HandlerErrorTypeInternal,
		Message:       msg,
		Cause:         err,
		RetryBehavior: nexus.HandlerErrorRetryBehaviorRetryable,
	}
}

// knownCollections names the collections that do exist, to make a typo
// obvious, unless there are too many to be helpful.
func (h *handler) knownCollections() string {
	names := h.index.Collections()
	switch {
	case len(names) == 0:
		return " (there are no collections yet)"
	case len(names) > 10:
		return ""
	}
	return " (known collections: " + strings.Join(names, ", ") + ")"
}

func badRequest(err error) error {
	return &nexus.HandlerError{
		Type:          nexus.HandlerErrorTypeBadRequest,
		Message:       err.Error(),
		RetryBehavior: nexus.HandlerErrorRetryBehaviorNonRetryable,
	}
}
