package hnsw

import "golang.org/x/sys/cpu"

var (
	useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	// AVX-512 halves the iterations of a 384-dimension dot product (10 ns
	// instead of 15 here), which exact scans gain; a graph walk waits on
	// memory more than on arithmetic and gained nothing measurable.
	useAVX512 = cpu.X86.HasAVX512F && useAVX2
)

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func dotAVX512(a, b *float32, n int) float32

func dot(a, b []float32) float32 {
	switch {
	case len(a) == 0:
		return 0
	case useAVX512:
		return dotAVX512(&a[0], &b[0], len(a))
	case useAVX2:
		return dotAVX2(&a[0], &b[0], len(a))
	}
	return dotGo(a, b)
}

// prefetch asks the CPU to bring v into its caches ahead of use. Comparing a
// query with a node's neighbours is bound by memory latency, not arithmetic:
// a 384-dimension vector is 24 cache lines that are rarely cached yet.
//
//go:noescape
func prefetchLines(p *float32, n int)

func prefetch(v []float32) {
	if len(v) > 0 {
		prefetchLines(&v[0], len(v))
	}
}
