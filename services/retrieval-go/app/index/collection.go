package index

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/durable-agents/reference/services/retrieval-go/app/index/hnsw"
)

// A collection numbers its documents by slot, in the order they arrive. A
// replaced or deleted document leaves a dead slot behind: its postings stay
// in the lists (skipped while scoring, dropped when too many pile up) and its
// graph node stays as a waypoint. Slots are renumbered densely when the index
// is rebuilt from a snapshot at start-up.
type collection struct {
	name string
	opts Options
	// publish makes a collection created by a put visible; nil once done.
	publish func()

	mu    sync.RWMutex
	dim   int
	ids   map[string]uint32
	slots []*slotEntry // nil for dead slots
	live  int

	// BM25 state. df counts live documents only, so scores do not drift as
	// documents are replaced.
	termIDs  map[string]uint32
	postings [][]posting
	df       []uint32
	// maxFreq and minLength are, per term, the largest frequency and the
	// shortest document length among its postings (dead ones included):
	// together they bound the term's BM25 weight, which MaxScore prunes by.
	maxFreq, minLength []uint32
	lengths            []uint32 // by slot
	totalLen           int64
	// deadPostings counts postings of dead slots still in the lists.
	deadPostings, allPostings int

	// postingsReady: the postings hold every document; false only for a
	// collection loaded while postings are held (see HoldPostings) until
	// they are attached or built.
	postingsReady bool

	vectors   int // live documents with a vector
	graph     atomic.Pointer[hnsw.Graph]
	graphNext atomic.Uint32 // slots below this are in the graph
	graphDead int           // graph nodes whose slot is dead
	scorePool sync.Pool     // *[]float64, BM25 accumulators
	// writeMu is the index's writer lock, held by a background graph
	// rebuild while it swaps graphs.
	writeMu     *sync.Mutex
	rebuilding  atomic.Bool
	rebuildings atomic.Int32
}

type slotEntry struct {
	doc    *Document
	length uint32
	// terms are the document's distinct terms with their frequency, sorted
	// by term id once applied.
	terms []termFreq
	// local are the analysed terms with their frequency before they get the
	// collection's ids: ids into vocab, the analysing batch's vocabulary.
	local []termFreq
	vocab *batchVocab
}

type termFreq struct{ term, freq uint32 }

type posting struct{ slot, freq uint32 }

func newCollection(name string, opts Options, writeMu *sync.Mutex, postingsReady bool) *collection {
	c := &collection{
		name:          name,
		postingsReady: postingsReady,
		opts:          opts,
		writeMu:       writeMu,
		ids:           make(map[string]uint32),
		termIDs:       make(map[string]uint32),
	}
	c.graph.Store(hnsw.New(opts.HNSW))
	return c
}

// parallelAnalysisMin is the batch size from which analysis is spread over
// the CPUs: it is most of the work of loading a snapshot (256 documents a
// record) and of indexing text, and each document is independent.
const parallelAnalysisMin = 64

// analyze turns each entry's title and text into term counts, on several
// goroutines for large batches. It touches no collection state, so it runs
// without locks.
func analyze(a *Analyzer, entries []*slotEntry) {
	workers := min(runtime.GOMAXPROCS(0), len(entries)/(parallelAnalysisMin/2))
	if len(entries) < parallelAnalysisMin || workers < 2 {
		analyzeSerially(a, entries)
		return
	}
	var wg sync.WaitGroup
	per := (len(entries) + workers - 1) / workers
	for part := range slices.Chunk(entries, per) {
		wg.Go(func() { analyzeSerially(a, part) })
	}
	wg.Wait()
}

func analyzeSerially(a *Analyzer, entries []*slotEntry) {
	v := newBatchVocab()
	var ids []int32
	var counts []uint32 // by local term id; zero between documents
	for _, e := range entries {
		ids = a.appendTermIDs(ids[:0], e.doc.Title, v)
		ids = a.appendTermIDs(ids, e.doc.Text, v)
		if grow := len(v.terms) - len(counts); grow > 0 {
			counts = append(counts, make([]uint32, grow)...)
		}
		e.local = e.local[:0]
		for _, id := range ids {
			if counts[id] == 0 {
				e.local = append(e.local, termFreq{term: uint32(id)})
			}
			counts[id]++
		}
		for i := range e.local {
			t := &e.local[i]
			t.freq, counts[t.term] = counts[t.term], 0
		}
		e.vocab = v
		e.length = uint32(len(ids))
	}
}

