package retrieval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporalnexus"
	"go.temporal.io/sdk/worker"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/metrics"
)

// Handler deadlines. Nexus gives a sync handler 10 s in total, including the
// round trips through the Temporal server; failing well before that leaves
// the caller time to retry instead of seeing a generic upstream timeout.
const (
	DefaultSearchTimeout = 2 * time.Second
	// DefaultWriteTimeout bounds a delete, which waits for an fsync.
	DefaultWriteTimeout = 5 * time.Second
)

// Options configure the service. The zero value is usable.
type Options struct {
	// SearchTimeout bounds one search; zero means DefaultSearchTimeout.
	SearchTimeout time.Duration
	// WriteTimeout bounds one delete; zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger receives handler failures; nil means slog.Default().
	Logger *slog.Logger
	// Metrics records searches and errors; nil records nothing.
	Metrics *metrics.Metrics
}

// Register registers the Nexus service, the index workflow and its activity
// on w, all backed by st.
func Register(w worker.Registry, st backend.Backend, opts Options) error {
	svc, err := NewService(st, opts)
	if err != nil {
		return err
	}
	w.RegisterNexusService(svc)
	RegisterWorkflow(w, st, opts)
	return nil
}

// NewService returns the "retrieval" Nexus service backed by st, ready for
// worker.RegisterNexusService. The index operation also needs the workflow
// and activity that RegisterWorkflow registers.
func NewService(st backend.Backend, opts Options) (*nexus.Service, error) {
	if st == nil {
		return nil, errors.New("retrieval service needs a search backend")
	}
	h := newHandler(st, opts)
	svc := nexus.NewService(ServiceName)
	indexOp, err := temporalnexus.NewWorkflowRunOperationWithOptions(temporalnexus.WorkflowRunOperationOptions[IndexRequest, IndexResponse]{
		Name:       IndexOperationName,
		Workflow:   IndexDocumentsWorkflow,
		GetOptions: h.indexOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("define the index operation: %w", err)
	}
	if err := svc.Register(
		nexus.NewSyncOperation(SearchOperationName, h.search),
		indexOp,
		nexus.NewSyncOperation(DeleteOperationName, h.delete),
		nexus.NewSyncOperation(StatsOperationName, h.stats),
	); err != nil {
		return nil, fmt.Errorf("register retrieval operations: %w", err)
	}
	return svc, nil
}

type handler struct {
	store         backend.Backend
	searchTimeout time.Duration
	writeTimeout  time.Duration
	logger        *slog.Logger
	metrics       *metrics.Metrics
}

func newHandler(st backend.Backend, opts Options) *handler {
	h := &handler{store: st, searchTimeout: opts.SearchTimeout, writeTimeout: opts.WriteTimeout, logger: opts.Logger, metrics: opts.Metrics}
	if h.searchTimeout <= 0 {
		h.searchTimeout = DefaultSearchTimeout
	}
	if h.writeTimeout <= 0 {
		h.writeTimeout = DefaultWriteTimeout
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	return h
}

func (h *handler) search(ctx context.Context, req SearchRequest, _ nexus.StartOperationOptions) (resp SearchResponse, err error) {
	start := time.Now()
	mode, err := ValidateSearchRequest(req)
	defer func() {
		label := string(mode)
		if label == "" {
			label = metrics.ModeUnknown
		}
		outcome := metrics.OutcomeOK
		if err != nil {
			outcome = h.countError(SearchOperationName, err)
		}
		h.metrics.ObserveSearch(label, outcome, time.Since(start))
	}()
	if err != nil {
		return SearchResponse{}, badRequest(err)
	}

	ctx, cancel := context.WithTimeout(ctx, h.searchTimeout)
	defer cancel()
	res, err := h.store.Search(ctx, index.Query{
		Collection: req.Collection,
		Text:       req.Query,
		Vector:     toFloat32(req.QueryVector),
		Mode:       mode,
		TopK:       req.TopK,
		Filters:    req.Filters,
	})
	took := time.Since(start)
	if err != nil {
		return SearchResponse{}, h.failure(SearchOperationName, req.Collection, h.searchTimeout, err,
			"top_k", req.TopK, "mode", mode, "took", took)
	}
	hits := make([]SearchHit, len(res.Hits))
	for i, hit := range res.Hits {
		md := hit.Metadata
		if md == nil {
			md = map[string]string{}
		}
		hits[i] = SearchHit{DocID: hit.ID, Version: hit.Version, Title: hit.Title, Text: hit.Text, Score: hit.Score, Metadata: md}
	}
	return SearchResponse{
		Hits:           hits,
		TotalDocuments: res.TotalDocuments,
		TookMs:         float64(took.Microseconds()) / 1000,
		Mode:           string(res.Mode),
	}, nil
}

// IndexWorkflowID is the id of the workflow that indexes a request: the same
// collection and batch id always map to the same workflow.
func IndexWorkflowID(collection, batchID string) string {
	return "retrieval-index/" + collection + "/" + batchID
}

// indexOptions validates an index request before its workflow starts, so
// that a bad request fails the operation at once rather than the workflow.
func (h *handler) indexOptions(ctx context.Context, req IndexRequest, _ nexus.StartOperationOptions) (client.StartWorkflowOptions, error) {
	err := ValidateIndexRequest(req)
	if err == nil {
		err = h.store.ValidateDocuments(ctx, req.Collection, toDocuments(req.Documents))
	}
	if err != nil {
		h.countError(IndexOperationName, err)
		if errors.Is(err, index.ErrInvalid) {
			return client.StartWorkflowOptions{}, badRequest(errors.New(strings.TrimPrefix(err.Error(), index.ErrInvalid.Error()+": ")))
		}
		return client.StartWorkflowOptions{}, badRequest(err)
	}
	return client.StartWorkflowOptions{
		ID: IndexWorkflowID(req.Collection, req.BatchID),
		// A retried or repeated request joins the indexing under way; once
		// it has finished, the same request runs again and changes nothing,
		// because every document keeps its version.
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, nil
}

func (h *handler) delete(ctx context.Context, req DeleteRequest, _ nexus.StartOperationOptions) (DeleteResponse, error) {
	if err := ValidateDeleteRequest(req); err != nil {
		h.countError(DeleteOperationName, err)
		return DeleteResponse{}, badRequest(err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.writeTimeout)
	defer cancel()
	// The embedded store does not take a context; the deadline bounds the
	// wait for the result, and a delete that finishes later is still
	// durable.
	type result struct {
		res index.DeleteResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := h.store.Delete(ctx, req.Collection, req.IDs)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return DeleteResponse{}, h.failure(DeleteOperationName, req.Collection, h.writeTimeout, r.err, "ids", len(req.IDs))
		}
		return DeleteResponse{Deleted: r.res.Deleted, NotFound: r.res.NotFound}, nil
	case <-ctx.Done():
		return DeleteResponse{}, h.failure(DeleteOperationName, req.Collection, h.writeTimeout, ctx.Err(), "ids", len(req.IDs))
	}
}

func (h *handler) stats(ctx context.Context, req StatsRequest, _ nexus.StartOperationOptions) (StatsResponse, error) {
	if err := ValidateStatsRequest(req); err != nil {
		h.countError(StatsOperationName, err)
		return StatsResponse{}, badRequest(err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.searchTimeout)
	defer cancel()
	all, err := h.store.Stats(ctx)
	if err != nil {
		return StatsResponse{}, h.failure(StatsOperationName, req.Collection, h.searchTimeout, err)
	}
	resp := StatsResponse{Collections: []CollectionStats{}}
	for _, s := range all {
		if req.Collection != "" && s.Name != req.Collection {
			continue
		}
		resp.Collections = append(resp.Collections, CollectionStats{
			Name: s.Name, Documents: s.Documents, Dimension: s.Dimension, Vectors: s.Vectors,
			VectorIndex: s.VectorIndex, BytesOnDisk: s.BytesOnDisk,
		})
	}
	if req.Collection != "" && len(resp.Collections) == 0 {
		err := h.unknownCollection(req.Collection)
		h.countError(StatsOperationName, err)
		return StatsResponse{}, err
	}
	return resp, nil
}

// failure classifies an error from the store: the caller can fix an unknown
// collection or an invalid request, so retrying those is pointless; anything
// else (a deadline, a disk fault) may pass, so it is retryable. It counts
// the error and logs internal ones, without user content.
func (h *handler) failure(op, collection string, timeout time.Duration, err error, logArgs ...any) error {
	var out error
	switch {
	case errors.Is(err, index.ErrUnknownCollection):
		out = h.unknownCollection(collection)
	case errors.Is(err, index.ErrInvalid):
		out = badRequest(errors.New(strings.TrimPrefix(err.Error(), index.ErrInvalid.Error()+": ")))
	default:
		h.logger.Warn(op+" failed", append([]any{"collection", collection, "error", err}, logArgs...)...)
		msg := fmt.Sprintf("%s in collection %q failed; retry later", op, collection)
		if errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("%s in collection %q did not finish within %s; retry later", op, collection, timeout)
		}
		out = &nexus.HandlerError{
			Type:          nexus.HandlerErrorTypeInternal,
			Message:       msg,
			Cause:         err,
			RetryBehavior: nexus.HandlerErrorRetryBehaviorRetryable,
		}
	}
	if op != SearchOperationName {
		// Searches are counted by their own deferred observer.
		h.countError(op, out)
	}
	return out
}

// countError counts err under op and returns its kind: bad_request for
// handler errors of that type and for plain validation errors, timeout for
// deadlines, internal for the rest.
func (h *handler) countError(op string, err error) string {
	kind := metrics.KindBadRequest
	var he *nexus.HandlerError
	switch {
	case errors.As(err, &he) && he.Type == nexus.HandlerErrorTypeBadRequest:
	case errors.Is(err, context.DeadlineExceeded) || (he != nil && errors.Is(he.Cause, context.DeadlineExceeded)):
		kind = metrics.KindTimeout
	case he != nil:
		kind = metrics.KindInternal
	}
	h.metrics.Error(op, kind)
	return kind
}

func (h *handler) unknownCollection(name string) error {
	// Naming the known collections is a courtesy: without them in time, the
	// message goes without.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	known := ""
	if names, err := h.store.Collections(ctx); err == nil {
		known = knownCollections(names)
	}
	return badRequest(fmt.Errorf("collection %q does not exist%s", name, known))
}

// knownCollections names the collections that do exist, to make a typo
// obvious, unless there are too many to be helpful.
func knownCollections(names []string) string {
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
