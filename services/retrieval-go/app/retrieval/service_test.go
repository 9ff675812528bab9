package retrieval

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/seed"
)

const demoKB = "../../../../ops/demo/knowledge-base"

func newDemoIndex(t *testing.T) *index.Index {
	t.Helper()
	docs, err := seed.LoadMarkdownDir(demoKB)
	if err != nil {
		t.Fatal(err)
	}
	idx := index.New()
	if err := idx.Add("kb", docs...); err != nil {
		t.Fatal(err)
	}
	return idx
}

func demoSize(t *testing.T, idx *index.Index) int {
	t.Helper()
	n, ok := idx.Len("kb")
	if !ok || n == 0 {
		t.Fatal("demo knowledge base is empty")
	}
	return n
}

// searchOp returns the search operation as registered on svc, so that tests
// exercise exactly what the worker serves.
func searchOp(t *testing.T, svc *nexus.Service) nexus.Operation[SearchRequest, SearchResponse] {
	t.Helper()
	op, ok := svc.Operation(SearchOperationName).(nexus.Operation[SearchRequest, SearchResponse])
	if !ok {
		t.Fatalf("service has no %q operation taking SearchRequest and returning SearchResponse", SearchOperationName)
	}
	return op
}

func callSearch(ctx context.Context, t *testing.T, svc *nexus.Service, req SearchRequest) (SearchResponse, error) {
	t.Helper()
	res, err := searchOp(t, svc).Start(ctx, req, nexus.StartOperationOptions{})
	if err != nil {
		return SearchResponse{}, err
	}
	syncRes, ok := res.(*nexus.HandlerStartOperationResultSync[SearchResponse])
	if !ok {
		t.Fatalf("search returned %T, want a synchronous result", res)
	}
	return syncRes.Value, nil
}

func TestSearch(t *testing.T) {
	idx := newDemoIndex(t)
	total := demoSize(t, idx)
	svc, err := NewService(idx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		req     SearchRequest
		wantTop string
		wantMax int
	}{
		{"contract example", SearchRequest{Query: "how long do refunds take", Collection: "kb", TopK: 3}, "refund-policy", 3},
		{"shipping question", SearchRequest{Query: "When will my parcel arrive? Tracking shows nothing", Collection: "kb", TopK: 2}, "shipping", 2},
		{"security question", SearchRequest{Query: "support asked for my password", Collection: "kb", TopK: 1}, "account-security", 1},
		{"cancellation", SearchRequest{Query: "cancel order", Collection: "kb", TopK: 100}, "order-cancellation", 100},
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
			if tt.wantTop == "" {
				if len(resp.Hits) != 0 {
					t.Errorf("got hits %+v, want none", resp.Hits)
				}
			} else if len(resp.Hits) == 0 || resp.Hits[0].DocID != tt.wantTop {
				t.Errorf("top hit = %+v, want %q", resp.Hits, tt.wantTop)
			}
			if resp.TotalDocuments != total {
				t.Errorf("total_documents = %d, want %d", resp.TotalDocuments, total)
			}
			if resp.TookMs < 0 {
				t.Errorf("took_ms = %v, want >= 0", resp.TookMs)
			}
			for _, h := range resp.Hits {
				if h.Title == "" || h.Text == "" || h.Score <= 0 {
					t.Errorf("incomplete hit %+v", h)
				}
			}
		})
	}
}

