// Command retrieval-eval measures the retrieval engine on a BEIR dataset:
// nDCG@10 and Recall@100 for BM25, and for vector and hybrid search when
// embeddings are given. Run it with -h for its flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"

	"github.com/durable-agents/reference/services/retrieval-go/app/backend"
	"github.com/durable-agents/reference/services/retrieval-go/app/cli"
	"github.com/durable-agents/reference/services/retrieval-go/app/eval"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/index/hnsw"
)

const program = "retrieval-eval"

func main() { cli.Main(program, run) }

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg eval.Config
	var an index.AnalyzerConfig
	var out string
	var quiet bool
	fs.StringVar(&cfg.DatasetDir, "dataset", "", "BEIR dataset directory: corpus.jsonl(.gz), queries-test.jsonl or queries.jsonl, qrels/test.tsv (required)")
	fs.StringVar(&cfg.DocEmbeddings, "doc-embeddings", "", `JSON lines {"id": doc id, "vector": [...]} (gzip if .gz); with -query-embeddings enables vector and hybrid`)
	fs.StringVar(&cfg.QueryEmbeddings, "query-embeddings", "", `JSON lines {"id": query id, "vector": [...]} (gzip if .gz)`)
	fs.StringVar(&cfg.DataDir, "data-dir", "", "empty or new directory to build the index in (default: a temporary one, removed)")
	fs.StringVar(&cfg.Backend, "backend", backend.Embedded, "where to build the index: embedded or postgres")
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("RETRIEVAL_DATABASE_URL"), "PostgreSQL server for -backend postgres (default $RETRIEVAL_DATABASE_URL); the index goes into a new database, dropped afterwards")
	fs.StringVar(&out, "o", "", "write the JSON report to this file instead of stdout")
	fs.Float64Var(&cfg.Index.K1, "k1", index.DefaultK1, "BM25 k1")
	fs.Float64Var(&cfg.Index.B, "b", index.DefaultB, "BM25 b")
	fs.StringVar(&an.StopWords, "stop-words", index.StopWordsLucene, "stop words: lucene, extended or none")
	fs.StringVar(&an.Stemmer, "stemmer", index.StemmerPorter2, "stemmer: porter2 or none")
	fs.IntVar(&cfg.Index.ExactVectorLimit, "exact-vector-limit", index.DefaultExactVectorLimit, "search exactly up to this many vectors, else HNSW (-1: always HNSW)")
	fs.IntVar(&cfg.Index.HNSW.EfSearch, "ef-search", hnsw.Parameters{}.WithDefaults().EfSearch, "HNSW candidate list size when searching")
	fs.BoolVar(&quiet, "q", false, "do not log progress to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.DatasetDir == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("give -dataset DIR and no other arguments")
	}
	a, err := index.NewAnalyzer(an)
	if err != nil {
		return err
	}
	cfg.Index.Analyzer = a
	if !quiet {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := eval.Run(ctx, cfg)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if out == "" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
