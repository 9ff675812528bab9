// Package hnsw is an approximate nearest-neighbour index over unit vectors:
// a Hierarchical Navigable Small World graph (Malkov and Yashunin, "Efficient
// and robust approximate nearest neighbor search using Hierarchical Navigable
// Small World graphs", IEEE TPAMI 2018), with the neighbour-selection
// heuristic of the paper's algorithm 4 and the filtered search of hnswlib.
//
// Distances are 1 - dot(a, b), which is the cosine distance for unit
// vectors; callers normalise. Nodes are identified by caller-chosen uint32
// ids (the retrieval index uses its document slots), and the graph never
// deletes: a removed document stays in the graph as a waypoint and is kept
// out of results by the caller's accept function.
//
// github.com/coder/hnsw was considered and not used: it keeps neighbours in
// maps and sorts them on every visit, its search stops at the first layer
// step that does not improve (which costs recall), it has no filtered
// search, and it is not safe for concurrent use.
package hnsw

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
)

// Parameters shape the graph. The zero value means the defaults.
type Parameters struct {
	// M is the number of neighbours a node keeps on layers above 0; layer 0
	// keeps 2·M. Default 16.
	M int `json:"m"`
	// EfConstruction is the candidate list size while inserting. Default 64,
	// between Faiss's 40 and hnswlib's 200: on 384-dimension vectors it builds
	// about twice as fast as 200 for a few points of recall, which EfSearch
	// can buy back at query time.
	EfConstruction int `json:"ef_construction"`
	// EfSearch is the minimum candidate list size while searching; a search
	// for k results uses max(k, EfSearch). Default 64.
	EfSearch int `json:"ef_search"`
	// Seed makes level assignment, and so the graph, reproducible.
	Seed uint64 `json:"seed"`
}

// WithDefaults fills in unset parameters.
func (p Parameters) WithDefaults() Parameters {
	if p.M <= 0 {
		p.M = 16
	}
	if p.EfConstruction <= 0 {
		p.EfConstruction = 64
	}
	if p.EfSearch <= 0 {
		p.EfSearch = 64
	}
	return p
}

// Result is one neighbour found by Search.
type Result struct {
	ID uint32
	// Distance is 1 - cosine similarity.
	Distance float32
}

// Graph is safe for concurrent use: searches share a read lock, inserts take
// the write lock.
//
// The layout follows what the profile of a search shows: almost all of its
// time is spent waiting for vectors and neighbour lists to arrive from
// memory. So layer 0, which every search walks, is one flat slab of
// fixed-size neighbour lists (one cache-friendly read per visited node, no
// pointer chasing through per-node slices), the rare upper layers live in
// per-node slices, and the vectors of a node's neighbours are prefetched
// while the previous one is compared.
type Graph struct {
	p  Parameters
	ml float64
	mu sync.RWMutex
	// vecs[id] is the node's vector, shared with the caller; nil when the id
	// is not in the graph.
	vecs [][]float32
	// levels[id] is the node's top layer, or -1 when the id is not in the
	// graph.
	levels []int8
	// base holds layer 0: node id's list starts at id*baseStride with its
	// length, followed by room for 2·M neighbour ids.
	base       []uint32
	baseStride int
	// upper[id][l-1] are id's neighbours on layer l ≥ 1; nil for nodes that
	// live on layer 0 only (about 15 in 16 of them with M = 16).
	upper [][][]uint32
	count int
	entry uint32
	top   int // top layer of entry; -1 when empty
	rng   *rand.Rand

	scratch sync.Pool // *scratch, per search or insert
	// pruneBuf and keptBuf serve link, which runs under the write lock.
	pruneBuf, keptBuf []Result
}

// scratch is the memory one search needs, reused across searches so that a
// search allocates only its result.
type scratch struct {
	visited          visitedSet
	cands, results   minHeap
	fresh            []uint32
	layerBuf, selBuf []Result
}

// New returns an empty graph.
func New(p Parameters) *Graph {
	p = p.WithDefaults()
	return &Graph{
		p:          p,
		ml:         1 / math.Log(float64(p.M)),
		top:        -1,
		rng:        rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)),
		baseStride: 1 + 2*p.M,
	}
}

// Parameters returns the graph's parameters with defaults filled in.
func (g *Graph) Parameters() Parameters { return g.p }