// termID returns the collection's id for the term with the given id in
// vocab, creating it if new. Resolved ids are remembered in vocab, so a
// batch looks each distinct term up once. The caller holds c.mu.
func (c *collection) termID(v *batchVocab, local uint32) uint32 {
	if v.owner != c {
		v.owner, v.global = c, v.global[:0]
	}
	for len(v.global) < len(v.terms) {
		v.global = append(v.global, -1)
	}
	if g := v.global[local]; g >= 0 {
		return uint32(g)
	}
	w := v.terms[local]
	id, ok := c.termIDs[w]
	if !ok {
		id = uint32(len(c.postings))
		c.termIDs[w] = id
		c.postings = append(c.postings, nil)
		c.df = append(c.df, 0)
		c.maxFreq = append(c.maxFreq, 0)
		c.minLength = append(c.minLength, math.MaxUint32)
	}
	v.global[local] = int32(id)
	return id
}

// apply makes the analysed entries live, replacing documents with the same
// ids.
func (c *collection) apply(entries []*slotEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.publish != nil {
		c.publish()
		c.publish = nil
	}
	for _, e := range entries {
		if old, ok := c.ids[e.doc.ID]; ok {
			c.remove(old)
		}
		slot := uint32(len(c.slots))
		c.slots = append(c.slots, e)
		c.lengths = append(c.lengths, 0)
		c.indexTerms(e, slot)
		c.ids[e.doc.ID] = slot
		c.live++
		if e.doc.Vector != nil {
			if c.dim == 0 {
				c.dim = len(e.doc.Vector)
			}
			c.vectors++
		}
	}
	if c.deadPostings > 1024 && c.deadPostings > c.allPostings/2 {
		c.compactPostings()
	}
}

// indexTerms adds the analysed terms of e, live in slot, to the postings
// (nothing for an entry registered unanalysed while postings are held). The
// caller holds the write lock.
func (c *collection) indexTerms(e *slotEntry, slot uint32) {
	e.terms = make([]termFreq, 0, len(e.local))
	for _, lt := range e.local {
		id, f := c.termID(e.vocab, lt.term), lt.freq
		c.postings[id] = append(c.postings[id], posting{slot: slot, freq: f})
		c.df[id]++
		c.maxFreq[id] = max(c.maxFreq[id], f)
		c.minLength[id] = min(c.minLength[id], e.length)
		e.terms = append(e.terms, termFreq{term: id, freq: f})
	}
	slices.SortFunc(e.terms, func(a, b termFreq) int { return int(a.term) - int(b.term) })
	e.local, e.vocab = nil, nil
	c.allPostings += len(e.terms)
	c.lengths[slot] = e.length
	c.totalLen += int64(e.length)
}

// remove kills a slot. The caller holds the write lock and fixes c.ids.
func (c *collection) remove(slot uint32) {
	e := c.slots[slot]
	c.slots[slot] = nil
	c.live--
	c.totalLen -= int64(e.length)
	for _, tf := range e.terms {
		c.df[tf.term]--
	}
	c.deadPostings += len(e.terms)
	if e.doc.Vector != nil {
		c.vectors--
		if slot < c.graphNext.Load() {
			c.graphDead++
		}
	}
}

// compactPostings drops the postings of dead slots.
func (c *collection) compactPostings() {
	for t, list := range c.postings {
		kept := list[:0]
		for _, p := range list {
			if c.slots[p.slot] != nil {
				kept = append(kept, p)
			}
		}
		clear(list[len(kept):])
		c.postings[t] = slices.Clip(kept)
	}
	c.allPostings -= c.deadPostings
	c.deadPostings = 0
}

// catchUpGraph inserts the vectors of slots not yet in the HNSW graph. The
// caller is the (single) writer; searches meanwhile compare the query with
// the missing vectors directly, so they see every document.
func (c *collection) catchUpGraph() {
	c.catchUpGraphUpTo(math.MaxInt)
}

// catchUpGraphUpTo is catchUpGraph for at most limit slots; it reports
// whether the graph has caught up.
func (c *collection) catchUpGraphUpTo(limit int) bool {
	c.mu.RLock()
	end := uint32(len(c.slots))
	c.mu.RUnlock()
	g := c.graph.Load()
	if start := c.graphNext.Load(); uint64(end-start) > uint64(limit) {
		end = start + uint32(limit)
	}
	for s := c.graphNext.Load(); s < end; s++ {
		c.mu.RLock()
		e := c.slots[s]
		c.mu.RUnlock()
		// A slot that died before its turn never enters the graph.
		if e != nil && e.doc.Vector != nil {
			g.Insert(s, e.doc.Vector)
		}
		c.graphNext.Store(s + 1)
	}
	c.maybeRebuildGraph()
	c.mu.RLock()
	defer c.mu.RUnlock()
	return int(c.graphNext.Load()) == len(c.slots)
}

