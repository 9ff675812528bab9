package ann

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/bench"
	"github.com/durable-agents/reference/services/retrieval-go/app/index/hnsw"
)

// Params are the graph parameters every implementation gets.
type Params struct {
	M              int   `json:"m"`
	EfConstruction int   `json:"ef_construction"`
	EfSearch       []int `json:"ef_search"`
}

// Point is one efSearch setting's outcome.
type Point struct {
	EfSearch int     `json:"ef_search"`
	Recall   float64 `json:"recall_at_10"`
	// QPS is queries per CPU second of the process; WallQPS per second of
	// wall time. The machine is shared, so CPU time is the steadier figure
	// and the one the ratios use.
	QPS     float64 `json:"qps"`
	WallQPS float64 `json:"wall_qps"`
}

// Measurement is one implementation on one data set.
type Measurement struct {
	// BuildSeconds is CPU time, BuildWallSeconds wall time.
	BuildSeconds     float64 `json:"build_seconds"`
	BuildWallSeconds float64 `json:"build_wall_seconds"`
	// MemoryBytes is what the index holds: for this graph the heap it
	// allocated while building plus the vectors it references (hnswlib and
	// faiss copy the vectors into the index, so theirs include them too).
	MemoryBytes int64   `json:"memory_bytes"`
	Sweep       []Point `json:"sweep"`
}

// MeasureOurs builds the graph over ds.Base on one thread and searches it
// with every efSearch of p, one query at a time.
func MeasureOurs(ds *Dataset, p Params, seed uint64) (Measurement, *hnsw.Graph) {
	// One OS thread runs Go code, so the garbage collector's work is
	// charged to the same core as the build, as a single-threaded C++
	// build pays for its own allocations.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// EfSearch 1: the sweep's ef is the candidate list size, not raised to a default.
	g := hnsw.New(hnsw.Parameters{M: p.M, EfConstruction: p.EfConstruction, EfSearch: 1, Seed: seed})
	start, cpu := time.Now(), bench.CPUSeconds()
	for id, v := range ds.Base {
		g.Insert(uint32(id), v)
	}
	m := Measurement{BuildSeconds: bench.CPUSeconds() - cpu, BuildWallSeconds: time.Since(start).Seconds()}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	m.MemoryBytes = int64(after.HeapAlloc) - int64(before.HeapAlloc) + int64(len(ds.Base)*ds.Dimension*4)

	for _, ef := range p.EfSearch {
		found := make([][]uint32, len(ds.Queries))
		start, cpu := time.Now(), bench.CPUSeconds()
		for qi, q := range ds.Queries {
			for _, r := range g.Search(q, K, ef, nil) {
				found[qi] = append(found[qi], r.ID)
			}
		}
		n := float64(len(ds.Queries))
		m.Sweep = append(m.Sweep, Point{EfSearch: ef, Recall: Recall(found, ds.Truth), QPS: n / (bench.CPUSeconds() - cpu), WallQPS: n / time.Since(start).Seconds()})
	}
	return m, g
}

// Recall is the mean share of each query's exact top K found.
func Recall(found, truth [][]uint32) float64 {
	if len(truth) == 0 {
		return 0
	}
	total := 0.0
	for qi, want := range truth {
		set := make(map[uint32]bool, len(want))
		for _, id := range want {
			set[id] = true
		}
		hit := 0
		for _, id := range found[qi] {
			if set[id] {
				hit++
			}
		}
		if len(want) > 0 {
			total += float64(hit) / float64(len(want))
		} else {
			total++
		}
	}
	return total / float64(len(truth))
}