// Len returns the number of nodes in the graph.
func (g *Graph) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.count
}

// Contains reports whether id is in the graph.
func (g *Graph) Contains(id uint32) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.has(id)
}

func (g *Graph) has(id uint32) bool { return int(id) < len(g.levels) && g.levels[id] >= 0 }

// neighbours returns id's links on layer l, aliasing the graph's storage.
func (g *Graph) neighbours(id uint32, l int) []uint32 {
	if l == 0 {
		at := int(id) * g.baseStride
		return g.base[at+1 : at+1+int(g.base[at])]
	}
	return g.upper[id][l-1]
}

// setNeighbours replaces id's links on layer l with ids.
func (g *Graph) setNeighbours(id uint32, l int, ids []uint32) {
	if l == 0 {
		at := int(id) * g.baseStride
		g.base[at] = uint32(copy(g.base[at+1:at+g.baseStride], ids))
		return
	}
	g.upper[id][l-1] = append(g.upper[id][l-1][:0], ids...)
}

// grow makes room for ids below n.
func (g *Graph) grow(n int) {
	if n <= len(g.levels) {
		return
	}
	n = max(n, 2*len(g.levels), 1024)
	g.vecs = slices.Grow(g.vecs, n-len(g.vecs))[:n]
	old := len(g.levels)
	g.levels = slices.Grow(g.levels, n-old)[:n]
	for i := old; i < n; i++ {
		g.levels[i] = -1
	}
	g.base = slices.Grow(g.base, n*g.baseStride-len(g.base))[:n*g.baseStride]
	g.upper = slices.Grow(g.upper, n-len(g.upper))[:n]
}

// Dot returns the dot product of two vectors of equal length. It is the
// index's innermost loop: on amd64 with AVX2 and FMA it runs as vector
// instructions (dot_amd64.s), elsewhere as the portable dotGo.
func Dot(a, b []float32) float32 {
	if len(b) != len(a) {
		panic("hnsw: Dot of vectors of different lengths")
	}
	return dot(a, b)
}

// dotGo is the portable dot product, unrolled so that four independent sums
// keep the CPU's floating-point units busy.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i]*b[i] + a[i+4]*b[i+4]
		s1 += a[i+1]*b[i+1] + a[i+5]*b[i+5]
		s2 += a[i+2]*b[i+2] + a[i+6]*b[i+6]
		s3 += a[i+3]*b[i+3] + a[i+7]*b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// distance is 1 - dot(a, b); both are unit vectors of one dimension, which
// Insert and Search ensure.
func distance(a, b []float32) float32 { return 1 - dot(a, b) }

// Insert adds vec under id. vec must be a unit vector of the graph's
// dimension and must not be modified afterwards: the graph keeps it. Inserting
// an id that is already present is a no-op.
func (g *Graph) Insert(id uint32, vec []float32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.grow(int(id) + 1)
	if g.has(id) {
		return
	}
	// The level is drawn as the paper says (mL = 1/ln M), capped so that it
	// fits the int8 of levels; a node above layer 127 would need a graph of
	// about M^127 nodes.
	level := min(int(-math.Log(1-g.rng.Float64())*g.ml), math.MaxInt8)
	g.vecs[id] = vec
	g.levels[id] = int8(level)
	g.base[int(id)*g.baseStride] = 0
	if level > 0 {
		g.upper[id] = make([][]uint32, level)
		for l := range g.upper[id] {
			g.upper[id][l] = make([]uint32, 0, g.p.M+1)
		}
	}
	g.count++
	if g.top < 0 {
		g.entry, g.top = id, level
		return
	}

	sc := g.getScratch()
	defer g.scratch.Put(sc)
	ep := g.entry
	epDist := distance(vec, g.vecs[ep])
	for l := g.top; l > level; l-- {
		ep, epDist = g.greedy(vec, ep, epDist, l)
	}
	var chosen []uint32
	for l := min(level, g.top); l >= 0; l-- {
		cands := g.searchLayer(sc, vec, ep, epDist, g.p.EfConstruction, l, nil)
		// The closest candidate is the entry point one layer down.
		best := cands[0]
		for _, c := range cands[1:] {
			if c.Distance < best.Distance {
				best = c
			}
		}
		ep, epDist = best.ID, best.Distance
		sc.layerBuf = append(sc.layerBuf[:0], cands...)
		neighbours := g.selectNeighbours(sc.layerBuf, g.p.M, &sc.selBuf)
		chosen = chosen[:0]
		for _, c := range neighbours {
			chosen = append(chosen, c.ID)
		}
		g.setNeighbours(id, l, chosen)
		for _, nb := range chosen {
			g.link(nb, id, l)
		}
	}
	if level > g.top {
		g.entry, g.top = id, level
	}
}

