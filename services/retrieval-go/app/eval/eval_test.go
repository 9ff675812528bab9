package eval

import (
	"compress/gzip"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

func TestNDCGAndRecall(t *testing.T) {
	judged := map[string]int{"a": 2, "b": 1, "c": 0}
	tests := []struct {
		name         string
		ranked       []string
		k            int
		ndcg, recall float64
	}{
		{"ideal", []string{"a", "b", "x"}, 10, 1, 1},
		{"swapped", []string{"b", "a"}, 10, (1 + 2/math.Log2(3)) / (2 + 1/math.Log2(3)), 1},
		{"one found late", []string{"x", "y", "b"}, 10, (1 / 2.0) / (2 + 1/math.Log2(3)), 0.5},
		{"cut off", []string{"x", "a"}, 1, 0, 0},
		{"non-relevant judged doc gains nothing", []string{"c"}, 10, 0, 0},
		{"nothing", nil, 10, 0, 0},
	}
	for _, tt := range tests {
		if got := NDCG(tt.ranked, judged, tt.k); math.Abs(got-tt.ndcg) > 1e-12 {
			t.Errorf("%s: NDCG = %v, want %v", tt.name, got, tt.ndcg)
		}
		if got := Recall(tt.ranked, judged, tt.k); math.Abs(got-tt.recall) > 1e-12 {
			t.Errorf("%s: Recall = %v, want %v", tt.name, got, tt.recall)
		}
	}
	if NDCG([]string{"a"}, map[string]int{"a": 0}, 10) != 0 || Recall([]string{"a"}, nil, 10) != 0 {
		t.Error("a query without relevant documents must score 0")
	}
}

func TestSummarize(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(100 - i)
	}
	if got := Summarize(s); got.P50 != 50 || got.P99 != 99 || got.Mean != 50.5 {
		t.Errorf("Summarize = %+v", got)
	}
	if got := Summarize(nil); got != (Latency{}) {
		t.Errorf("Summarize(nil) = %+v", got)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		zw.Write([]byte(content))
		zw.Close()
		f.Close()
		return
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tinyDataset writes a BEIR-shaped dataset where each query has one right
// answer, findable by words and by vector.
func tinyDataset(t *testing.T) string {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "corpus.jsonl.gz"), `{"_id": "d1", "title": "Vitamin D", "text": "Vitamin D deficiency and bone fractures.", "metadata": {}}
{"_id": "d2", "title": "Aspirin", "text": "Aspirin lowers the risk of heart attacks.", "metadata": {}}
{"_id": "d3", "title": "Sleep", "text": "Short sleep raises blood pressure.", "metadata": {}}
`)
	// The metadata holds gold evidence in real BEIR files; it must be ignored.
	write(t, filepath.Join(dir, "queries.jsonl"), `{"_id": "q1", "text": "does vitamin d prevent fractures", "metadata": {"d2": "leak"}}
{"_id": "q2", "text": "aspirin heart attack", "metadata": {}}
{"_id": "q3", "text": "unjudged query", "metadata": {}}
`)
	write(t, filepath.Join(dir, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\td2\t1\r\n")
	write(t, filepath.Join(dir, "docs.jsonl"), `{"id": "d1", "vector": [1, 0, 0]}
{"id": "d2", "vector": [0, 1, 0]}
{"id": "d3", "vector": [0, 0, 1]}
`)
	write(t, filepath.Join(dir, "queries-emb.jsonl.gz"), `{"id": "q1", "vector": [0.9, 0.1, 0]}
{"id": "q2", "vector": [0.1, 0.9, 0.1]}
`)
	return dir
}

func TestRunEveryMode(t *testing.T) {
	dir := tinyDataset(t)
	rep, err := Run(context.Background(), Config{
		DatasetDir:      dir,
		DocEmbeddings:   filepath.Join(dir, "docs.jsonl"),
		QueryEmbeddings: filepath.Join(dir, "queries-emb.jsonl.gz"),
		DataDir:         filepath.Join(t.TempDir(), "index"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Documents != 3 || rep.Queries != 2 || rep.Judgments != 2 || rep.Settings.Dimension != 3 || rep.Settings.VectorIndex != "exact" {
		t.Errorf("report = %+v", rep)
	}
	for _, mode := range []string{"bm25", "vector", "hybrid"} {
		r, ok := rep.Results[mode]
		if !ok || r.NDCG10 != 1 || r.Recall100 != 1 || r.Queries != 2 {
			t.Errorf("%s: %+v", mode, r)
		}
	}
}

func TestRunBM25OnlyAndErrors(t *testing.T) {
	dir := tinyDataset(t)
	os.Remove(filepath.Join(dir, "queries.jsonl"))
	write(t, filepath.Join(dir, "queries-test.jsonl"), `{"_id": "q1", "text": "vitamin d"}
{"_id": "q2", "text": "aspirin"}
`)
	rep, err := Run(context.Background(), Config{DatasetDir: dir, Index: index.Options{Analyzer: index.MustNewAnalyzer(index.AnalyzerConfig{Stemmer: index.StemmerNone})}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results["bm25"].NDCG10 != 1 || rep.Settings.Stemmer != "none" {
		t.Errorf("report = %+v", rep)
	}

	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"not a dataset", Config{DatasetDir: t.TempDir()}, "is it a BEIR dataset directory"},
		{"one embedding file", Config{DatasetDir: dir, DocEmbeddings: filepath.Join(dir, "docs.jsonl")}, "give both"},
		{"query without embedding", Config{DatasetDir: dir, DocEmbeddings: filepath.Join(dir, "docs.jsonl"), QueryEmbeddings: filepath.Join(dir, "docs.jsonl")}, `query "q1" has no embedding`},
		{"data dir in use", Config{DatasetDir: dir, DataDir: dir}, "is not empty"},
	}
	for _, tt := range tests {
		if _, err := Run(context.Background(), tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
}
