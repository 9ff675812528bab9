// Command retrieval-ann prepares the vector data sets of make bench-ann and
// measures this repository's HNSW graph on them: it writes each data set
// (base vectors, queries, exact top 10) under -data-dir for the reference
// implementations to read, and a JSON report of the graph's build time,
// memory, recall@10 and queries per second. Run it with -h for its flags.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/durable-agents/reference/services/retrieval-go/app/ann"
	"github.com/durable-agents/reference/services/retrieval-go/app/cli"
)

const program = "retrieval-ann"

func main() { cli.Main(program, run) }

// options are the command's flags: what to measure, and where the report
// and the CPU profile go.
type options struct {
	ann             ann.Config
	out, cpuProfile string
}

func run(args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(opts.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	opts.ann.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	rep, err := ann.Run(opts.ann)
	if err != nil {
		return err
	}
	if err := cli.WriteJSON(opts.out, rep); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "written to %s\n", opts.out)
	return nil
}

// parseFlags reads and checks the flags. The data sets' names are checked by
// ann.Run, each when its turn comes.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts options
	cfg := &opts.ann
	var datasets, efSearch string
	fs.StringVar(&datasets, "datasets", "scifact,structured,random", "comma-separated data sets: scifact, structured, random")
	fs.IntVar(&cfg.N, "n", 100_000, "base vectors of the synthetic data sets")
	fs.IntVar(&cfg.Queries, "queries", 1000, "queries of the synthetic data sets")
	fs.IntVar(&cfg.Dimension, "dim", 384, "dimension of the synthetic data sets")
	fs.StringVar(&cfg.SciFactCorpus, "scifact-corpus", "", "SciFact corpus embeddings (JSON lines, from ops/bench/embed_beir.py)")
	fs.StringVar(&cfg.SciFactQueries, "scifact-queries", "", "SciFact test query embeddings (JSON lines)")
	fs.IntVar(&cfg.Params.M, "m", 16, "HNSW M (links per node above layer 0; 2·M on layer 0)")
	fs.IntVar(&cfg.Params.EfConstruction, "ef-construction", 64, "HNSW efConstruction")
	fs.StringVar(&efSearch, "ef-search", "16,32,64,128,256", "comma-separated efSearch values to sweep")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the generators and the graph")
	fs.StringVar(&cfg.DataDir, "data-dir", filepath.Join(".data", "ann"), "where the data sets are written for the reference implementations")
	fs.StringVar(&opts.out, "o", filepath.Join(".data", "ann", "ours.json"), "JSON report path")
	fs.StringVar(&opts.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.Params.EfSearch, err = parseEfSearch(efSearch); err != nil {
		return options{}, err
	}
	if cfg.Params.M < 2 || cfg.Params.EfConstruction < 1 || cfg.N < ann.K || cfg.Queries < 1 || cfg.Dimension < 1 {
		return options{}, fmt.Errorf("m must be at least 2, n at least %d, and ef-construction, queries and dim positive", ann.K)
	}
	for _, name := range strings.Split(datasets, ",") {
		cfg.Datasets = append(cfg.Datasets, strings.TrimSpace(name))
	}
	return opts, nil
}

// parseEfSearch parses the comma-separated efSearch values of -ef-search.
func parseEfSearch(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		ef, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || ef < 1 {
			return nil, fmt.Errorf("efSearch %q is not a positive number", s)
		}
		out = append(out, ef)
	}
	return out, nil
}

// startCPUProfile starts writing a CPU profile to path, unless path is
// empty; stop ends the profile and closes its file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
