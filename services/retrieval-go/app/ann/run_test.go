package ann

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func smallConfig(t *testing.T, datasets ...string) Config {
	return Config{
		Datasets: datasets, N: 200, Queries: 10, Dimension: 8,
		Params: Params{M: 4, EfConstruction: 16, EfSearch: []int{4, 32}}, Seed: 2,
		DataDir: t.TempDir(),
	}
}

func TestRunWritesAndMeasuresEveryDataset(t *testing.T) {
	cfg := smallConfig(t, "structured", "random")
	rep, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seed != 2 || rep.Params.M != 4 || rep.Machine["cpus"] == nil || len(rep.Datasets) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for i, name := range cfg.Datasets {
		got := rep.Datasets[i]
		if got.Name != name || got.Base != 200 || got.Queries != 10 || got.Dimension != 8 || got.Dir != filepath.Join(cfg.DataDir, name) {
			t.Errorf("data set %d = %+v, want %s written under %s", i, got, name, cfg.DataDir)
		}
		if sweep := got.Results["ours"].Sweep; len(sweep) != 2 || sweep[1].Recall <= 0 {
			t.Errorf("%s: sweep %+v", name, sweep)
		}
		if _, err := os.Stat(filepath.Join(got.Dir, "truth.u32")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRunErrors(t *testing.T) {
	unknown := smallConfig(t, "structured", "nope")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown data set", unknown, `unknown data set "nope"; use scifact, structured or random`},
		{"scifact without embeddings", smallConfig(t, "scifact"), "data set scifact needs -scifact-corpus and -scifact-queries"},
		{"scifact embeddings missing", func() Config {
			cfg := smallConfig(t, "scifact")
			cfg.SciFactCorpus, cfg.SciFactQueries = "/no/such/corpus.jsonl", "/no/such/queries.jsonl"
			return cfg
		}(), "read corpus embeddings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Run(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || rep != nil {
				t.Errorf("Run = %v, %v; want an error containing %q", rep, err, tt.want)
			}
		})
	}
	// A data set's name is checked when its turn comes: the ones before it
	// are written already.
	if _, err := os.Stat(filepath.Join(unknown.DataDir, "structured", "meta.json")); err != nil {
		t.Errorf("the data set before the unknown one: %v", err)
	}
}
