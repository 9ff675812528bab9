package retrieval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/metrics"
	"github.com/durable-agents/reference/services/retrieval-go/app/seed"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

const demoKB = "../../../../ops/demo/knowledge-base"

// newDemoStore opens a store in a temporary directory with the demo
// knowledge base seeded into "kb", as the worker does at start-up.
func newDemoStore(t *testing.T) *store.Store {
	t.Helper()
	// The worker's default analyzer.
	analyzer := index.MustNewAnalyzer(index.AnalyzerConfig{StopWords: index.StopWordsExtended})
	st, err := store.Open(t.TempDir(), store.Options{Index: index.Options{Analyzer: analyzer}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	docs, err := seed.LoadMarkdownDir(demoKB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Sync(st, "kb", docs); err != nil {
		t.Fatal(err)
	}
	return st
}

func newTestService(t *testing.T, st *store.Store, opts Options) *nexus.Service {
	t.Helper()
	svc, err := NewService(backend.EmbeddedStore{Store: st}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func callSync[I, O any](ctx context.Context, t *testing.T, svc *nexus.Service, name string, req I) (O, error) {
	t.Helper()
	var zero O
	op, ok := svc.Operation(name).(nexus.Operation[I, O])
	if !ok {
		t.Fatalf("service has no %q operation taking %T", name, req)
	}
	res, err := op.Start(ctx, req, nexus.StartOperationOptions{})
	if err != nil {
		return zero, err
	}
	syncRes, ok := res.(*nexus.HandlerStartOperationResultSync[O])
	if !ok {
		t.Fatalf("%s returned %T, want a synchronous result", name, res)
	}
	return syncRes.Value, nil
}

func callSearch(ctx context.Context, t *testing.T, svc *nexus.Service, req SearchRequest) (SearchResponse, error) {
	t.Helper()
	return callSync[SearchRequest, SearchResponse](ctx, t, svc, SearchOperationName, req)
}

func requireHandlerError(t *testing.T, err error, typ nexus.HandlerErrorType, want string) {
	t.Helper()
	var he *nexus.HandlerError
	if !errors.As(err, &he) {
		t.Fatalf("error = %v (%T), want a *nexus.HandlerError", err, err)
	}
	if he.Type != typ || he.Retryable() != (typ == nexus.HandlerErrorTypeInternal) {
		t.Errorf("error type %s retryable=%v, want %s", he.Type, he.Retryable(), typ)
	}
	if !strings.Contains(he.Message, want) {
		t.Errorf("message %q does not contain %q", he.Message, want)
	}
	if strings.Contains(he.Message, "\n") || strings.Contains(he.Message, "invalid request:") {
		t.Errorf("message %q is not one plain sentence", he.Message)
	}
}

func TestSearch(t *testing.T) {
	st := newDemoStore(t)
	total, _ := st.Index().Len("kb")
	svc := newTestService(t, st, Options{})
	tests := []struct {
		name    string
		req     SearchRequest
		wantTop string
		wantMax int
	}{
		{"system check question", SearchRequest{Query: "How long does a refund take?", Collection: "kb", TopK: 3}, "refund-policy", 3},
		{"contract example", SearchRequest{Query: "how long do refunds take", Collection: "kb", TopK: 3, Mode: "bm25"}, "refund-policy", 3},
		{"shipping question", SearchRequest{Query: "When will my parcel arrive? Tracking shows nothing", Collection: "kb", TopK: 2}, "shipping", 2},
		{"security question", SearchRequest{Query: "support asked for my password", Collection: "kb", TopK: 1}, "account-security", 1},
		{"cancellation", SearchRequest{Query: "cancel order", Collection: "kb", TopK: 100}, "order-cancellation", 100},
		{"filter on seed metadata", SearchRequest{Query: "refund", Collection: "kb", TopK: 3, Filters: map[string]string{"source": "seed"}}, "refund-policy", 3},
		{"no match", SearchRequest{Query: "quantum chromodynamics", Collection: "kb", TopK: 5}, "", 0},
		{"only stop words", SearchRequest{Query: "what is it", Collection: "kb", TopK: 5}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := callSearch(context.Background(), t, svc, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Hits == nil {
				t.Fatal("hits is nil; it must encode as []")
			}
			if len(resp.Hits) > tt.wantMax {
				t.Errorf("got %d hits, want at most %d", len(resp.Hits), tt.wantMax)
			}
			if tt.wantTop == "" && len(resp.Hits) != 0 {
				t.Errorf("got hits %+v, want none", resp.Hits)
			} else if tt.wantTop != "" && (len(resp.Hits) == 0 || resp.Hits[0].DocID != tt.wantTop) {
				t.Errorf("top hit = %+v, want %q", resp.Hits, tt.wantTop)
			}
			if resp.TotalDocuments != total || resp.TookMs < 0 || resp.Mode != "bm25" {
				t.Errorf("total_documents %d, took_ms %v, mode %q", resp.TotalDocuments, resp.TookMs, resp.Mode)
			}
			for _, h := range resp.Hits {
				if h.Title == "" || h.Text == "" || h.Score <= 0 || h.Version != 1 || h.Metadata["source"] != "seed" {
					t.Errorf("incomplete hit %+v", h)
				}
			}
		})
	}
}

func TestSearchVectorModes(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Put("v", []index.Document{
		{ID: "x", Version: 1, Text: "refund money", Vector: []float32{1, 0}},
		{ID: "y", Version: 1, Text: "ship parcel"},
	}); err != nil {
		t.Fatal(err)
	}
	svc := newTestService(t, st, Options{})
	for _, tt := range []struct {
		req  SearchRequest
		mode string
		top  string
	}{
		{SearchRequest{Collection: "v", TopK: 2, QueryVector: []float64{1, 0.1}}, "vector", "x"},
		{SearchRequest{Query: "parcel", Collection: "v", TopK: 2, QueryVector: []float64{1, 0.1}}, "hybrid", "x"},
		{SearchRequest{Query: "parcel", Collection: "v", TopK: 2, QueryVector: []float64{1, 0.1}, Mode: "bm25"}, "bm25", "y"},
	} {
		resp, err := callSearch(context.Background(), t, svc, tt.req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Mode != tt.mode || len(resp.Hits) == 0 || resp.Hits[0].DocID != tt.top || resp.Hits[0].Metadata == nil {
			t.Errorf("%+v: mode %s hits %+v", tt.req, resp.Mode, resp.Hits)
		}
	}
}

func TestSearchRejectsBadRequests(t *testing.T) {
	st := newDemoStore(t)
	if _, err := st.Put("vec", []index.Document{{ID: "a", Version: 1, Vector: []float32{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(nil)
	svc := newTestService(t, st, Options{Metrics: m})
	tests := []struct {
		name string
		req  SearchRequest
		want string
	}{
		{"empty query", SearchRequest{Query: "", Collection: "kb", TopK: 3}, "query must not be empty in bm25 mode"},
		{"blank query", SearchRequest{Query: " \t\n\u00a0", Collection: "kb", TopK: 3}, "query must not be empty"},
		{"query too long", SearchRequest{Query: strings.Repeat("é", MaxQueryLength+1), Collection: "kb", TopK: 3}, "maximum is 4096"},
		{"empty collection", SearchRequest{Query: "refund", Collection: "", TopK: 3}, "collection must not be empty"},
		{"collection too long", SearchRequest{Query: "refund", Collection: strings.Repeat("c", MaxCollectionLength+1), TopK: 3}, "maximum is 128"},
		{"top_k zero", SearchRequest{Query: "refund", Collection: "kb", TopK: 0}, "top_k must be between 1 and 100, got 0"},
		{"top_k too large", SearchRequest{Query: "refund", Collection: "kb", TopK: 101}, "got 101"},
		{"unknown collection", SearchRequest{Query: "refund", Collection: "kbb", TopK: 3}, `collection "kbb" does not exist (known collections: kb, vec)`},
		{"unknown mode", SearchRequest{Query: "refund", Collection: "kb", TopK: 3, Mode: "semantic"}, `mode must be bm25, vector or hybrid, got "semantic"`},
		{"vector mode without vector", SearchRequest{Query: "refund", Collection: "kb", TopK: 3, Mode: "vector"}, "mode vector needs a query_vector"},
		{"hybrid without query", SearchRequest{Collection: "vec", TopK: 3, Mode: "hybrid", QueryVector: []float64{1, 2, 3}}, "query must not be empty in hybrid mode"},
		{"wrong dimension", SearchRequest{Collection: "vec", TopK: 3, QueryVector: []float64{1, 2}}, `the query vector has dimension 2; collection "vec" uses 3`},
		{"NaN in vector", SearchRequest{Collection: "vec", TopK: 3, QueryVector: []float64{1, math.NaN(), 3}}, "query_vector element 1 is NaN"},
		{"zero vector", SearchRequest{Collection: "vec", TopK: 3, QueryVector: []float64{0, 0, 0}}, "all zeros"},
		{"empty vector", SearchRequest{Collection: "vec", TopK: 3, QueryVector: []float64{}}, "query_vector is empty"},
		{"too many filters", SearchRequest{Query: "q", Collection: "kb", TopK: 3, Filters: manyEntries(MaxFilters + 1)}, "filters has 17 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := callSearch(context.Background(), t, svc, tt.req)
			requireHandlerError(t, err, nexus.HandlerErrorTypeBadRequest, tt.want)
		})
	}
	if got := counter(t, m, "retrieval_errors_total", "operation", "search", "kind", "bad_request"); got != float64(len(tests)) {
		t.Errorf("retrieval_errors_total{search,bad_request} = %v, want %d", got, len(tests))
	}
	if got := histogramCount(t, m, "retrieval_search_duration_seconds", "mode", "unknown", "outcome", "bad_request"); got == 0 {
		t.Error("bad searches were not observed in retrieval_search_duration_seconds")
	}
}

func manyEntries(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprint("k", i)] = "v"
	}
	return m
}

func TestSearchFailuresAreRetryable(t *testing.T) {
	m := metrics.New(nil)
	svc := newTestService(t, newDemoStore(t), Options{Logger: slog.New(slog.DiscardHandler), Metrics: m})
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := callSearch(expired, t, svc, SearchRequest{Query: "refund", Collection: "kb", TopK: 3})
	requireHandlerError(t, err, nexus.HandlerErrorTypeInternal, "did not finish within 2s")
	if got := counter(t, m, "retrieval_errors_total", "operation", "search", "kind", "timeout"); got != 1 {
		t.Errorf("timeouts counted = %v, want 1", got)
	}
	if got := histogramCount(t, m, "retrieval_search_duration_seconds", "mode", "bm25", "outcome", "timeout"); got != 1 {
		t.Errorf("timed-out searches observed = %v, want 1", got)
	}
}

func TestDeleteAndStats(t *testing.T) {
	st := newDemoStore(t)
	svc := newTestService(t, st, Options{})
	ctx := context.Background()
	stats, err := callSync[StatsRequest, StatsResponse](ctx, t, svc, StatsOperationName, StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Collections) != 1 || stats.Collections[0].Name != "kb" || stats.Collections[0].Documents < 4 ||
		stats.Collections[0].VectorIndex != "none" || stats.Collections[0].BytesOnDisk <= 0 {
		t.Errorf("stats = %+v", stats)
	}
	del, err := callSync[DeleteRequest, DeleteResponse](ctx, t, svc, DeleteOperationName, DeleteRequest{Collection: "kb", IDs: []string{"shipping", "nope"}})
	if err != nil || del != (DeleteResponse{Deleted: 1, NotFound: 1}) {
		t.Errorf("delete = %+v, %v", del, err)
	}
	after, _ := callSync[StatsRequest, StatsResponse](ctx, t, svc, StatsOperationName, StatsRequest{Collection: "kb"})
	if after.Collections[0].Documents != stats.Collections[0].Documents-1 {
		t.Errorf("documents after delete = %d", after.Collections[0].Documents)
	}
	_, err = callSync[DeleteRequest, DeleteResponse](ctx, t, svc, DeleteOperationName, DeleteRequest{Collection: "kb"})
	requireHandlerError(t, err, nexus.HandlerErrorTypeBadRequest, "ids must not be empty")
	_, err = callSync[DeleteRequest, DeleteResponse](ctx, t, svc, DeleteOperationName, DeleteRequest{Collection: "nope", IDs: []string{"a"}})
	requireHandlerError(t, err, nexus.HandlerErrorTypeBadRequest, `collection "nope" does not exist`)
	_, err = callSync[StatsRequest, StatsResponse](ctx, t, svc, StatsOperationName, StatsRequest{Collection: "nope"})
	requireHandlerError(t, err, nexus.HandlerErrorTypeBadRequest, `collection "nope" does not exist`)
}

func TestIndexOptionsValidate(t *testing.T) {
	st := newDemoStore(t)
	if _, err := st.Put("vec", []index.Document{{ID: "a", Version: 1, Vector: []float32{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	h := newHandler(backend.EmbeddedStore{Store: st}, Options{})
	ok := IndexRequest{Collection: "vec", BatchID: "b1", Documents: []IndexDocument{{ID: "x", Version: 1, Vector: []float64{1, 0, 0}}}}
	opts, err := h.indexOptions(context.Background(), ok, nexus.StartOperationOptions{})
	if err != nil || opts.ID != "retrieval-index/vec/b1" {
		t.Fatalf("indexOptions = %+v, %v", opts, err)
	}
	tests := []struct {
		name string
		req  IndexRequest
		want string
	}{
		{"oversized batch", IndexRequest{Collection: "kb", BatchID: "b", Documents: make([]IndexDocument, MaxIndexDocuments+1)}, "257 documents in one request; the maximum is 256"},
		{"wrong dimension", IndexRequest{Collection: "vec", BatchID: "b", Documents: []IndexDocument{{ID: "x", Version: 1, Vector: []float64{1, 2}}}}, `vector of dimension 2; collection "vec" uses 3`},
		{"NaN", IndexRequest{Collection: "vec", BatchID: "b", Documents: []IndexDocument{{ID: "x", Version: 1, Vector: []float64{1, math.NaN(), 2}}}}, "vector element 1 is NaN"},
		{"no batch id", IndexRequest{Collection: "kb", Documents: []IndexDocument{{ID: "x", Version: 1}}}, "batch_id must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.indexOptions(context.Background(), tt.req, nexus.StartOperationOptions{})
			requireHandlerError(t, err, nexus.HandlerErrorTypeBadRequest, tt.want)
		})
	}
}

func TestIndexBatchActivity(t *testing.T) {
	st := newDemoStore(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &Activities{Store: backend.EmbeddedStore{Store: st}}
	env.RegisterActivity(acts.IndexBatch)
	batch := IndexBatch{Collection: "new", Documents: []IndexDocument{{ID: "a", Version: 1, Text: "alpha", Vector: []float64{1, 0}}}}
	for i, want := range []IndexBatchResult{{Added: 1}, {Unchanged: 1}} {
		val, err := env.ExecuteActivity(acts.IndexBatch, batch)
		if err != nil {
			t.Fatal(err)
		}
		var got IndexBatchResult
		if err := val.Get(&got); err != nil || got != want {
			t.Errorf("run %d = %+v, %v; want %+v", i, got, err, want)
		}
	}
	_, err := env.ExecuteActivity(acts.IndexBatch, IndexBatch{Collection: "new", Documents: []IndexDocument{{ID: "b", Version: 1, Vector: []float64{1, 0, 0}}}})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeBadRequest || !appErr.NonRetryable() {
		t.Errorf("wrong dimension in the activity: %v, want a non-retryable %s", err, ErrTypeBadRequest)
	}
}

// callerWorkflow drives every operation the way a Temporal workflow would,
// through a Nexus client, so that the test covers payload conversion, the
// workflow-run operation and error mapping in the SDK as well as the
// handlers.
func callerWorkflow(ctx workflow.Context, req IndexRequest) ([]any, error) {
	c := workflow.NewNexusClient("retrieval", ServiceName)
	opts := workflow.NexusOperationOptions{ScheduleToCloseTimeout: 10 * time.Second}
	var out []any
	var idx IndexResponse
	if err := c.ExecuteOperation(ctx, IndexOperation, req, opts).Get(ctx, &idx); err != nil {
		return nil, err
	}
	out = append(out, idx)
	var search SearchResponse
	if err := c.ExecuteOperation(ctx, SearchOperation, SearchRequest{Query: "keyboard refund", Collection: req.Collection, TopK: 5, QueryVector: []float64{0, 1, 0}}, opts).Get(ctx, &search); err != nil {
		return nil, err
	}
	out = append(out, search)
	var del DeleteResponse
	if err := c.ExecuteOperation(ctx, DeleteOperation, DeleteRequest{Collection: req.Collection, IDs: []string{"d000"}}, opts).Get(ctx, &del); err != nil {
		return nil, err
	}
	out = append(out, del)
	var stats StatsResponse
	if err := c.ExecuteOperation(ctx, StatsOperation, StatsRequest{Collection: req.Collection}, opts).Get(ctx, &stats); err != nil {
		return nil, err
	}
	return append(out, stats), nil
}

func TestOperationsThroughTemporal(t *testing.T) {
	st := newDemoStore(t)
	svc := newTestService(t, st, Options{})
	docs := make([]IndexDocument, 150)
	for i := range docs {
		docs[i] = IndexDocument{ID: fmt.Sprintf("d%03d", i), Version: 1, Title: "Keyboard", Text: fmt.Sprintf("keyboard refund %d", i),
			Vector: []float64{1, float64(i), 0}, Metadata: map[string]string{"n": fmt.Sprint(i)}}
	}
	req := IndexRequest{Collection: "articles", BatchID: "batch-1", Documents: docs}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterNexusService(svc)
	RegisterWorkflow(env, backend.EmbeddedStore{Store: st}, Options{})
	env.RegisterWorkflow(callerWorkflow)
	env.ExecuteWorkflow(callerWorkflow, req)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var raw []any
	if err := env.GetWorkflowResult(&raw); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Index().Len("articles"); n != 149 {
		t.Errorf("articles holds %d documents, want 149", n)
	}
	got := fmt.Sprint(raw)
	for _, want := range []string{"added:150", "batch_id:batch-1", "mode:hybrid", "deleted:1", "vector_index:exact", "dimension:3"} {
		if !strings.Contains(got, want) {
			t.Errorf("results %s lack %q", got, want)
		}
	}
}

func TestBadIndexRequestFailsThroughTemporal(t *testing.T) {
	svc := newTestService(t, newDemoStore(t), Options{})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterNexusService(svc)
	env.RegisterWorkflow(callerWorkflow)
	env.ExecuteWorkflow(callerWorkflow, IndexRequest{Collection: "c", BatchID: "b", Documents: []IndexDocument{{ID: "a", Version: 0}}})
	var he *nexus.HandlerError
	if err := env.GetWorkflowError(); !errors.As(err, &he) || he.Type != nexus.HandlerErrorTypeBadRequest || !strings.Contains(he.Message, "versions start at 1") {
		t.Errorf("workflow error = %v, want a BAD_REQUEST handler error", err)
	}
}

func metricFamily(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func labelsMatch(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func counter(t *testing.T, m *metrics.Metrics, name string, kv ...string) float64 {
	t.Helper()
	f := metricFamily(t, m, name)
	for _, mm := range f.GetMetric() {
		if labelsMatch(mm, kv) {
			return mm.GetCounter().GetValue()
		}
	}
	return 0
}

func histogramCount(t *testing.T, m *metrics.Metrics, name string, kv ...string) uint64 {
	t.Helper()
	f := metricFamily(t, m, name)
	for _, mm := range f.GetMetric() {
		if labelsMatch(mm, kv) {
			return mm.GetHistogram().GetSampleCount()
		}
	}
	return 0
}
