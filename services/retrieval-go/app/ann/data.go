// Package ann compares the HNSW graph of package hnsw with reference
// implementations on identical vectors. It generates (or loads) each data
// set, writes it to plain files that the Python side (ops/bench/ann_bench.py,
// hnswlib and faiss) reads, computes the exact top 10 of every query by brute
// force, and measures this repository's graph: build time, memory, and
// recall@10 and queries per second over an efSearch sweep, single-threaded.
package ann

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/durable-agents/reference/services/retrieval-go/app/eval"
	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/index/hnsw"
)

// Dataset is a base set to index and the queries to search it with, all unit
// vectors of one dimension.
type Dataset struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Dimension   int         `json:"dimension"`
	Base        [][]float32 `json:"-"`
	Queries     [][]float32 `json:"-"`
	// Truth holds, per query, the ids (base positions) of its exact K nearest
	// neighbours by inner product, closest first.
	Truth [][]uint32 `json:"-"`
}

// K is the depth recall is measured at.
const K = 10

// Structured generator settings, recorded in the data set's description.
const (
	structuredLatentDim = 32
	structuredClusters  = 100
	structuredSpread    = 1.0  // within-cluster standard deviation in latent space, centres are N(0, I)
	structuredNoise     = 0.02 // isotropic noise per output dimension, before normalising
	randomQueryNear     = 0.6  // as app/bench: a random-set query is 0.6·(a base vector) + 0.4·(noise)
)

// Structured makes n base vectors and q queries in dim dimensions with low
// intrinsic dimension, the shape real embeddings have: points of a mixture of
// Gaussians in a small latent space, mapped to dim dimensions by one fixed
// random linear map, with a little isotropic noise, normalised. Queries are
// fresh draws from the same mixture, not base vectors.
func Structured(n, q, dim int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	proj := make([][]float32, structuredLatentDim) // latent axis -> output direction
	for i := range proj {
		proj[i] = gaussian(r, dim, 1/math.Sqrt(float64(dim)))
	}
	centres := make([][]float32, structuredClusters)
	for i := range centres {
		centres[i] = gaussian(r, structuredLatentDim, 1)
	}
	draw := func() []float32 {
		c := centres[r.IntN(len(centres))]
		out := gaussian(r, dim, structuredNoise)
		for a := range structuredLatentDim {
			z := float64(c[a]) + structuredSpread*r.NormFloat64()
			for j, p := range proj[a] {
				out[j] += float32(z) * p
			}
		}
		return index.Normalize(out)
	}
	ds := &Dataset{
		Name: "structured",
		Description: fmt.Sprintf("synthetic, %d clusters in a %d-dimensional latent space (centres N(0,I), points centre + N(0,%.2f²I)), "+
			"mapped to %d dimensions by a fixed Gaussian random matrix (entries N(0,1/%d)), plus N(0,%.2f²) noise per dimension, normalised; "+
			"queries are fresh draws from the same mixture; seed %d", structuredClusters, structuredLatentDim, structuredSpread, dim, dim, structuredNoise, seed),
		Dimension: dim,
	}
	for range n {
		ds.Base = append(ds.Base, draw())
	}
	for range q {
		ds.Queries = append(ds.Queries, draw())
	}
	return ds
}

// Random makes n random unit vectors and q queries near random base vectors,
// the vectors of make bench-retrieval: the hardest case for any graph index.
func Random(n, q, dim int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 0xa11))
	ds := &Dataset{
		Name: "random",
		Description: fmt.Sprintf("random unit vectors (Gaussian, normalised); a query is %.1f·(a random base vector) + %.1f·(a random unit vector), normalised; seed %d",
			randomQueryNear, 1-randomQueryNear, seed),
		Dimension: dim,
	}
	for range n {
		ds.Base = append(ds.Base, index.Normalize(gaussian(r, dim, 1)))
	}
	for range q {
		src := ds.Base[r.IntN(n)]
		noise := index.Normalize(gaussian(r, dim, 1))
		v := make([]float32, dim)
		for j := range v {
			v[j] = randomQueryNear*src[j] + (1-randomQueryNear)*noise[j]
		}
		ds.Queries = append(ds.Queries, index.Normalize(v))
	}
	return ds
}

