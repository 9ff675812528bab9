// Command retrieval-replay replays the retrieval histories of a replay corpus
// (tests/replay, `make replay-check`) against this build's workflow code.
//
//	retrieval-replay -corpus DIR
//
// The key ring comes from the environment, as for the worker
// (CODEC_KEYRING_FILE, CODEC_KEYRING_DIR or CODEC_KEYRING). It prints one JSON
// object per history ({"workflow_id", "run_id", "error"}, error empty when it
// replayed) and exits 1 if any did not replay, 2 on bad input.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/durable-agents/reference/codec-server/go/codec"
	"github.com/durable-agents/reference/services/retrieval-go/app/retrieval"
)

const program = "retrieval-replay"

type outcome struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Error      string `json:"error"`
}

func main() {
	corpus := flag.String("corpus", "", "replay corpus directory (holds corpus.json)")
	flag.Parse()
	if *corpus == "" || flag.NArg() > 0 {
		fail(2, fmt.Errorf("usage: %s -corpus DIR", program))
	}
	ring, err := codec.LoadKeyRingFromEnv(context.Background())
	if err != nil {
		fail(2, err)
	}
	entries, err := retrieval.LoadCorpus(*corpus, retrieval.Namespace)
	if err != nil {
		fail(2, err)
	}
	r, err := retrieval.Replayer(ring, retrieval.RegisterReplayWorkflows)
	if err != nil {
		fail(2, err)
	}
	out := json.NewEncoder(os.Stdout)
	failed := false
	for _, e := range entries {
		o := outcome{WorkflowID: e.WorkflowID, RunID: e.RunID}
		if err := retrieval.ReplayEntry(r, *corpus, e); err != nil {
			o.Error, failed = err.Error(), true
		}
		if err := out.Encode(o); err != nil {
			fail(2, err)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func fail(code int, err error) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", program, strings.ReplaceAll(err.Error(), "\n", " "))
	os.Exit(code)
}