func (g *Graph) maxLinks(layer int) int {
	if layer == 0 {
		return 2 * g.p.M
	}
	return g.p.M
}

// link adds a back link from → to on layer l, pruning from's neighbours with
// the heuristic when it has too many.
func (g *Graph) link(from, to uint32, l int) {
	links := g.neighbours(from, l)
	maxLinks := g.maxLinks(l)
	if len(links) < maxLinks {
		if l == 0 {
			at := int(from) * g.baseStride
			g.base[at+1+len(links)] = to
			g.base[at]++
		} else {
			g.upper[from][l-1] = append(links, to)
		}
		return
	}
	fv := g.vecs[from]
	cands := g.pruneBuf[:0]
	for _, nb := range links {
		cands = append(cands, Result{ID: nb, Distance: distance(fv, g.vecs[nb])})
	}
	cands = append(cands, Result{ID: to, Distance: distance(fv, g.vecs[to])})
	kept := g.selectNeighbours(cands, maxLinks, &g.keptBuf)
	ids := links[:0:len(links)] // kept never exceeds the old list: rewrite it in place
	for _, c := range kept {
		ids = append(ids, c.ID)
	}
	g.setNeighbours(from, l, ids)
	g.pruneBuf = cands
}

// selectNeighbours is the heuristic of algorithm 4: walking candidates from
// the closest, keep one only if it is closer to the base than to every
// neighbour already kept. That keeps links pointing in different directions,
// which is what makes the graph navigable on clustered data. It sorts cands
// and returns its choice in *buf (or cands itself when all fit).
func (g *Graph) selectNeighbours(cands []Result, m int, buf *[]Result) []Result {
	sortByDistance(cands)
	if len(cands) <= m {
		return cands
	}
	kept := (*buf)[:0]
	for _, c := range cands {
		if len(kept) == m {
			break
		}
		good := true
		cv := g.vecs[c.ID]
		for _, k := range kept {
			if distance(cv, g.vecs[k.ID]) < c.Distance {
				good = false
				break
			}
		}
		if good {
			kept = append(kept, c)
		}
	}
	*buf = kept
	return kept
}

