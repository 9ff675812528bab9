package ann

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestGeneratorsMakeUnitVectorsReproducibly(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(seed uint64) *Dataset
	}{
		{"structured", func(seed uint64) *Dataset { return Structured(200, 20, 48, seed) }},
		{"random", func(seed uint64) *Dataset { return Random(200, 20, 48, seed) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := tc.make(7), tc.make(7), tc.make(8)
			if len(a.Base) != 200 || len(a.Queries) != 20 || a.Dimension != 48 || a.Description == "" {
				t.Fatalf("shape: %d base, %d queries, dim %d", len(a.Base), len(a.Queries), a.Dimension)
			}
			for i, v := range append(slices.Clone(a.Base), a.Queries...) {
				var norm float64
				for _, x := range v {
					norm += float64(x) * float64(x)
				}
				if math.Abs(norm-1) > 1e-5 {
					t.Fatalf("vector %d has squared norm %v", i, norm)
				}
			}
			if !slices.Equal(a.Base[13], b.Base[13]) || slices.Equal(a.Base[13], c.Base[13]) {
				t.Error("the same seed must give the same vectors and another seed others")
			}
		})
	}
}

func TestTruthIsTheExactTopK(t *testing.T) {
	ds := Structured(500, 15, 16, 1)
	ds.ComputeTruth()
	for qi, q := range ds.Queries {
		order := make([]int, len(ds.Base))
		for i := range order {
			order[i] = i
		}
		dot := func(i int) float64 {
			s := 0.0
			for j, x := range q {
				s += float64(x) * float64(ds.Base[i][j])
			}
			return s
		}
		slices.SortStableFunc(order, func(a, b int) int {
			if da, db := dot(a), dot(b); da > db {
				return -1
			} else if da < db {
				return 1
			}
			return 0
		})
		for i, id := range ds.Truth[qi] {
			if int(id) != order[i] && math.Abs(dot(int(id))-dot(order[i])) > 1e-5 {
				t.Fatalf("query %d rank %d: truth %d, sorted scan %d", qi, i, id, order[i])
			}
		}
	}
}

func TestRecall(t *testing.T) {
	truth := [][]uint32{{1, 2, 3, 4}, {5, 6}}
	for _, tc := range []struct {
		name  string
		found [][]uint32
		want  float64
	}{
		{"all", [][]uint32{{4, 3, 2, 1}, {6, 5}}, 1},
		{"none", [][]uint32{{9}, nil}, 0},
		{"half of each", [][]uint32{{1, 2, 8, 9}, {5, 7}}, 0.5},
	} {
		if got := Recall(tc.found, truth); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: recall %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMeasureOursAndWrite(t *testing.T) {
	ds := Structured(2000, 50, 32, 3)
	ds.ComputeTruth()
	m, g := MeasureOurs(ds, Params{M: 8, EfConstruction: 40, EfSearch: []int{10, 80}}, 1)
	if g.Len() != 2000 || m.BuildSeconds <= 0 || m.MemoryBytes < 2000*32*4 || len(m.Sweep) != 2 {
		t.Fatalf("measurement %+v", m)
	}
	if m.Sweep[1].Recall < 0.95 || m.Sweep[1].Recall < m.Sweep[0].Recall || m.Sweep[0].QPS <= 0 {
		t.Errorf("sweep %+v: a longer candidate list must find at least as much, and most", m.Sweep)
	}

	dir := t.TempDir()
	if err := ds.Write(dir); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"base.f32": 2000 * 32 * 4, "queries.f32": 50 * 32 * 4, "truth.u32": 50 * K * 4} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) != size {
			t.Fatalf("%s: %d bytes, err %v; want %d", name, len(b), err, size)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "base.f32"))
	if got := math.Float32frombits(binary.LittleEndian.Uint32(b[4*33:])); got != ds.Base[1][1] {
		t.Errorf("base.f32 holds %v at [1][1], want %v", got, ds.Base[1][1])
	}
}
