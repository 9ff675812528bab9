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
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/ann"
	"github.com/durable-agents/reference/services/retrieval-go/app/cli"
)

const program = "retrieval-ann"

func main() { cli.Main(program, run) }

// report is what the command writes; ops/bench/ann_bench.py adds the
// reference implementations' measurements to it.
type report struct {
	Machine  map[string]any `json:"machine"`
	Params   ann.Params     `json:"parameters"`
	Seed     uint64         `json:"seed"`
	Datasets []datasetEntry `json:"datasets"`
}

type datasetEntry struct {
	Name        string                     `json:"name"`
	Description string                     `json:"description"`
	Dimension   int                        `json:"dimension"`
	Base        int                        `json:"base"`
	Queries     int                        `json:"queries"`
	Dir         string                     `json:"dir"`
	Results     map[string]ann.Measurement `json:"results"`
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		datasets, efSearch, dataDir, out, corpus, queries, cpuProfile string
		n, nq, dim                                                    int
		p                                                             ann.Params
		seed                                                          uint64
	)
	fs.StringVar(&datasets, "datasets", "scifact,structured,random", "comma-separated data sets: scifact, structured, random")
	fs.IntVar(&n, "n", 100_000, "base vectors of the synthetic data sets")
	fs.IntVar(&nq, "queries", 1000, "queries of the synthetic data sets")
	fs.IntVar(&dim, "dim", 384, "dimension of the synthetic data sets")
	fs.StringVar(&corpus, "scifact-corpus", "", "SciFact corpus embeddings (JSON lines, from ops/bench/embed_beir.py)")
	fs.StringVar(&queries, "scifact-queries", "", "SciFact test query embeddings (JSON lines)")
	fs.IntVar(&p.M, "m", 16, "HNSW M (links per node above layer 0; 2·M on layer 0)")
	fs.IntVar(&p.EfConstruction, "ef-construction", 64, "HNSW efConstruction")
	fs.StringVar(&efSearch, "ef-search", "16,32,64,128,256", "comma-separated efSearch values to sweep")
	fs.Uint64Var(&seed, "seed", 1, "random seed of the generators and the graph")
	fs.StringVar(&dataDir, "data-dir", filepath.Join(".data", "ann"), "where the data sets are written for the reference implementations")
	fs.StringVar(&out, "o", filepath.Join(".data", "ann", "ours.json"), "JSON report path")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range strings.Split(efSearch, ",") {
		ef, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || ef < 1 {
			return fmt.Errorf("efSearch %q is not a positive number", s)
		}
		p.EfSearch = append(p.EfSearch, ef)
	}
	if p.M < 2 || p.EfConstruction < 1 || n < ann.K || nq < 1 || dim < 1 {
		return fmt.Errorf("m must be at least 2, n at least %d, and ef-construction, queries and dim positive", ann.K)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rep := report{
		Machine: map[string]any{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": runtime.NumCPU(), "go_version": runtime.Version()},
		Params:  p, Seed: seed,
	}
	for _, name := range strings.Split(datasets, ",") {
		var ds *ann.Dataset
		switch name = strings.TrimSpace(name); name {
		case "structured":
			ds = ann.Structured(n, nq, dim, seed)
		case "random":
			ds = ann.Random(n, nq, dim, seed)
		case "scifact":
			if corpus == "" || queries == "" {
				return fmt.Errorf("data set scifact needs -scifact-corpus and -scifact-queries (make eval-retrieval's embeddings)")
			}
			var err error
			if ds, err = ann.SciFact(corpus, queries); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown data set %q; use scifact, structured or random", name)
		}
		start := time.Now()
		ds.ComputeTruth()
		log.Info("exact top 10 computed", "dataset", name, "base", len(ds.Base), "queries", len(ds.Queries), "seconds", time.Since(start).Seconds())
		dir := filepath.Join(dataDir, name)
		if err := ds.Write(dir); err != nil {
			return err
		}
		m, _ := ann.MeasureOurs(ds, p, seed)
		log.Info("measured this graph", "dataset", name, "build_seconds", m.BuildSeconds, "sweep", m.Sweep)
		rep.Datasets = append(rep.Datasets, datasetEntry{
			Name: ds.Name, Description: ds.Description, Dimension: ds.Dimension, Base: len(ds.Base), Queries: len(ds.Queries),
			Dir: dir, Results: map[string]ann.Measurement{"ours": m},
		})
	}
	if err := cli.WriteJSON(out, rep); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "written to %s\n", out)
	return nil
}
