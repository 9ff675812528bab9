package hnsw

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotAVX2(a, b *float32, n int) float32

func dot(a, b []float32) float32 {
	if useAVX2 && len(a) > 0 {
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
