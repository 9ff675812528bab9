package retrieval

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durable-agents/reference/codec-server/go/codec"
)

// The recorded corpus (tests/replay/record.py): histories as the server
// stored them, encrypted under the TEST-ONLY key ring.
const (
	replayCorpus  = "../../../../tests/replay/corpus"
	replayKeyring = "../../../../tests/replay/test-keyring.json"
)

func replayFixture(t *testing.T) (*codec.KeyRing, []CorpusEntry) {
	t.Helper()
	ring, err := codec.FileKeySource{Path: replayKeyring}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := LoadCorpus(replayCorpus, Namespace)
	if err != nil {
		t.Fatal(err)
	}
	return ring, entries
}

// entryRecorded is the corpus history record.py's scenario name recorded.
func entryRecorded(t *testing.T, entries []CorpusEntry, scenario string) CorpusEntry {
	t.Helper()
	for _, e := range entries {
		if strings.HasPrefix(e.Note, scenario+":") {
			return e
		}
	}
	t.Fatalf("the corpus has no %s history; run tests/replay/record.py --only %s", scenario, scenario)
	return CorpusEntry{}
}

func TestCorpusReplaysOnCurrentCode(t *testing.T) {
	ring, entries := replayFixture(t)
	// Before and after the byte-capped-batches change: old runs must replay on the new code.
	entryRecorded(t, entries, "go-before-byte-batches")
	entryRecorded(t, entries, "go-index")
	r, err := Replayer(ring, RegisterReplayWorkflows)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := ReplayEntry(r, replayCorpus, e); err != nil {
			t.Error(err)
		}
	}
}

// indexByteCappedUnversioned is the byte-capped change made without
// GetVersion: the mistake the replay gate exists to catch.
func indexByteCappedUnversioned(ctx workflow.Context, req IndexRequest) (IndexResponse, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	resp := IndexResponse{Collection: req.Collection, BatchID: req.BatchID}
	for _, batch := range byteCappedBatches(req.Documents, ActivityBatchSize, MaxBatchBytes) {
		var r IndexBatchResult
		if err := workflow.ExecuteActivity(ctx, IndexBatchActivityName, IndexBatch{Collection: req.Collection, Documents: batch}).Get(ctx, &r); err != nil {
			return IndexResponse{}, err
		}
	}
	return resp, nil
}

func TestUnversionedChangeIsRejectedNamingTheWorkflow(t *testing.T) {
	ring, entries := replayFixture(t)
	old := entryRecorded(t, entries, "go-before-byte-batches")
	r, err := Replayer(ring, func(reg worker.WorkflowRegistry) {
		reg.RegisterWorkflowWithOptions(indexByteCappedUnversioned, workflow.RegisterOptions{Name: IndexWorkflowName})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = ReplayEntry(r, replayCorpus, old)
	if err == nil {
		t.Fatal("a history recorded before the change replayed on the unversioned change")
	}
	for _, want := range []string{"nondeterministic", IndexWorkflowName, old.WorkflowID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestByteCappedBatches(t *testing.T) {
	doc := func(textBytes int) IndexDocument { return IndexDocument{ID: "d", Text: strings.Repeat("x", textBytes)} }
	sizes := func(batches [][]IndexDocument) []int {
		var out []int
		for _, b := range batches {
			out = append(out, len(b))
		}
		return out
	}
	docs := make([]IndexDocument, 0, 70)
	for range 70 {
		docs = append(docs, doc(8<<10))
	}
	// 8 KiB + 1 byte of id each: 31 fit under 256 KiB.
	if got := sizes(byteCappedBatches(docs, 64, 256<<10)); !slices.Equal(got, []int{31, 31, 8}) {
		t.Errorf("8 KiB documents: batch sizes %v", got)
	}
	small := make([]IndexDocument, 130)
	if got := sizes(byteCappedBatches(small, 64, 256<<10)); !slices.Equal(got, []int{64, 64, 2}) {
		t.Errorf("small documents: batch sizes %v", got)
	}
	// A document larger than the cap still goes, alone.
	if got := sizes(byteCappedBatches([]IndexDocument{doc(10), doc(300 << 10), doc(10)}, 64, 256<<10)); !slices.Equal(got, []int{1, 1, 1}) {
		t.Errorf("an oversized document: batch sizes %v", got)
	}
	if got := byteCappedBatches(nil, 64, 256<<10); len(got) != 0 {
		t.Errorf("no documents: %v", got)
	}
}
