package retrieval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/durable-agents/reference/codec-server/go/codec"
)

// Namespace is where the retrieval worker's workflows run; a replay corpus
// (tests/replay, ops/replaygate) files their histories under it.
const Namespace = "retrieval"

// CorpusEntry is one history of a replay corpus's manifest, corpus.json
// (written by ops/replaygate's Python code; the field names are shared).
type CorpusEntry struct {
	Namespace    string `json:"namespace"`
	WorkflowType string `json:"workflow_type"`
	WorkflowID   string `json:"workflow_id"`
	RunID        string `json:"run_id"`
	File         string `json:"file"`
	Note         string `json:"note"`
}

// Label names the workflow in messages.
func (e CorpusEntry) Label() string {
	return fmt.Sprintf("%s %s (run %s, namespace %s)", e.WorkflowType, e.WorkflowID, e.RunID, e.Namespace)
}

// LoadCorpus reads dir/corpus.json and returns the entries of namespace.
func LoadCorpus(dir, namespace string) ([]CorpusEntry, error) {
	data, err := os.ReadFile(filepath.Join(dir, "corpus.json"))
	if err != nil {
		return nil, fmt.Errorf("read the corpus manifest: %w", err)
	}
	var doc struct {
		Histories []CorpusEntry `json:"histories"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s is not a corpus manifest: %w", filepath.Join(dir, "corpus.json"), err)
	}
	var out []CorpusEntry
	for _, e := range doc.Histories {
		if e.Namespace == namespace {
			out = append(out, e)
		}
	}
	return out, nil
}

// Replayer replays encrypted histories with the codec's data converter, as
// the worker would rebuild them after a restart. register adds the workflow
// code under test (RegisterReplayWorkflows for the shipped code).
func Replayer(ring *codec.KeyRing, register func(worker.WorkflowRegistry)) (worker.WorkflowReplayer, error) {
	dc, err := codec.NewDataConverter(ring, Namespace)
	if err != nil {
		return nil, err
	}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter:    dc,
		FailureConverter: codec.NewFailureConverter(dc),
	})
	if err != nil {
		return nil, err
	}
	register(r)
	return r, nil
}

// RegisterReplayWorkflows registers the workflows the worker registers.
func RegisterReplayWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(IndexDocumentsWorkflow, workflow.RegisterOptions{Name: IndexWorkflowName})
}

// ReplayEntry replays one corpus history; the error names the workflow.
func ReplayEntry(r worker.WorkflowReplayer, dir string, e CorpusEntry) error {
	data, err := os.ReadFile(filepath.Join(dir, e.File))
	if err != nil {
		return fmt.Errorf("%s: %w", e.Label(), err)
	}
	history, err := client.HistoryFromJSON(bytes.NewReader(data), client.HistoryJSONOptions{})
	if err != nil {
		return fmt.Errorf("%s: not a history: %w", e.Label(), err)
	}
	opts := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: e.WorkflowID, RunID: e.RunID}}
	if err := r.ReplayWorkflowHistoryWithOptions(quietLogger(), history, opts); err != nil {
		// The SDK's error lists every command it compared; the first line says why.
		first, _, _ := strings.Cut(err.Error(), "\n")
		return fmt.Errorf("%s does not replay: %s", e.Label(), first)
	}
	return nil
}

// quietLogger keeps replays' informational lines out of test and tool output.
func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}
