package bench

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunSmall(t *testing.T) {
	exported := t.TempDir()
	rep, err := Run(context.Background(), Config{Sizes: []int{300, 600}, Queries: 15, Dimension: 16, Vocabulary: 2000, DurableSizeLimit: 300, Seed: 3, ExportDir: exported})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sizes) != 2 || rep.Machine.CPUs < 1 || rep.Parameters.HNSWM != 16 {
		t.Fatalf("report = %+v", rep)
	}
	for _, s := range rep.Sizes {
		if s.DocsPerSecond <= 0 || s.HeapInuseBytes == 0 || s.HNSWRecallAt10 < 0.8 || len(s.Modes) != 3 {
			t.Errorf("size %d: %+v", s.Documents, s)
		}
		for mode, m := range s.Modes {
			if m.Indexed.P50 <= 0 || m.BruteForce.P50 <= 0 || m.SpeedupP50 <= 0 {
				t.Errorf("size %d %s: %+v", s.Documents, mode, m)
			}
		}
	}
	if rep.Sizes[0].DurableDocsPerSecond <= 0 || rep.Sizes[1].DurableDocsPerSecond != 0 {
		t.Errorf("durable throughput measured for %v, %v", rep.Sizes[0].DurableDocsPerSecond, rep.Sizes[1].DurableDocsPerSecond)
	}
	for _, name := range []string{"300/corpus.jsonl", "600/queries.jsonl"} {
		if b, err := os.ReadFile(filepath.Join(exported, name)); err != nil || !strings.Contains(string(b), "}\n{") {
			t.Errorf("export %s: %v", name, err)
		}
	}
	table := Table(rep)
	for _, want := range []string{"| 300 | bm25 |", "| 600 | hybrid |", "HNSW recall@10"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestVocabularyIsDistinct(t *testing.T) {
	words := vocabulary(newRand(), 5000)
	seen := map[string]bool{}
	for _, w := range words {
		if seen[w] || len(w) < 4 {
			t.Fatalf("word %q repeated or too short", w)
		}
		seen[w] = true
	}
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestRestartSmall(t *testing.T) {
	rep, err := Restart(context.Background(), 400, Config{Dimension: 16, Vocabulary: 2000, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SnapshotBytes == 0 || rep.GraphFileBytes == 0 || rep.IngestDocsPerSecond <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, tm := range []RestartTimes{rep.Saved, rep.Rebuilt} {
		if tm.Open <= 0 || tm.FirstSearch < tm.Open || tm.GraphReady < tm.Open {
			t.Errorf("times out of order: %+v", tm)
		}
	}
	// make bench-restart measures 100,000 chunks against the 5 s target; at
	// this size a start takes milliseconds, and the bound only catches one
	// that stalls.
	if rep.Saved.FirstSearch > 5 {
		t.Errorf("first search %.1f s after the open started, want under 5 s", rep.Saved.FirstSearch)
	}
	if !strings.Contains(RestartTable(rep), "| saved graph |") {
		t.Error(RestartTable(rep))
	}
}
