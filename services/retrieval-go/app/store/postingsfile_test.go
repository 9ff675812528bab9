package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// bm25Answers runs a fixed set of word queries, the odd ones filtered, in
// BM25 mode.
func bm25Answers(t *testing.T, s *Store) [][]index.Hit {
	t.Helper()
	var qs []index.Query
	for i, q := range []string{"words", "new", "tail words", "D0007", "x y", "words new", "nothing here"} {
		query := index.Query{Collection: "kb", Text: q, Mode: index.ModeBM25, TopK: 20}
		if i%2 == 1 {
			query.Filters = map[string]string{"id": fmt.Sprintf("d%04d", i)}
		}
		qs = append(qs, query)
	}
	return answers(t, s, qs, false)
}

func TestSavedPostingsAreLoadedAtStart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, graphOptions(nil))
	fillForGraph(t, s)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("kb", []index.Document{doc("late", 1, "tail words")}); err != nil { // in the journal only
		t.Fatal(err)
	}
	before, docs := bm25Answers(t, s), contents(s)
	s.Close()

	var log syncBuffer
	s2 := openStore(t, dir, graphOptions(&log))
	if !strings.Contains(log.String(), "loaded the saved postings") || strings.Contains(log.String(), "analysing the documents") ||
		strings.Contains(log.String(), "analysed the documents") {
		t.Fatalf("the saved postings were not used:\n%s", log.String())
	}
	if after := bm25Answers(t, s2); !reflect.DeepEqual(after, before) {
		t.Errorf("BM25 answers changed across the restart:\nbefore %v\nafter  %v", before, after)
	}
	if !reflect.DeepEqual(contents(s2), docs) {
		t.Error("documents changed across the restart")
	}
	// Deleting and replacing after the restart keeps the index consistent.
	if _, err := s2.Delete("kb", []string{"d0002", "late"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Put("kb", []index.Document{doc("d0004", 9, "fresh words")}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []bool{false, true} {
		res, err := s2.Index().SearchBruteForce(context.Background(), index.Query{Collection: "kb", Text: "fresh words", Mode: index.ModeBM25, TopK: 30})
		if mode {
			res, err = s2.Search(context.Background(), index.Query{Collection: "kb", Text: "fresh words", Mode: index.ModeBM25, TopK: 30})
		}
		if err != nil || len(res.Hits) == 0 || res.Hits[0].ID != "d0004" {
			t.Fatalf("after changes (indexed=%v): %v %v", mode, res.Hits, err)
		}
	}
}

func TestPostingsFileProblemsFallBackToAnalysis(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string, older []byte)
		opts    func(o *Options)
		wantLog string
	}{
		{"missing", func(t *testing.T, dir string, _ []byte) { os.Remove(filepath.Join(dir, postingsName)) }, nil, ""},
		{"flipped bit", func(t *testing.T, dir string, _ []byte) {
			b, _ := os.ReadFile(filepath.Join(dir, postingsName))
			b[len(b)/2] ^= 0x10
			os.WriteFile(filepath.Join(dir, postingsName), b, 0o600)
		}, nil, "unusable"},
		{"truncated", func(t *testing.T, dir string, _ []byte) {
			os.Truncate(filepath.Join(dir, postingsName), fileSize(t, filepath.Join(dir, postingsName))-7)
		}, nil, "unusable"},
		{"another snapshot's", func(t *testing.T, dir string, older []byte) {
			os.WriteFile(filepath.Join(dir, postingsName), older, 0o600)
		}, nil, "belongs to another snapshot"},
		{"other analyzer settings", func(*testing.T, string, []byte) {}, func(o *Options) {
			o.Index.Analyzer = index.MustNewAnalyzer(index.AnalyzerConfig{Stemmer: index.StemmerNone})
		}, "other analyzer settings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := graphOptions(nil)
			if tc.opts != nil {
				tc.opts(&opts)
			}
			older, _ := twoSnapshots(t, dir, postingsName)
			tc.damage(t, dir, older)

			// The reference: the same settings, indexed from the documents.
			var log syncBuffer
			o2 := opts
			o2.Logger = graphOptions(&log).Logger
			s2 := openStore(t, dir, o2)
			if !strings.Contains(log.String(), tc.wantLog) || (tc.wantLog == "" && strings.Contains(log.String(), "loaded the saved postings")) {
				t.Fatalf("log lacks %q:\n%s", tc.wantLog, log.String())
			}
			got := bm25Answers(t, s2)
			fresh := index.New(o2.Index)
			for _, c := range s2.Index().Snapshot(nil) {
				var docs []index.Document
				for _, d := range c.Documents {
					docs = append(docs, *d)
				}
				if len(docs) > 0 {
					if _, err := fresh.Put(c.Name, docs, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			// bm25Answers' unfiltered queries.
			for i, q := range map[int]string{0: "words", 2: "tail words", 4: "x y"} {
				want, err := fresh.Search(context.Background(), index.Query{Collection: "kb", Text: q, Mode: index.ModeBM25, TopK: 20})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got[i], want.Hits) {
					t.Errorf("query %q after falling back: %v, an index built from the documents: %v", q, got[i], want.Hits)
				}
			}
		})
	}
}