// maybeRebuildGraph starts rebuilding the graph from the live vectors once
// dead nodes make up half of it: they cost time on every search. The build
// runs in the background, so neither writes nor searches wait for it;
// searches use the old graph until the new one has caught up with the
// writes made meanwhile and replaces it. The caller is the single writer.
func (c *collection) maybeRebuildGraph() {
	g := c.graph.Load()
	c.mu.RLock()
	dead, nodes := c.graphDead, g.Len()
	c.mu.RUnlock()
	if nodes < 1000 || dead*2 < nodes || !c.rebuilding.CompareAndSwap(false, true) {
		return
	}
	c.mu.RLock()
	end := c.graphNext.Load()
	live := make([]uint32, 0, c.vectors)
	vecs := make([][]float32, 0, c.vectors)
	for s := range end {
		if e := c.slots[s]; e != nil && e.doc.Vector != nil {
			live = append(live, s)
			vecs = append(vecs, e.doc.Vector)
		}
	}
	c.mu.RUnlock()
	go func() {
		defer c.rebuilding.Store(false)
		// Vectors never change once indexed, so the build needs no lock.
		fresh := hnsw.New(c.opts.HNSW)
		for i, s := range live {
			fresh.Insert(s, vecs[i])
		}
		// Catch up with the slots the writer added meanwhile, holding the
		// write lock of the index so that none is added while swapping.
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		c.mu.RLock()
		next := c.graphNext.Load()
		for s := end; s < next; s++ {
			if e := c.slots[s]; e != nil && e.doc.Vector != nil {
				fresh.Insert(s, e.doc.Vector)
			}
		}
		c.mu.RUnlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.graph.Store(fresh)
		dead := 0
		for _, s := range live {
			if c.slots[s] == nil {
				dead++
			}
		}
		c.graphDead = dead
		c.rebuildings.Add(1)
	}()
}

// filter returns a predicate for slots whose metadata matches every filter,
// or nil when there are no filters. The caller holds a read lock while using
// it.
func (c *collection) filter(filters map[string]string) func(uint32) bool {
	if len(filters) == 0 {
		return nil
	}
	return func(slot uint32) bool {
		md := c.slots[slot].doc.Metadata
		for k, v := range filters {
			if got, ok := md[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
}

// searchVector returns the best limit slots by cosine similarity. The caller
// holds a read lock.
func (c *collection) searchVector(ctx context.Context, q []float32, limit int, filter func(uint32) bool, brute bool) ([]scored, error) {
	if c.vectors == 0 || limit <= 0 {
		return nil, nil
	}
	if brute || (c.opts.ExactVectorLimit >= 0 && c.vectors <= c.opts.ExactVectorLimit) {
		return c.exactVector(ctx, q, limit, filter, 0)
	}
	// Read the graph's progress before searching the graph: a slot inserted
	// in between is then found twice rather than not at all.
	next := c.graphNext.Load()
	g := c.graph.Load()
	accept := func(s uint32) bool {
		return int(s) < len(c.slots) && c.slots[s] != nil && (filter == nil || filter(s))
	}
	ef := 0
	if filter != nil {
		// A filter hides part of the graph's neighbourhoods; a longer
		// candidate list makes up for it.
		ef = 4 * max(limit, g.Parameters().EfSearch)
	}
	found := g.Search(q, limit, ef, accept)
	top := c.newTopK(limit)
	seen := make(map[uint32]struct{}, len(found))
	for _, r := range found {
		seen[r.ID] = struct{}{}
		top.offer(scored{slot: r.ID, score: float64(1 - r.Distance)})
	}
	for s := next; int(s) < len(c.slots); s++ {
		e := c.slots[s]
		if _, dup := seen[s]; dup || e == nil || e.doc.Vector == nil || (filter != nil && !filter(s)) {
			continue
		}
		top.offer(scored{slot: s, score: float64(hnsw.Dot(q, e.doc.Vector))})
	}
	res := top.sorted()
	if filter != nil && len(res) < limit {
		// The filter is selective enough that the graph walk may have
		// missed matches; scanning them all is affordable precisely then.
		return c.exactVector(ctx, q, limit, filter, 0)
	}
	return res, nil
}

func (c *collection) exactVector(ctx context.Context, q []float32, limit int, filter func(uint32) bool, from int) ([]scored, error) {
	top := c.newTopK(limit)
	for s := from; s < len(c.slots); s++ {
		if (s-from)%cancelCheckInterval == cancelCheckInterval-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		e := c.slots[s]
		if e == nil || e.doc.Vector == nil || (filter != nil && !filter(uint32(s))) {
			continue
		}
		top.offer(scored{slot: uint32(s), score: float64(hnsw.Dot(q, e.doc.Vector))})
	}
	return top.sorted(), nil
}

func (c *collection) stats() CollectionStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	kind := VectorIndexNone
	switch {
	case c.vectors == 0:
	case c.opts.ExactVectorLimit >= 0 && c.vectors <= c.opts.ExactVectorLimit:
		kind = VectorIndexExact
	default:
		kind = VectorIndexHNSW
	}
	return CollectionStats{
		Name:        c.name,
		Documents:   c.live,
		Dimension:   c.dim,
		Vectors:     c.vectors,
		VectorIndex: kind,
		GraphNodes:  c.graph.Load().Len(),
	}
}
