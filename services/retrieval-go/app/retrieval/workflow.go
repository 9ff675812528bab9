package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/metrics"
)

const (
	// IndexWorkflowName and IndexBatchActivityName are the registered names;
	// histories refer to them, so they must not change.
	IndexWorkflowName      = "IndexDocumentsWorkflow"
	IndexBatchActivityName = "IndexDocumentsBatch"
	// ActivityBatchSize is how many documents one activity indexes: small
	// enough that a retried batch redoes little, large enough that the
	// journal's fsync is paid rarely.
	ActivityBatchSize = 64
	// ErrTypeBadRequest marks an activity failure that no retry can fix.
	ErrTypeBadRequest = "BadRequest"
)

// IndexBatch is the input of the batch activity.
type IndexBatch struct {
	Collection string          `json:"collection"`
	Documents  []IndexDocument `json:"documents"`
}

// IndexBatchResult is the output of the batch activity.
type IndexBatchResult struct {
	Added     int `json:"added"`
	Replaced  int `json:"replaced"`
	Unchanged int `json:"unchanged"`
	Stale     int `json:"stale"`
}

// IndexDocumentsWorkflow indexes a request's documents in batches, one
// activity each, in order. It is deterministic and does no I/O itself; the
// activity is idempotent because documents are versioned, so a retried
// batch counts its documents as unchanged the second time. The counts in the
// result are the activities' counts.
func IndexDocumentsWorkflow(ctx workflow.Context, req IndexRequest) (IndexResponse, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// A batch waits for its fsync and, every 64 MiB of journal, for
		// searches to drain while the journal rotates: seconds at worst.
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{ErrTypeBadRequest},
		},
	})
	resp := IndexResponse{Collection: req.Collection, BatchID: req.BatchID}
	for _, batch := range indexBatches(ctx, req.Documents) {
		var r IndexBatchResult
		if err := workflow.ExecuteActivity(ctx, IndexBatchActivityName, IndexBatch{Collection: req.Collection, Documents: batch}).Get(ctx, &r); err != nil {
			return IndexResponse{}, err
		}
		resp.Added += r.Added
		resp.Replaced += r.Replaced
		resp.Unchanged += r.Unchanged
		resp.Stale += r.Stale
	}
	return resp, nil
}

// Activities holds what the index activity needs.
type Activities struct {
	Store   backend.Backend
	Metrics *metrics.Metrics
}

// IndexBatch indexes one batch durably. A request that cannot succeed (a
// vector whose dimension no longer matches the collection, because another
// request fixed it first) fails without retries.
func (a *Activities) IndexBatch(ctx context.Context, b IndexBatch) (IndexBatchResult, error) {
	if err := ctx.Err(); err != nil {
		return IndexBatchResult{}, err
	}
	res, err := a.Store.Put(ctx, b.Collection, toDocuments(b.Documents))
	if err != nil {
		if errors.Is(err, index.ErrInvalid) {
			a.Metrics.Error("index_batch", metrics.KindBadRequest)
			return IndexBatchResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRequest, nil)
		}
		a.Metrics.Error("index_batch", metrics.KindInternal)
		activity.GetLogger(ctx).Warn("indexing a batch failed", "collection", b.Collection, "documents", len(b.Documents), "error", err)
		return IndexBatchResult{}, fmt.Errorf("index %d documents into %q: %w", len(b.Documents), b.Collection, err)
	}
	return IndexBatchResult{Added: res.Added, Replaced: res.Replaced, Unchanged: res.Unchanged, Stale: res.Stale}, nil
}

// RegisterWorkflow registers IndexDocumentsWorkflow and its activity on w.
func RegisterWorkflow(w worker.Registry, st backend.Backend, opts Options) {
	w.RegisterWorkflowWithOptions(IndexDocumentsWorkflow, workflow.RegisterOptions{
		Name: IndexWorkflowName,
		// Auto-upgrade: the worker is the single writer of its index
		// directory, so one build runs at a time and a replaced pod's build
		// never comes back; a pinned request would wait for it forever. An
		// in-flight request moves to the new build instead, which is why a
		// change here goes behind workflow.GetVersion (see the byte-capped
		// batches) and the replay gate replays recorded runs.
		VersioningBehavior: workflow.VersioningBehaviorAutoUpgrade,
	})
	acts := &Activities{Store: st, Metrics: opts.Metrics}
	w.RegisterActivityWithOptions(acts.IndexBatch, activity.RegisterOptions{Name: IndexBatchActivityName})
}
