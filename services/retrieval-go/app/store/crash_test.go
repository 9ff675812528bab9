package store

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// The crash test runs this test binary again as a helper process that
// indexes in a loop and prints each operation before starting it and after
// it is acknowledged; the test kills it with SIGKILL at a random moment,
// reopens the directory and checks that every acknowledged operation
// survived.
const (
	crashDirEnv   = "STORE_CRASH_HELPER_DIR"
	crashStartEnv = "STORE_CRASH_HELPER_START"
)

type crashOp struct {
	kind    string // put or del
	id      string
	version int64
}

func (o crashOp) String() string { return fmt.Sprintf("%s %s %d", o.kind, o.id, o.version) }

// crashOps is the helper's deterministic sequence of operations from step i.
func crashOps(i int) []crashOp {
	ops := []crashOp{{"put", fmt.Sprintf("d%06d", i), 1}}
	if i%5 == 4 {
		ops = append(ops, crashOp{"put", fmt.Sprintf("d%06d", i-3), int64(2 + i%3)})
	}
	if i%11 == 10 {
		ops = append(ops, crashOp{"del", fmt.Sprintf("d%06d", i-7), 0})
	}
	return ops
}

func crashDoc(op crashOp) index.Document {
	n, _ := strconv.Atoi(op.id[1:])
	return index.Document{
		ID: op.id, Version: op.version, Title: "doc " + op.id,
		Text:     fmt.Sprintf("w%d common words version%d %s", n, op.version, strings.Repeat("filler ", n%50)),
		Metadata: map[string]string{"parity": strconv.Itoa(n % 2)},
		Vector:   []float32{1, float32(n % 97), float32(op.version), float32(n%13) - 6},
	}
}

func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the helper process of TestKillDuringIndexing")
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	// A small compaction threshold puts kills in the middle of compactions too.
	s, err := Open(dir, Options{CompactBytes: 16 << 10, Index: index.Options{ExactVectorLimit: -1}})
	if err != nil {
		fmt.Println("open-failed", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := start; ; i++ {
		for _, op := range crashOps(i) {
			fmt.Fprintln(out, "begin", op)
			out.Flush()
			if op.kind == "put" {
				_, err = s.Put("kb", []index.Document{crashDoc(op)})
			} else {
				_, err = s.Delete("kb", []string{op.id})
			}
			if err != nil {
				fmt.Fprintln(out, "error", err)
				out.Flush()
				os.Exit(2)
			}
			fmt.Fprintln(out, "ack", op)
			out.Flush()
		}
	}
}

func TestKillDuringIndexing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	state := map[string]int64{} // id -> version, as acknowledged
	torn := 0
	const rounds = 6
	for round := range rounds {
		start := round * 100_000
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(start))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it get going (opening replays the previous rounds), then kill
		// it at a random moment.
		var acked []crashOp
		var inflight *crashOp
		deadline := time.After(time.Duration(30+r.IntN(300)) * time.Millisecond)
		started := false
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: helper exited on its own", round)
				}
				fields := strings.Fields(line)
				switch fields[0] {
				case "begin":
					started = true
					op := parseOp(t, fields[1:])
					inflight = &op
				case "ack":
					acked = append(acked, parseOp(t, fields[1:]))
					inflight = nil
				default:
					t.Fatalf("round %d: helper says %q", round, line)
				}
			case <-deadline:
				if started {
					break read
				}
				deadline = time.After(10 * time.Millisecond)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for line := range lines {
			// Acknowledgements printed before the kill still count.
			fields := strings.Fields(line)
			switch fields[0] {
			case "begin":
				op := parseOp(t, fields[1:])
				inflight = &op
			case "ack":
				acked = append(acked, parseOp(t, fields[1:]))
				inflight = nil
			}
		}
		cmd.Wait()

		for _, op := range acked {
			apply(state, op)
		}
		var logs syncBuffer // the store logs from background goroutines too
		s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
		if strings.Contains(logs.String(), "dropped a torn record") {
			torn++
		}
		got := map[string]int64{}
		for _, c := range s.Index().Snapshot(nil) {
			for _, d := range c.Documents {
				got[d.ID] = d.Version
			}
		}
		withInflight := maps.Clone(state)
		if inflight != nil {
			apply(withInflight, *inflight)
		}
		if !maps.Equal(got, state) && !maps.Equal(got, withInflight) {
			t.Fatalf("round %d (%d operations acknowledged, in flight %v): the index does not hold exactly the acknowledged documents:\n%s",
				round, len(acked), inflight, diff(got, state))
		}
		state = got
		checkConsistent(t, s, state)
		t.Logf("round %d: %d operations acknowledged, %d documents", round, len(acked), len(state))
		s.Close()
	}
	t.Logf("%d of %d kills left a torn record", torn, rounds)
}

func parseOp(t *testing.T, f []string) crashOp {
	t.Helper()
	v, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || len(f) != 3 {
		t.Fatalf("bad op %q", f)
	}
	return crashOp{kind: f[0], id: f[1], version: v}
}

func apply(state map[string]int64, op crashOp) {
	if op.kind == "del" {
		delete(state, op.id)
	} else if op.version > state[op.id] {
		state[op.id] = op.version
	}
}

func diff(got, want map[string]int64) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[id]; !ok || g != want[id] {
			fmt.Fprintf(&b, "  %s: have %d (present %v), acknowledged %d\n", id, g, ok, want[id])
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			fmt.Fprintf(&b, "  %s: present but not acknowledged\n", id)
		}
	}
	return b.String()
}

// checkConsistent checks that the rebuilt index answers like a fresh one:
// every document is found by its unique word, and the
// inverted index agrees with a full scan.
func checkConsistent(t *testing.T, s *Store, state map[string]int64) {
	t.Helper()
	ctx := context.Background()
	if n, _ := s.Index().Len("kb"); n != len(state) {
		t.Fatalf("Len = %d, want %d", n, len(state))
	}
	i := 0
	for id, version := range state {
		if i++; i > 40 {
			break
		}
		n, _ := strconv.Atoi(id[1:])
		res, err := s.Search(ctx, index.Query{Collection: "kb", Text: fmt.Sprintf("w%d", n), TopK: 1})
		if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != id || res.Hits[0].Version != version {
			t.Fatalf("search for %s: %+v, %v", id, res.Hits, err)
		}
		q := index.Query{Collection: "kb", Text: "common words filler", TopK: 10, Filters: map[string]string{"parity": strconv.Itoa(n % 2)}}
		a, err1 := s.Index().Search(ctx, q)
		b, err2 := s.Index().SearchBruteForce(ctx, q)
		if err1 != nil || err2 != nil || len(a.Hits) != len(b.Hits) {
			t.Fatalf("index and scan disagree: %v %v %d %d", err1, err2, len(a.Hits), len(b.Hits))
		}
		for j := range a.Hits {
			if a.Hits[j].ID != b.Hits[j].ID {
				t.Fatalf("index and scan disagree at %d: %s vs %s", j, a.Hits[j].ID, b.Hits[j].ID)
			}
		}
	}
}