func TestSearchRejectsBadRequests(t *testing.T) {
	svc, err := NewService(newDemoIndex(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  SearchRequest
		want string
	}{
		{"empty query", SearchRequest{Query: "", Collection: "kb", TopK: 3}, "query must not be empty"},
		{"blank query", SearchRequest{Query: " \t\n\u00a0", Collection: "kb", TopK: 3}, "query must not be empty"},
		{"query too long", SearchRequest{Query: strings.Repeat("é", MaxQueryLength+1), Collection: "kb", TopK: 3}, "maximum is 4096"},
		{"empty collection", SearchRequest{Query: "refund", Collection: "", TopK: 3}, "collection must not be empty"},
		{"collection too long", SearchRequest{Query: "refund", Collection: strings.Repeat("c", MaxCollectionLength+1), TopK: 3}, "maximum is 128"},
		{"top_k zero", SearchRequest{Query: "refund", Collection: "kb", TopK: 0}, "top_k must be between 1 and 100, got 0"},
		{"top_k negative", SearchRequest{Query: "refund", Collection: "kb", TopK: -1}, "got -1"},
		{"top_k too large", SearchRequest{Query: "refund", Collection: "kb", TopK: 101}, "got 101"},
		{"unknown collection", SearchRequest{Query: "refund", Collection: "kbb", TopK: 3}, `collection "kbb" does not exist (known collections: kb)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := callSearch(context.Background(), t, svc, tt.req)
			var he *nexus.HandlerError
			if !errors.As(err, &he) {
				t.Fatalf("error = %v (%T), want a *nexus.HandlerError", err, err)
			}
			if he.Type != nexus.HandlerErrorTypeBadRequest || he.Retryable() {
				t.Errorf("error type %s retryable=%v, want a non-retryable BAD_REQUEST", he.Type, he.Retryable())
			}
			if !strings.Contains(he.Message, tt.want) {
				t.Errorf("message %q does not contain %q", he.Message, tt.want)
			}
			if strings.Contains(he.Message, "\n") {
				t.Errorf("message %q spans several lines", he.Message)
			}
		})
	}
}

func TestSearchFailuresAreRetryable(t *testing.T) {
	svc, err := NewService(newDemoIndex(t), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = callSearch(expired, t, svc, SearchRequest{Query: "refund", Collection: "kb", TopK: 3})
	var he *nexus.HandlerError
	if !errors.As(err, &he) {
		t.Fatalf("error = %v (%T), want a *nexus.HandlerError", err, err)
	}
	if he.Type != nexus.HandlerErrorTypeInternal || !he.Retryable() {
		t.Errorf("error type %s retryable=%v, want a retryable INTERNAL", he.Type, he.Retryable())
	}
	if !strings.Contains(he.Message, "did not finish within 2s") {
		t.Errorf("message %q should name the deadline", he.Message)
	}
}

func TestNewServiceNeedsIndex(t *testing.T) {
	if _, err := NewService(nil, Options{}); err == nil {
		t.Error("NewService(nil) succeeded")
	}
}

// searchWorkflow calls search the way a Temporal workflow would, through a
// Nexus client, so that the test covers payload conversion and error mapping
// in the SDK as well as the handler.
func searchWorkflow(ctx workflow.Context, req SearchRequest) (SearchResponse, error) {
	c := workflow.NewNexusClient("retrieval", ServiceName)
	fut := c.ExecuteOperation(ctx, SearchOperation, req, workflow.NexusOperationOptions{
		ScheduleToCloseTimeout: 10 * time.Second,
	})
	var resp SearchResponse
	err := fut.Get(ctx, &resp)
	return resp, err
}

func TestSearchThroughTemporal(t *testing.T) {
	svc, err := NewService(newDemoIndex(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		req         SearchRequest
		wantTop     string
		wantErrType nexus.HandlerErrorType
	}{
		{"ok", SearchRequest{Query: "how long do refunds take", Collection: "kb", TopK: 3}, "refund-policy", ""},
		{"bad request fails without retries", SearchRequest{Query: "refund", Collection: "kb", TopK: 0}, "", nexus.HandlerErrorTypeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment()
			env.RegisterNexusService(svc)
			env.RegisterWorkflow(searchWorkflow)
			env.ExecuteWorkflow(searchWorkflow, tt.req)
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			err := env.GetWorkflowError()
			if tt.wantErrType != "" {
				var opErr *temporal.NexusOperationError
				var he *nexus.HandlerError
				if !errors.As(err, &opErr) || !errors.As(err, &he) {
					t.Fatalf("workflow error = %v, want a Nexus operation error caused by a handler error", err)
				}
				if he.Type != tt.wantErrType {
					t.Errorf("handler error type = %s, want %s", he.Type, tt.wantErrType)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var resp SearchResponse
			if err := env.GetWorkflowResult(&resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.Hits) == 0 || resp.Hits[0].DocID != tt.wantTop {
				t.Errorf("hits = %+v, want %q first", resp.Hits, tt.wantTop)
			}
		})
	}
}
