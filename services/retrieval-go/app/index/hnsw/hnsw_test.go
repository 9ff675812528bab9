package hnsw

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func unit(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var n float64
	for i := range v {
		x := r.NormFloat64()
		v[i] = float32(x)
		n += x * x
	}
	inv := float32(1 / math.Sqrt(n))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// clustered returns n unit vectors around a few centres, the shape real
// embeddings have (random vectors in many dimensions are all about equally
// far apart, the hardest case for any graph index).
func clustered(r *rand.Rand, n, dim, centres int) [][]float32 {
	cs := make([][]float32, centres)
	for i := range cs {
		cs[i] = unit(r, dim)
	}
	out := make([][]float32, n)
	for i := range out {
		c := cs[r.IntN(centres)]
		v := unit(r, dim)
		for j := range v {
			v[j] = c[j] + 0.35*v[j]
		}
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(s))
		}
		out[i] = v
	}
	return out
}

func exact(vecs [][]float32, q []float32, k int, accept func(uint32) bool) []uint32 {
	type pair struct {
		id uint32
		d  float32
	}
	var all []pair
	for i, v := range vecs {
		if accept == nil || accept(uint32(i)) {
			all = append(all, pair{uint32(i), 1 - Dot(q, v)})
		}
	}
	slices.SortFunc(all, func(a, b pair) int {
		if a.d != b.d {
			if a.d < b.d {
				return -1
			}
			return 1
		}
		return int(a.id) - int(b.id)
	})
	var ids []uint32
	for _, p := range all[:min(k, len(all))] {
		ids = append(ids, p.id)
	}
	return ids
}

func recall(got []Result, want []uint32) float64 {
	if len(want) == 0 {
		return 1
	}
	set := make(map[uint32]bool)
	for _, w := range want {
		set[w] = true
	}
	hit := 0
	for _, g := range got {
		if set[g.ID] {
			hit++
		}
	}
	return float64(hit) / float64(len(want))
}

func TestRecallAgainstExactSearch(t *testing.T) {
	tests := []struct {
		name      string
		vecs      func(r *rand.Rand) [][]float32
		minRecall float64
	}{
		{"clustered 64-dim", func(r *rand.Rand) [][]float32 { return clustered(r, 4000, 64, 20) }, 0.95},
		{"uniform 32-dim", func(r *rand.Rand) [][]float32 {
			out := make([][]float32, 3000)
			for i := range out {
				out[i] = unit(r, 32)
			}
			return out
		}, 0.9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			vecs := tt.vecs(r)
			g := New(Parameters{Seed: 7})
			for i, v := range vecs {
				g.Insert(uint32(i), v)
			}
			if g.Len() != len(vecs) {
				t.Fatalf("Len = %d, want %d", g.Len(), len(vecs))
			}
			const k, queries = 10, 100
			total := 0.0
			for range queries {
				q := vecs[r.IntN(len(vecs))]
				q = slices.Clone(q)
				q[0] += 0.01
				total += recall(g.Search(q, k, 0, nil), exact(vecs, q, k, nil))
			}
			if got := total / queries; got < tt.minRecall {
				t.Errorf("recall@%d = %.3f, want >= %.2f", k, got, tt.minRecall)
			}
		})
	}
}

func TestSearchOrderAndFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vecs := clustered(r, 2000, 16, 8)
	g := New(Parameters{Seed: 1})
	for i, v := range vecs {
		g.Insert(uint32(i), v)
	}
	q := unit(r, 16)
	res := g.Search(q, 20, 200, nil)
	if len(res) != 20 {
		t.Fatalf("got %d results, want 20", len(res))
	}
	if !slices.IsSortedFunc(res, func(a, b Result) int {
		if less(a, b) {
			return -1
		}
		return 1
	}) {
		t.Errorf("results not sorted by distance: %v", res)
	}
	even := func(id uint32) bool { return id%2 == 0 }
	filtered := g.Search(q, 10, 100, even)
	for _, r := range filtered {
		if !even(r.ID) {
			t.Errorf("filtered search returned %d", r.ID)
		}
	}
	if rc := recall(filtered, exact(vecs, q, 10, even)); rc < 0.8 {
		t.Errorf("filtered recall = %.2f, want >= 0.8", rc)
	}
	if got := g.Search(q, 5, 0, func(uint32) bool { return false }); len(got) != 0 {
		t.Errorf("a filter that accepts nothing returned %v", got)
	}
}

func TestGraphInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := Parameters{M: 4, EfConstruction: 20, Seed: 9}
	g := New(p)
	if got := g.Search(unit(r, 8), 3, 0, nil); got != nil {
		t.Errorf("empty graph returned %v", got)
	}
	// Sparse, out-of-order ids, and a repeated insert.
	ids := []uint32{50, 3, 900, 7, 7}
	for _, id := range ids {
		g.Insert(id, unit(r, 8))
	}
	for id := range uint32(200) {
		g.Insert(1000+id, unit(r, 8))
	}
	if g.Len() != 204 {
		t.Fatalf("Len = %d, want 204", g.Len())
	}
	if !g.Contains(900) || g.Contains(4) || g.Contains(1<<20) {
		t.Error("Contains is wrong")
	}
	for id := range uint32(1300) {
		if !g.Contains(id) {
			continue
		}
		for l := 0; ; l++ {
			links := g.Links(id, l)
			if links == nil && l > 0 {
				break
			}
			maxLinks := p.M
			if l == 0 {
				maxLinks = 2 * p.M
			}
			if len(links) > maxLinks {
				t.Errorf("node %d has %d links on layer %d, max %d", id, len(links), l, maxLinks)
			}
			for _, nb := range links {
				if nb == id || !g.Contains(nb) {
					t.Errorf("node %d links to %d", id, nb)
				}
			}
			if links == nil {
				break
			}
		}
	}
}

func TestConcurrentInsertAndSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	vecs := clustered(r, 1500, 16, 5)
	g := New(Parameters{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, v := range vecs {
			g.Insert(uint32(i), v)
		}
	})
	for range 2 {
		wg.Go(func() {
			for i := range 300 {
				for _, res := range g.Search(vecs[i], 5, 0, nil) {
					if int(res.ID) >= len(vecs) {
						t.Errorf("unknown id %d", res.ID)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestDot(t *testing.T) {
	for n := range 20 {
		a, b := make([]float32, n), make([]float32, n)
		want := float32(0)
		for i := range n {
			a[i], b[i] = float32(i+1), float32(2*i-3)
			want += a[i] * b[i]
		}
		if got := Dot(a, b); math.Abs(float64(got-want)) > 1e-3 {
			t.Errorf("Dot(n=%d) = %v, want %v", n, got, want)
		}
	}
}

func TestDotKernelMatchesPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for n := range 200 {
		a, b := unit(r, n+1), unit(r, n+1)
		got, want := Dot(a, b), dotGo(a, b)
		if math.Abs(float64(got-want)) > 1e-5 {
			t.Fatalf("n=%d: Dot = %v, portable %v", n+1, got, want)
		}
	}
	if Dot(nil, nil) != 0 {
		t.Error("Dot of empty vectors")
	}
}

func BenchmarkDot384(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, y := unit(r, 384), unit(r, 384)
	for b.Loop() {
		Dot(x, y)
	}
}

func BenchmarkDotGo384(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, y := unit(r, 384), unit(r, 384)
	for b.Loop() {
		dotGo(x, y)
	}
}

func TestMinHeapPopsInOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 2, 7, 64, 500} {
		var h minHeap
		var want []float32
		for i := range n {
			d := float32(r.IntN(50)) // repeats on purpose
			h.push(d, uint32(i))
			want = append(want, d)
		}
		slices.Sort(want)
		for i, w := range want {
			if d, _ := h.pop(); d != w {
				t.Fatalf("n=%d: pop %d gave %v, want %v", n, i, d, w)
			}
		}
		if len(h.items) != 0 {
			t.Fatalf("n=%d: %d items left", n, len(h.items))
		}
	}
}

func TestPrefetchAnyLength(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 384} {
		prefetch(make([]float32, n)) // must neither fault nor read past the slice's lines
	}
}

// TestEveryDotKernelMatchesPortable checks each assembly kernel the CPU has,
// whichever dot picks, at lengths around every loop boundary.
func TestEveryDotKernelMatchesPortable(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for name, k := range dotKernels() {
		for n := 1; n <= 200; n++ {
			a, b := unit(r, n), unit(r, n)
			if got, want := k(a, b), dotGo(a, b); math.Abs(float64(got-want)) > 1e-5 {
				t.Fatalf("%s, n=%d: %v, portable %v", name, n, got, want)
			}
		}
	}
}

func BenchmarkDotKernels384(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x, y := unit(r, 384), unit(r, 384)
	for name, k := range dotKernels() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				k(x, y)
			}
		})
	}
}
