//go:build !amd64

package hnsw

func dot(a, b []float32) float32 { return dotGo(a, b) }

func prefetch([]float32) {}
