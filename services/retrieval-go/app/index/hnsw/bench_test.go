package hnsw

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// benchGraph is built once per test binary: 10,000 clustered unit vectors
// of 128 dimensions, with 100 queries drawn the same way.
var benchGraph = sync.OnceValues(func() (*Graph, [][]float32) {
	r := rand.New(rand.NewPCG(61, 62))
	vecs := clustered(r, 10100, 128, 40)
	g := New(Parameters{M: 16, EfConstruction: 100, Seed: 7})
	for i, v := range vecs[:10000] {
		g.Insert(uint32(i), v)
	}
	return g, vecs[10000:]
})

// BenchmarkSearch times one query (cycling through 100) for the 10 nearest,
// unfiltered and accepting half the nodes.
func BenchmarkSearch(b *testing.B) {
	g, queries := benchGraph()
	for _, bc := range []struct {
		name   string
		accept func(uint32) bool
	}{
		{"all", nil},
		{"even", func(id uint32) bool { return id%2 == 0 }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				g.Search(queries[i%len(queries)], 10, 64, bc.accept)
				i++
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	g, _ := benchGraph()
	order := make([]uint32, 10000)
	for i := range order {
		order[i] = uint32(i)
	}
	data, err := g.Encode(nil, order)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Decode(data, g.Parameters(), g.Vector); err != nil {
			b.Fatal(err)
		}
	}
}
