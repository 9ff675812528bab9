package codec

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

// recordingFailureConverter keeps a copy of every Failure the SDK produces: what a worker would
// send to the server. A copy, because the test environment hands the same object to
// FailureToError, which decodes the attributes in place (a real worker serializes it first).
type recordingFailureConverter struct {
	converter.FailureConverter
	mu       sync.Mutex
	failures []*failurepb.Failure
}

func (r *recordingFailureConverter) ErrorToFailure(err error) *failurepb.Failure {
	f := r.FailureConverter.ErrorToFailure(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, proto.Clone(f).(*failurepb.Failure))
	return f
}

const declined = "card 4111-1111 declined for customer C-1001"

func chargeActivity(context.Context) error {
	return temporal.NewNonRetryableApplicationError(declined, "Declined", nil)
}

func chargeWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, chargeActivity).Get(ctx, nil)
}

// TestWorkflowFailureIsEncrypted runs a workflow whose activity fails with a message that must
// not reach the server in clear: every Failure leaving the SDK carries it only encrypted, and
// the workflow still sees the original message.
func TestWorkflowFailureIsEncrypted(t *testing.T) {
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	opts, err := ClientOptions(ring, "agents")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingFailureConverter{FailureConverter: opts.FailureConverter}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetDataConverter(opts.DataConverter)
	env.SetFailureConverter(rec)
	env.RegisterWorkflow(chargeWorkflow)
	env.RegisterActivity(chargeActivity)

	env.ExecuteWorkflow(chargeWorkflow)

	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	wfErr := env.GetWorkflowError()
	if wfErr == nil || !strings.Contains(wfErr.Error(), declined) {
		t.Fatalf("workflow error = %v, want the original message after decoding", wfErr)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.failures) == 0 {
		t.Fatal("no failure went through the failure converter")
	}
	for i, f := range rec.failures {
		for ; f != nil; f = f.GetCause() {
			if strings.Contains(f.GetMessage(), "4111") || strings.Contains(f.GetStackTrace(), "4111") {
				t.Errorf("failure %d carries the message in clear: %q", i, f.GetMessage())
			}
			ea := f.GetEncodedAttributes()
			if string(ea.GetMetadata()[MetadataEncoding]) != EncodingEncrypted || bytes.Contains(ea.GetData(), []byte("4111")) {
				t.Errorf("failure %d: encoded attributes are not encrypted: %v", i, ea)
			}
		}
	}
}