func sortByDistance(rs []Result) {
	slices.SortFunc(rs, func(a, b Result) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
}

func less(a, b Result) bool {
	if a.Distance != b.Distance {
		return a.Distance < b.Distance
	}
	return a.ID < b.ID
}

// greedy walks layer l from ep towards q and returns the closest node found.
func (g *Graph) greedy(q []float32, ep uint32, epDist float32, l int) (uint32, float32) {
	for changed := true; changed; {
		changed = false
		for _, nb := range g.neighbours(ep, l) {
			if d := distance(q, g.vecs[nb]); d < epDist {
				ep, epDist, changed = nb, d, true
			}
		}
	}
	return ep, epDist
}

// searchLayer is the paper's algorithm 2 on layer l, with hnswlib's filter:
// every node is a waypoint, but only nodes that accept allows (all when
// accept is nil) enter the result set. The result is unordered and aliases
// sc until sc is used again.
func (g *Graph) searchLayer(sc *scratch, q []float32, ep uint32, epDist float32, ef, l int, accept func(uint32) bool) []Result {
	vs := &sc.visited
	vs.reset(len(g.levels))
	vs.visit(ep)
	// cands is ordered closest first; results farthest first (by negated
	// distance), so each heap's root is the one to look at next.
	cands, results := &sc.cands, &sc.results
	cands.items, results.items = cands.items[:0], results.items[:0]
	cands.push(epDist, ep)
	if accept == nil || accept(ep) {
		results.push(-epDist, ep)
	}
	for len(cands.items) > 0 {
		cd, cid := cands.pop()
		if len(results.items) >= ef && cd > -results.items[0].Distance {
			break
		}
		// Collect the unvisited neighbours and ask for all their vectors
		// before comparing any: the memory system then fetches them in
		// parallel instead of one miss after another. (Measured on
		// structured vectors: about 10% more queries per second than
		// prefetching one neighbour ahead, 15% more than none.)
		fresh := sc.fresh[:0]
		for _, nb := range g.neighbours(cid, l) {
			if vs.visit(nb) {
				fresh = append(fresh, nb)
				prefetch(g.vecs[nb])
			}
		}
		sc.fresh = fresh
		for _, nb := range fresh {
			d := distance(q, g.vecs[nb])
			if len(results.items) < ef || d < -results.items[0].Distance {
				cands.push(d, nb)
				if accept == nil || accept(nb) {
					results.push(-d, nb)
					if len(results.items) > ef {
						results.pop()
					}
				}
			}
		}
	}
	out := sc.selBuf[:0]
	for _, r := range results.items {
		out = append(out, Result{ID: r.ID, Distance: -r.Distance})
	}
	sc.selBuf = out
	return out
}

// Search returns up to k nodes closest to q that accept allows (all when
// accept is nil), closest first, ties by id. ef is the candidate list size;
// values below k or the graph's EfSearch are raised to them. q must be a
// unit vector of the graph's dimension. accept is called with the graph's
// read lock held and must not call back into the graph.
func (g *Graph) Search(q []float32, k, ef int, accept func(uint32) bool) []Result {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.top < 0 || k <= 0 {
		return nil
	}
	if len(q) != len(g.vecs[g.entry]) {
		panic("hnsw: query vector of another dimension than the graph's")
	}
	ef = max(ef, k, g.p.EfSearch)
	ep := g.entry
	epDist := distance(q, g.vecs[ep])
	for l := g.top; l > 0; l-- {
		ep, epDist = g.greedy(q, ep, epDist, l)
	}
	sc := g.getScratch()
	defer g.scratch.Put(sc)
	found := g.searchLayer(sc, q, ep, epDist, ef, 0, accept)
	sortByDistance(found)
	return slices.Clone(found[:min(k, len(found))])
}

// Vector returns the vector stored for id, or nil when id is not in the
// graph. The graph keeps the vectors of nodes whose documents are gone (they
// stay as waypoints), so a saved graph takes them from here.
func (g *Graph) Vector(id uint32) []float32 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.has(id) {
		return nil
	}
	return g.vecs[id]
}

// Links returns a copy of id's neighbours on layer l (nil above its top
// layer), for tests and diagnostics.
func (g *Graph) Links(id uint32, l int) []uint32 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.has(id) || l > int(g.levels[id]) {
		return nil
	}
	return append([]uint32(nil), g.neighbours(id, l)...)
}

func (g *Graph) getScratch() *scratch {
	if sc, ok := g.scratch.Get().(*scratch); ok {
		return sc
	}
	return &scratch{}
}

type visitedSet struct {
	marks []uint32
	gen   uint32
}

func (v *visitedSet) reset(n int) {
	if len(v.marks) < n {
		v.marks = make([]uint32, n+n/4)
		v.gen = 0
	}
	v.gen++
	if v.gen == 0 {
		clear(v.marks)
		v.gen = 1
	}
}

// visit marks id and reports whether it was unvisited.
func (v *visitedSet) visit(id uint32) bool {
	if v.marks[id] == v.gen {
		return false
	}
	v.marks[id] = v.gen
	return true
}

// minHeap is a binary heap of results with the smallest Distance at the
// root; a max-heap is a minHeap of negated distances. It is written out
// rather than built on container/heap, which would box every item in an
// interface on the hottest path of the index, or on a comparison function,
// which the compiler cannot inline.
type minHeap struct{ items []Result }

func (h *minHeap) push(d float32, id uint32) {
	h.items = append(h.items, Result{ID: id, Distance: d})
	items := h.items
	i := len(items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if items[parent].Distance <= items[i].Distance {
			break
		}
		items[i], items[parent] = items[parent], items[i]
		i = parent
	}
}

func (h *minHeap) pop() (float32, uint32) {
	items := h.items
	top := items[0]
	last := len(items) - 1
	items[0] = items[last]
	items = items[:last]
	h.items = items
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && items[l].Distance < items[m].Distance {
			m = l
		}
		if r < last && items[r].Distance < items[m].Distance {
			m = r
		}
		if m == i {
			return top.Distance, top.ID
		}
		items[i], items[m] = items[m], items[i]
		i = m
	}
}
