package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/index/hnsw"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// graphOptions make every vector search go through a small, quick graph.
func graphOptions(log *syncBuffer) Options {
	o := Options{Index: index.Options{ExactVectorLimit: -1, HNSW: hnsw.Parameters{M: 8, EfConstruction: 40, EfSearch: 40, Seed: 3}}}
	if log != nil {
		o.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	return o
}

func clusteredVector(r *rand.Rand, centres [][]float32) []float32 {
	c := centres[r.IntN(len(centres))]
	v := make([]float32, len(c))
	for i := range v {
		v[i] = c[i] + float32(0.3*r.NormFloat64())
	}
	return v
}

// fillForGraph indexes vectors with everything a saved graph must survive:
// documents without vectors, replaced documents and deleted ones (their
// nodes stay in the graph as waypoints), and a second collection.
func fillForGraph(t *testing.T, s *Store) (queries [][]float32) {
	t.Helper()
	r := rand.New(rand.NewPCG(4, 5))
	centres := make([][]float32, 8)
	for i := range centres {
		centres[i] = make([]float32, 24)
		for j := range centres[i] {
			centres[i][j] = float32(r.NormFloat64())
		}
	}
	var docs []index.Document
	for i := range 1200 {
		d := doc(fmt.Sprintf("d%04d", i), 1, "words")
		if i%10 != 3 {
			d.Vector = clusteredVector(r, centres)
		}
		docs = append(docs, d)
	}
	for start := 0; start < len(docs); start += 200 {
		if _, err := s.Put("kb", docs[start:start+200]); err != nil {
			t.Fatal(err)
		}
	}
	var replaced []index.Document
	for i := 0; i < 1200; i += 7 {
		replaced = append(replaced, index.Document{ID: fmt.Sprintf("d%04d", i), Version: 2, Text: "new", Vector: clusteredVector(r, centres)})
	}
	if _, err := s.Put("kb", replaced); err != nil {
		t.Fatal(err)
	}
	var gone []string
	for i := 1; i < 1200; i += 11 {
		gone = append(gone, fmt.Sprintf("d%04d", i))
	}
	if _, err := s.Delete("kb", gone); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("other", []index.Document{doc("x", 1, "x", 1, 0, 0), doc("y", 1, "y", 0, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	for range 25 {
		queries = append(queries, clusteredVector(r, centres))
	}
	return queries
}

func vectorHits(t *testing.T, s *Store, queries [][]float32, brute bool) [][]index.Hit {
	t.Helper()
	var qs []index.Query
	for _, q := range queries {
		qs = append(qs, index.Query{Collection: "kb", Vector: q, Mode: index.ModeVector, TopK: 10})
	}
	return answers(t, s, qs, brute)
}

// answers runs each query, through the index or by brute force.
func answers(t *testing.T, s *Store, queries []index.Query, brute bool) [][]index.Hit {
	t.Helper()
	search := s.Index().Search
	if brute {
		search = s.Index().SearchBruteForce
	}
	var out [][]index.Hit
	for _, q := range queries {
		res, err := search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Hits)
	}
	return out
}

// twoSnapshots fills a store in dir, compacts, adds a document and compacts
// again, and returns the first compaction's version of the cache file name
// (another snapshot's file) with fillForGraph's queries.
func twoSnapshots(t *testing.T, dir, name string) (older []byte, queries [][]float32) {
	t.Helper()
	s := openStore(t, dir, graphOptions(nil))
	queries = fillForGraph(t, s)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	older, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("kb", []index.Document{doc("extra", 1, "words", queries[1]...)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return older, queries
}

func TestSavedGraphIsLoadedAtStart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, graphOptions(nil))
	queries := fillForGraph(t, s)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	before := vectorHits(t, s, queries, false)
	nodes := s.Index().Stats()[0].GraphNodes
	s.Close()

	var log syncBuffer
	s2 := openStore(t, dir, graphOptions(&log))
	s2.WaitForGraphs()
	if !strings.Contains(log.String(), "loaded the saved HNSW graphs") || strings.Contains(log.String(), "built the HNSW graph") {
		t.Fatalf("the saved graph was not used:\n%s", log.String())
	}
	if got := s2.Index().Stats()[0].GraphNodes; got != nodes {
		t.Errorf("graph nodes after restart %d, before %d (waypoints included)", got, nodes)
	}
	// The same graph, renumbered: exactly the same answers.
	if after := vectorHits(t, s2, queries, false); !reflect.DeepEqual(after, before) {
		t.Errorf("answers changed across the restart:\nbefore %v\nafter  %v", before[0], after[0])
	}
	// It keeps growing like a graph built at start would.
	if _, err := s2.Put("kb", []index.Document{doc("late", 1, "late", queries[0]...)}); err != nil {
		t.Fatal(err)
	}
	if hits := vectorHits(t, s2, queries[:1], false)[0]; len(hits) == 0 || hits[0].ID != "late" {
		t.Errorf("a document put after the restart is not found by its own vector: %v", hits)
	}
}

func TestGraphFileProblemsFallBackToBuilding(t *testing.T) {
	flip := func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string, older []byte)
		wantLog string
	}{
		{"missing", func(t *testing.T, dir string, _ []byte) { os.Remove(filepath.Join(dir, graphName)) }, "no saved HNSW graph"},
		{"flipped bit", func(t *testing.T, dir string, _ []byte) { flip(t, filepath.Join(dir, graphName)) }, "unusable"},
		{"truncated", func(t *testing.T, dir string, _ []byte) {
			os.Truncate(filepath.Join(dir, graphName), fileSize(t, filepath.Join(dir, graphName))-100)
		}, "unusable"},
		{"not a graph file", func(t *testing.T, dir string, _ []byte) {
			os.WriteFile(filepath.Join(dir, graphName), []byte("hello"), 0o600)
		}, "unusable"},
		{"another snapshot's", func(t *testing.T, dir string, older []byte) {
			os.WriteFile(filepath.Join(dir, graphName), older, 0o600)
		}, "belongs to another snapshot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			older, queries := twoSnapshots(t, dir, graphName)
			tc.damage(t, dir, older)

			var log syncBuffer
			s2 := openStore(t, dir, graphOptions(&log))
			s2.WaitForGraphs()
			if !strings.Contains(log.String(), tc.wantLog) || !strings.Contains(log.String(), "built the HNSW graph") {
				t.Fatalf("log lacks %q and a rebuild:\n%s", tc.wantLog, log.String())
			}
			// A rebuilt graph is a different graph, so compare with exact
			// search: only live documents, and nearly all of the true top 10.
			got, want := vectorHits(t, s2, queries, false), vectorHits(t, s2, queries, true)
			found, total := 0, 0
			for qi := range got {
				ids := map[string]bool{}
				for _, h := range want[qi] {
					ids[h.ID] = true
				}
				for _, h := range got[qi] {
					if _, ok := s2.Index().Get("kb", h.ID); !ok {
						t.Fatalf("query %d returned %s, which is not a live document", qi, h.ID)
					}
					if ids[h.ID] {
						found++
					}
				}
				total += len(want[qi])
			}
			if recall := float64(found) / float64(total); recall < 0.9 || math.IsNaN(recall) {
				t.Errorf("recall@10 after rebuilding %.3f, want >= 0.9", recall)
			}
		})
	}
}

func TestJournalTailIsFoundWhileTheGraphCatchesUp(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, graphOptions(nil))
	queries := fillForGraph(t, s)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	var tail []index.Document
	for i, q := range queries {
		tail = append(tail, doc(fmt.Sprintf("tail%02d", i), 1, "tail", q...))
	}
	if _, err := s.Put("kb", tail); err != nil {
		t.Fatal(err)
	}
	nodes := s.Index().Stats()[0].GraphNodes
	s.Close()

	s2 := openStore(t, dir, graphOptions(nil))
	// Straight after the open, whether or not the tail is in the graph yet.
	for i, hits := range vectorHits(t, s2, queries, false) {
		if len(hits) == 0 || hits[0].ID != tail[i].ID {
			t.Fatalf("query %d: the journal's document %s is not first: %v", i, tail[i].ID, hits)
		}
	}
	s2.WaitForGraphs()
	if got := s2.Index().Stats()[0].GraphNodes; got != nodes {
		t.Errorf("graph nodes after catching up %d, want %d", got, nodes)
	}
}
