package ann

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"
)

// Config says which data sets to prepare and measure, and how.
type Config struct {
	// Datasets names the data sets in the order they are measured:
	// scifact, structured or random.
	Datasets []string
	// N, Queries and Dimension shape the synthetic data sets (structured,
	// random): base vectors, queries and the vectors' dimension.
	N, Queries, Dimension int
	// SciFactCorpus and SciFactQueries are the embedding files (JSON lines)
	// the scifact data set is read from.
	SciFactCorpus, SciFactQueries string
	Params                        Params
	Seed                          uint64
	// DataDir receives each data set in a directory of its name, for the
	// reference implementations to read.
	DataDir string
	Logger  *slog.Logger
}

// Report is Run's outcome, written as JSON; ops/bench/ann_bench.py adds the
// reference implementations' measurements to it.
type Report struct {
	Machine  map[string]any  `json:"machine"`
	Params   Params          `json:"parameters"`
	Seed     uint64          `json:"seed"`
	Datasets []DatasetReport `json:"datasets"`
}

// DatasetReport describes one data set, where it was written, and the
// measurements on it by implementation ("ours" for this repository's graph).
type DatasetReport struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description"`
	Dimension   int                    `json:"dimension"`
	Base        int                    `json:"base"`
	Queries     int                    `json:"queries"`
	Dir         string                 `json:"dir"`
	Results     map[string]Measurement `json:"results"`
}

// Run prepares the data sets one after the other and measures this
// repository's graph on each. A data set's name is checked only when its
// turn comes, after the ones before it have been written.
func Run(cfg Config) (*Report, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{
		Machine: map[string]any{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": runtime.NumCPU(), "go_version": runtime.Version()},
		Params:  cfg.Params, Seed: cfg.Seed,
	}
	for _, name := range cfg.Datasets {
		ds, err := cfg.dataset(name)
		if err != nil {
			return nil, err
		}
		entry, err := prepareAndMeasure(ds, name, cfg, log)
		if err != nil {
			return nil, err
		}
		rep.Datasets = append(rep.Datasets, entry)
	}
	return rep, nil
}

// dataset generates the data set name names, or loads it for scifact.
func (cfg Config) dataset(name string) (*Dataset, error) {
	switch name {
	case "structured":
		return Structured(cfg.N, cfg.Queries, cfg.Dimension, cfg.Seed), nil
	case "random":
		return Random(cfg.N, cfg.Queries, cfg.Dimension, cfg.Seed), nil
	case "scifact":
		if cfg.SciFactCorpus == "" || cfg.SciFactQueries == "" {
			return nil, fmt.Errorf("data set scifact needs -scifact-corpus and -scifact-queries (make eval-retrieval's embeddings)")
		}
		return SciFact(cfg.SciFactCorpus, cfg.SciFactQueries)
	default:
		return nil, fmt.Errorf("unknown data set %q; use scifact, structured or random", name)
	}
}

// prepareAndMeasure computes ds's exact top 10, writes ds under cfg.DataDir
// for the reference implementations, and measures this repository's graph
// on it.
func prepareAndMeasure(ds *Dataset, name string, cfg Config, log *slog.Logger) (DatasetReport, error) {
	start := time.Now()
	ds.ComputeTruth()
	log.Info("exact top 10 computed", "dataset", name, "base", len(ds.Base), "queries", len(ds.Queries), "seconds", time.Since(start).Seconds())
	dir := filepath.Join(cfg.DataDir, name)
	if err := ds.Write(dir); err != nil {
		return DatasetReport{}, err
	}
	m, _ := MeasureOurs(ds, cfg.Params, cfg.Seed)
	log.Info("measured this graph", "dataset", name, "build_seconds", m.BuildSeconds, "sweep", m.Sweep)
	return DatasetReport{
		Name: ds.Name, Description: ds.Description, Dimension: ds.Dimension, Base: len(ds.Base), Queries: len(ds.Queries),
		Dir: dir, Results: map[string]Measurement{"ours": m},
	}, nil
}
