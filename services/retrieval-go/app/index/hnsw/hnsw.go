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

type node struct {
	vec []float32
	// links[l] are the neighbours on layer l; len(links)-1 is the node's
	// top layer. A nil links means the id is not in the graph.
	links [][]uint32
}

// Graph is safe for concurrent use: searches share a read lock, inserts take
// the write lock.
type Graph struct {
	p     Parameters
	ml    float64
	mu    sync.RWMutex
	nodes []node
	count int
	entry uint32
	top   int // top layer of entry; -1 when empty
	rng   *rand.Rand

	visited sync.Pool // *visitedSet
}

// New returns an empty graph.
func New(p Parameters) *Graph {
	p = p.WithDefaults()
	return &Graph{
		p:   p,
		ml:  1 / math.Log(float64(p.M)),
		top: -1,
		rng: rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)),
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
	return int(id) < len(g.nodes) && g.nodes[id].links != nil
}

// Dot returns the dot product of two vectors of equal length. It is the
// index's innermost loop: on amd64 with AVX2 and FMA it runs as vector
// instructions (dot_amd64.s), elsewhere as the portable dotGo.
func Dot(a, b []float32) float32 {
	if len(b) < len(a) {
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

func distance(a, b []float32) float32 { return 1 - Dot(a, b) }

// Insert adds vec under id. vec must be a unit vector of the graph's
// dimension and must not be modified afterwards: the graph keeps it. Inserting
// an id that is already present is a no-op.
func (g *Graph) Insert(id uint32, vec []float32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if int(id) >= len(g.nodes) {
		grown := make([]node, max(int(id)+1, 2*len(g.nodes)))
		copy(grown, g.nodes)
		g.nodes = grown
	}
	if g.nodes[id].links != nil {
		return
	}
	level := int(-math.Log(1-g.rng.Float64()) * g.ml)
	n := &g.nodes[id]
	n.vec = vec
	n.links = make([][]uint32, level+1)
	g.count++
	if g.top < 0 {
		g.entry, g.top = id, level
		return
	}

	vs := g.getVisited()
	defer g.visited.Put(vs)
	ep := g.entry
	epDist := distance(vec, g.nodes[ep].vec)
	for l := g.top; l > level; l-- {
		ep, epDist = g.greedy(vec, ep, epDist, l)
	}
	for l := min(level, g.top); l >= 0; l-- {
		cands := g.searchLayer(vs, vec, ep, epDist, g.p.EfConstruction, l, nil)
		maxLinks := g.maxLinks(l)
		neighbours := g.selectNeighbours(cands, g.p.M)
		n.links[l] = make([]uint32, 0, maxLinks+1)
		for _, c := range neighbours {
			n.links[l] = append(n.links[l], c.ID)
		}
		for _, c := range neighbours {
			g.link(c.ID, id, l, maxLinks)
		}
		// The closest candidate is the entry point one layer down.
		best := cands[0]
		for _, c := range cands[1:] {
			if c.Distance < best.Distance {
				best = c
			}
		}
		ep, epDist = best.ID, best.Distance
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
func (g *Graph) link(from, to uint32, l, maxLinks int) {
	fn := &g.nodes[from]
	fn.links[l] = append(fn.links[l], to)
	if len(fn.links[l]) <= maxLinks {
		return
	}
	cands := make([]Result, len(fn.links[l]))
	for i, nb := range fn.links[l] {
		cands[i] = Result{ID: nb, Distance: distance(fn.vec, g.nodes[nb].vec)}
	}
	kept := g.selectNeighbours(cands, maxLinks)
	fn.links[l] = fn.links[l][:0]
	for _, c := range kept {
		fn.links[l] = append(fn.links[l], c.ID)
	}
}

// selectNeighbours is the heuristic of algorithm 4: walking candidates from
// the closest, keep one only if it is closer to the base than to every
// neighbour already kept. That keeps links pointing in different directions,
// which is what makes the graph navigable on clustered data.
func (g *Graph) selectNeighbours(cands []Result, m int) []Result {
	sortByDistance(cands)
	if len(cands) <= m {
		return cands
	}
	kept := make([]Result, 0, m)
	for _, c := range cands {
		if len(kept) == m {
			break
		}
		good := true
		cv := g.nodes[c.ID].vec
		for _, k := range kept {
			if distance(cv, g.nodes[k.ID].vec) < c.Distance {
				good = false
				break
			}
		}
		if good {
			kept = append(kept, c)
		}
	}
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

func greater(a, b Result) bool { return less(b, a) }

// greedy walks layer l from ep towards q and returns the closest node found.
func (g *Graph) greedy(q []float32, ep uint32, epDist float32, l int) (uint32, float32) {
	for changed := true; changed; {
		changed = false
		for _, nb := range g.nodes[ep].links[l] {
			if d := distance(q, g.nodes[nb].vec); d < epDist {
				ep, epDist, changed = nb, d, true
			}
		}
	}
	return ep, epDist
}

// searchLayer is the paper's algorithm 2 on layer l, with hnswlib's filter:
// every node is a waypoint, but only nodes that accept allows (all when
// accept is nil) enter the result set. The result is unordered.
func (g *Graph) searchLayer(vs *visitedSet, q []float32, ep uint32, epDist float32, ef, l int, accept func(uint32) bool) []Result {
	vs.reset(len(g.nodes))
	vs.visit(ep)
	cands := heap{less: less}
	results := heap{less: greater}
	cands.push(Result{ID: ep, Distance: epDist})
	if accept == nil || accept(ep) {
		results.push(Result{ID: ep, Distance: epDist})
	}
	for len(cands.items) > 0 {
		c := cands.pop()
		if len(results.items) >= ef && c.Distance > results.items[0].Distance {
			break
		}
		for _, nb := range g.nodes[c.ID].links[l] {
			if !vs.visit(nb) {
				continue
			}
			d := distance(q, g.nodes[nb].vec)
			if len(results.items) < ef || d < results.items[0].Distance {
				cands.push(Result{ID: nb, Distance: d})
				if accept == nil || accept(nb) {
					results.push(Result{ID: nb, Distance: d})
					if len(results.items) > ef {
						results.pop()
					}
				}
			}
		}
	}
	return results.items
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
	ef = max(ef, k, g.p.EfSearch)
	ep := g.entry
	epDist := distance(q, g.nodes[ep].vec)
	for l := g.top; l > 0; l-- {
		ep, epDist = g.greedy(q, ep, epDist, l)
	}
	vs := g.getVisited()
	defer g.visited.Put(vs)
	res := g.searchLayer(vs, q, ep, epDist, ef, 0, accept)
	sortByDistance(res)
	if len(res) > k {
		res = res[:k]
	}
	return res
}

// Links returns a copy of id's neighbours on layer l, for tests and
// diagnostics.
func (g *Graph) Links(id uint32, l int) []uint32 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if int(id) >= len(g.nodes) || l >= len(g.nodes[id].links) {
		return nil
	}
	return append([]uint32(nil), g.nodes[id].links[l]...)
}

type visitedSet struct {
	marks []uint32
	gen   uint32
}

func (g *Graph) getVisited() *visitedSet {
	if v, ok := g.visited.Get().(*visitedSet); ok {
		return v
	}
	return &visitedSet{}
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

// heap is a binary heap ordered by less; container/heap would box every
// Result in an interface, which allocates on the hottest path of the index.
type heap struct {
	items []Result
	less  func(a, b Result) bool
}

func (h *heap) push(r Result) {
	h.items = append(h.items, r)
	i := len(h.items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(h.items[i], h.items[parent]) {
			break
		}
		h.items[i], h.items[parent] = h.items[parent], h.items[i]
		i = parent
	}
}

func (h *heap) pop() Result {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.less(h.items[l], h.items[m]) {
			m = l
		}
		if r < last && h.less(h.items[r], h.items[m]) {
			m = r
		}
		if m == i {
			return top
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
}