// SciFact loads the corpus and query embeddings that make eval-retrieval
// computes (JSON lines, see eval.LoadEmbeddings), in ascending id order.
func SciFact(corpusPath, queriesPath string) (*Dataset, error) {
	docs, dim, err := eval.LoadEmbeddings(corpusPath)
	if err != nil {
		return nil, fmt.Errorf("read corpus embeddings: %w", err)
	}
	queries, qdim, err := eval.LoadEmbeddings(queriesPath)
	if err != nil {
		return nil, fmt.Errorf("read query embeddings: %w", err)
	}
	if qdim != dim {
		return nil, fmt.Errorf("query embeddings have dimension %d, corpus embeddings %d", qdim, dim)
	}
	ds := &Dataset{
		Name:        "scifact",
		Description: fmt.Sprintf("BEIR SciFact corpus (%d documents) and test queries (%d) embedded by all-MiniLM-L6-v2 (ops/bench/embed_beir.py), normalised", len(docs), len(queries)),
		Dimension:   dim,
	}
	for _, id := range slices.Sorted(maps.Keys(docs)) {
		ds.Base = append(ds.Base, index.Normalize(docs[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(queries)) {
		ds.Queries = append(ds.Queries, index.Normalize(queries[id]))
	}
	return ds, nil
}

func gaussian(r *rand.Rand, n int, sd float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(sd * r.NormFloat64())
	}
	return v
}

// ComputeTruth fills ds.Truth by brute force: every query against every base
// vector, ties by lower id.
func (ds *Dataset) ComputeTruth() {
	ds.Truth = make([][]uint32, len(ds.Queries))
	for qi, q := range ds.Queries {
		best := make([]hnsw.Result, 0, K+1)
		for id, v := range ds.Base {
			d := 1 - hnsw.Dot(q, v)
			if len(best) == K && d >= best[K-1].Distance {
				continue
			}
			at, _ := slices.BinarySearchFunc(best, d, func(r hnsw.Result, d float32) int {
				if r.Distance <= d {
					return -1
				}
				return 1
			})
			best = slices.Insert(best, at, hnsw.Result{ID: uint32(id), Distance: d})
			if len(best) > K {
				best = best[:K]
			}
		}
		for _, r := range best {
			ds.Truth[qi] = append(ds.Truth[qi], r.ID)
		}
	}
}

// Write stores the data set in dir as little-endian binary files the Python
// side maps with numpy: base.f32 (n×dim float32), queries.f32 (q×dim
// float32), truth.u32 (q×K uint32) and meta.json.
func (ds *Dataset) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	files := map[string][]byte{
		"base.f32":    floats(ds.Base),
		"queries.f32": floats(ds.Queries),
		"truth.u32":   ids(ds.Truth),
	}
	meta, err := json.MarshalIndent(map[string]any{
		"name": ds.Name, "description": ds.Description, "dimension": ds.Dimension,
		"base": len(ds.Base), "queries": len(ds.Queries), "k": K,
	}, "", "  ")
	if err != nil {
		return err
	}
	files["meta.json"] = meta
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write data set %s: %w", ds.Name, err)
		}
	}
	return nil
}

func floats(vs [][]float32) []byte {
	var out []byte
	for _, v := range vs {
		for _, x := range v {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
		}
	}
	return out
}

func ids(rows [][]uint32) []byte {
	var out []byte
	for _, row := range rows {
		for i := range K {
			id := uint32(math.MaxUint32) // fewer than K base vectors
			if i < len(row) {
				id = row[i]
			}
			out = binary.LittleEndian.AppendUint32(out, id)
		}
	}
	return out
}
