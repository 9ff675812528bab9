package hnsw

func dotKernels() map[string]func(a, b []float32) float32 {
	out := map[string]func(a, b []float32) float32{}
	if useAVX2 {
		out["avx2"] = func(a, b []float32) float32 { return dotAVX2(&a[0], &b[0], len(a)) }
	}
	if useAVX512 {
		out["avx512"] = func(a, b []float32) float32 { return dotAVX512(&a[0], &b[0], len(a)) }
	}
	return out
}
