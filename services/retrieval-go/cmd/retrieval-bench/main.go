// Command retrieval-bench measures the retrieval engine on generated corpora
// and writes a JSON report and a Markdown table. Run it with -h for its
// flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/durable-agents/reference/services/retrieval-go/app/bench"
	"github.com/durable-agents/reference/services/retrieval-go/app/cli"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

const program = "retrieval-bench"

func main() { cli.Main(program, run) }

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := bench.Config{}
	var sizes, out string
	var quiet bool
	var restart, pgLoad int
	var pgURL, pgCollection string
	fs.StringVar(&sizes, "sizes", "5000,100000", "comma-separated corpus sizes (documents)")
	fs.IntVar(&cfg.Queries, "queries", 200, "queries per size and mode")
	fs.IntVar(&cfg.Dimension, "dim", 384, "vector dimension")
	fs.IntVar(&cfg.Vocabulary, "vocabulary", 50_000, "distinct words in the generated corpus")
	fs.IntVar(&cfg.DurableSizeLimit, "durable-up-to", 5000, "also index sizes up to this through the journal")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.StringVar(&out, "o", filepath.Join("bench", "results", "retrieval-speed.json"), "JSON report path (directories are created)")
	fs.BoolVar(&quiet, "q", false, "do not log progress to stderr")
	fs.StringVar(&cfg.ExportDir, "export", "", "also write each size's corpus and queries as JSON lines under this directory (for ops/bench/bm25_anchor.py)")
	fs.IntVar(&restart, "restart", 0, "instead: index this many chunks durably, then time restarts with the saved HNSW graph and with it rebuilt (-o names the report)")
	fs.IntVar(&pgLoad, "load-postgres", 0, "instead: load this many generated chunks into the PostgreSQL backend by bulk COPY, and write some queries for them (-o)")
	fs.StringVar(&pgURL, "database-url", os.Getenv("RETRIEVAL_DATABASE_URL"), "migrated PostgreSQL database for -load-postgres (default $RETRIEVAL_DATABASE_URL)")
	fs.StringVar(&pgCollection, "collection", "drill", "collection for -load-postgres; it must be empty or new")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 10 {
			return fmt.Errorf("size %q is not a number of at least 10 documents", s)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if cfg.Queries < 1 || cfg.Dimension < 1 || cfg.Vocabulary < 10 {
		return fmt.Errorf("queries, dim and vocabulary must be positive (vocabulary at least 10)")
	}
	if !quiet {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if pgLoad > 0 {
		an, err := index.NewAnalyzer(index.AnalyzerConfig{StopWords: index.StopWordsExtended, Stemmer: index.StemmerPorter2}) // the worker's defaults
		if err != nil {
			return err
		}
		rep, err := bench.LoadPostgres(ctx, pgURL, pgCollection, pgLoad, cfg.Queries, cfg, index.Options{Analyzer: an})
		if err != nil {
			return err
		}
		return writeReport(stdout, out, rep, fmt.Sprintf("loaded %d chunks into %q", rep.Documents, rep.Collection), rep.Seconds)
	}
	if restart > 0 {
		rep, err := bench.Restart(ctx, restart, cfg)
		if err != nil {
			return err
		}
		return writeReport(stdout, out, rep, bench.RestartTable(rep), rep.Seconds)
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return writeReport(stdout, out, rep, bench.Table(rep), rep.Seconds)
}

func writeReport(stdout io.Writer, out string, rep any, table string, seconds float64) error {
	if err := cli.WriteJSON(out, rep); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\nwritten to %s (%.0f s)\n", table, out, seconds)
	return nil
}
