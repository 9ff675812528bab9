package index

import (
	"context"
	"math"
	"slices"
)

// bm25Strategy says how searchBM25 finds the best documents. Every strategy
// returns the same ranking with bit-identical scores: each document's
// score is summed over the query terms in the same order.
type bm25Strategy int

const (
	// bm25Auto picks bm25MaxScore for short result lists and
	// bm25Exhaustive for long ones, where pruning cannot pay off.
	bm25Auto bm25Strategy = iota
	// bm25MaxScore: document at a time with MaxScore pruning.
	bm25MaxScore
	// bm25Exhaustive: term at a time into an accumulator, every posting.
	bm25Exhaustive
	// bm25BruteForce: every document scored from its own term counts,
	// without the inverted index (the benchmark's baseline, tests' oracle).
	bm25BruteForce
)

// maxScoreLimit is the longest result list MaxScore is used for: its
// threshold (the limit-th best score so far) prunes little beyond that.
const maxScoreLimit = 1000

// pruneSlack keeps pruning safe from rounding: a document is skipped only
// when its bound is below the threshold by more than floating-point sums
// taken in another order can differ.
const pruneSlack = 1e-9

type queryTerm struct {
	id        uint32
	qtf       float64
	idf, k1p1 float64
}

// bm25Weight is the BM25 formula with a collection's parameters and average
// document length. Its method is small enough to inline into the scoring
// loops that call it directly.
type bm25Weight struct {
	k1, b, avgdl float64
}

// of is what one query term adds to the score of a document of the given
// length that contains it freq times.
func (w bm25Weight) of(q queryTerm, freq, length uint32) float64 {
	tf := float64(freq)
	return q.qtf * q.idf * tf * q.k1p1 / (tf + w.k1*(1-w.b+w.b*float64(length)/w.avgdl))
}

// canceller checks a search's context every cancelCheckInterval steps, so
// that the scoring loops pay for ctx.Err only now and then. Each loop keeps
// its own on its stack: through a pointer, its count costs a load more per
// step.
type canceller struct {
	ctx   context.Context
	steps int
}

func (cc *canceller) tick() error {
	if cc.steps++; cc.steps%cancelCheckInterval == 0 {
		return cc.ctx.Err()
	}
	return nil
}

// searchBM25 returns the best limit slots for the query terms. Only
// documents that contain at least one query term are ranked. The caller
// holds a read lock.
func (c *collection) searchBM25(ctx context.Context, terms []string, limit int, filter func(uint32) bool, how bm25Strategy) ([]scored, error) {
	if c.live == 0 || len(terms) == 0 || limit <= 0 {
		return nil, nil
	}
	qts := c.queryTerms(make([]queryTerm, 0, 4), terms) // short queries' terms on the stack
	if len(qts) == 0 {
		return nil, nil
	}
	w := bm25Weight{k1: c.opts.K1, b: c.opts.B, avgdl: float64(c.totalLen) / float64(c.live)}
	top := c.newTopK(limit)
	if how == bm25Auto {
		how = bm25Exhaustive
		if limit <= maxScoreLimit {
			how = bm25MaxScore
		}
	}
	var err error
	switch how {
	case bm25BruteForce:
		err = c.bruteForce(ctx, qts, w, top, filter)
	case bm25MaxScore:
		cc := canceller{ctx: ctx}
		err = c.maxScore(qts, w.of, top, filter, cc.tick)
	default:
		err = c.exhaustive(ctx, qts, w, top, filter)
	}
	if err != nil {
		return nil, err
	}
	return top.sorted(), nil
}

// queryTerms appends to qts the distinct query terms the collection has, in
// the order they first occur (the order every strategy sums scores in), each
// with its inverse document frequency and its count in the query.
func (c *collection) queryTerms(qts []queryTerm, terms []string) []queryTerm {
	n := float64(c.live)
	counts := make(map[uint32]float64)
	for _, t := range terms {
		id, ok := c.termIDs[t]
		if !ok || c.df[id] == 0 {
			continue
		}
		if counts[id] == 0 {
			df := float64(c.df[id])
			qts = append(qts, queryTerm{id: id, idf: math.Log(1 + (n-df+0.5)/(df+0.5)), k1p1: c.opts.K1 + 1})
		}
		counts[id]++
	}
	for i := range qts {
		qts[i].qtf = counts[qts[i].id]
	}
	return qts
}

// bruteForce scores every live document from its own term counts, without
// the inverted index.
func (c *collection) bruteForce(ctx context.Context, qts []queryTerm, w bm25Weight, top *topK, filter func(uint32) bool) error {
	cc := canceller{ctx: ctx}
	for slot, e := range c.slots {
		if err := cc.tick(); err != nil {
			return err
		}
		if e == nil || (filter != nil && !filter(uint32(slot))) {
			continue
		}
		score, matched := 0.0, false
		for _, q := range qts {
			i, ok := slices.BinarySearchFunc(e.terms, q.id, func(tf termFreq, id uint32) int { return int(tf.term) - int(id) })
			if ok {
				score += w.of(q, e.terms[i].freq, e.length)
				matched = true
			}
		}
		if matched {
			top.offer(scored{slot: uint32(slot), score: score})
		}
	}
	return nil
}

// exhaustive scores term at a time into a dense accumulator, every posting.
// Documents are visited in the same order on every run, so floating-point
// sums, and the ranking, are reproducible.
func (c *collection) exhaustive(ctx context.Context, qts []queryTerm, w bm25Weight, top *topK, filter func(uint32) bool) error {
	cc := canceller{ctx: ctx}
	accp := c.accumulator()
	defer c.scorePool.Put(accp)
	acc := (*accp)[:len(c.slots)]
	var touched []uint32
	defer func() {
		for _, s := range touched {
			acc[s] = 0
		}
	}()
	for _, q := range qts {
		for _, p := range c.postings[q.id] {
			if err := cc.tick(); err != nil {
				return err
			}
			if c.slots[p.slot] == nil {
				continue
			}
			if acc[p.slot] == 0 {
				touched = append(touched, p.slot)
			}
			acc[p.slot] += w.of(q, p.freq, c.lengths[p.slot])
		}
	}
	for _, s := range touched {
		if filter == nil || filter(s) {
			top.offer(scored{slot: s, score: acc[s]})
		}
	}
	return nil
}

// accumulator returns a pooled score per slot, all zero, at least as long
// as the collection's slots; the caller zeroes what it touched and puts it
// back in c.scorePool.
func (c *collection) accumulator() *[]float64 {
	accp, _ := c.scorePool.Get().(*[]float64)
	if accp == nil {
		accp = new([]float64)
	}
	if len(*accp) < len(c.slots) {
		*accp = make([]float64, len(c.slots)+len(c.slots)/4)
	}
	return accp
}

// maxScore ranks document at a time with MaxScore pruning (Turtle and
// Flood, "Query evaluation: strategies and optimizations", 1995). Each term
// has an upper bound on what it can add to a score, from the largest
// frequency and the shortest document in its postings. Terms sorted by
// bound, the cheapest ones whose bounds together cannot lift a document
// into the top k on their own are "non-essential": documents that only they
// contain are never visited, and they are looked up (by binary search in
// their postings, which are sorted by slot) only for documents that could
// still make the cut. Queries on a Zipf vocabulary mix a few rare words with
// very common ones, whose long lists are exactly what this skips.
//
// Scores are summed in query-term order, as the other strategies do, so the
// ranking is bit-identical; the bounds only decide what to skip, with
// pruneSlack against rounding.
func (c *collection) maxScore(qts []queryTerm, weight func(queryTerm, uint32, uint32) float64, top *topK, filter func(uint32) bool, tick func() error) error {
	curs := make([]termCursor, len(qts))
	below := make([]float64, len(qts)+1)
	c.initCursors(curs, below, qts, weight)
	threshold := math.Inf(-1) // the k-th best score so far, once there are k
	essential := 0            // curs[essential:] are the essential terms
	contrib := make([]float64, len(qts))
	present := make([]bool, len(qts))
	for {
		doc := nextCandidate(curs[essential:])
		if doc == noSlot {
			return nil
		}
		if err := tick(); err != nil {
			return err
		}
		clear(present)
		partial := 0.0
		length := c.lengths[doc]
		for i := essential; i < len(curs); i++ {
			cu := &curs[i]
			if cu.pos < len(cu.list) && cu.list[cu.pos].slot == doc {
				w := weight(qts[cu.qi], cu.list[cu.pos].freq, length)
				contrib[cu.qi], present[cu.qi] = w, true
				partial += w
				cu.pos++
			}
		}
		if c.slots[doc] == nil || (filter != nil && !filter(doc)) {
			continue
		}
		// Non-essential terms, the most promising first, while the document
		// can still reach the threshold.
		skip := false
		for i := essential - 1; i >= 0; i-- {
			if (partial+below[i+1])*(1+pruneSlack) < threshold {
				skip = true
				break
			}
			cu := &curs[i]
			cu.pos += seek(cu.list[cu.pos:], doc)
			if cu.pos < len(cu.list) && cu.list[cu.pos].slot == doc {
				w := weight(qts[cu.qi], cu.list[cu.pos].freq, length)
				contrib[cu.qi], present[cu.qi] = w, true
				partial += w
			}
		}
		if skip {
			continue
		}
		top.offer(scored{slot: doc, score: sumPresent(contrib, present)})
		if len(top.items) < top.k {
			continue
		}
		threshold = top.items[0].score
		for essential < len(curs) && below[essential+1]*(1+pruneSlack) < threshold {
			essential++
		}
	}
}

// termCursor walks one query term's postings for maxScore.
type termCursor struct {
	qi    int // index into qts: the summation order
	list  []posting
	pos   int
	bound float64 // the most the term can add to any score
}

// noSlot is past every slot: no candidate is left.
const noSlot = math.MaxUint32

// initCursors sets curs to a cursor per query term, sorted by ascending
// bound (ties in query order), and below[i] to what the terms of curs[:i]
// can add together. The caller makes both slices, so that maxScore's stay
// on its stack where they are small enough.
func (c *collection) initCursors(curs []termCursor, below []float64, qts []queryTerm, weight func(queryTerm, uint32, uint32) float64) {
	for i, q := range qts {
		curs[i] = termCursor{qi: i, list: c.postings[q.id], bound: weight(q, c.maxFreq[q.id], c.minLength[q.id])}
	}
	slices.SortFunc(curs, func(a, b termCursor) int {
		if a.bound != b.bound {
			if a.bound < b.bound {
				return -1
			}
			return 1
		}
		return a.qi - b.qi
	})
	for i, cu := range curs {
		below[i+1] = below[i] + cu.bound
	}
}

// nextCandidate returns the smallest slot any of the cursors is at, or
// noSlot when all are at their ends.
func nextCandidate(curs []termCursor) uint32 {
	doc := uint32(noSlot)
	for i := range curs {
		if cu := &curs[i]; cu.pos < len(cu.list) && cu.list[cu.pos].slot < doc {
			doc = cu.list[cu.pos].slot
		}
	}
	return doc
}

// sumPresent adds up the contributions of the terms a document has, in
// query-term order, so that its score is bit-identical to the other
// strategies'.
func sumPresent(contrib []float64, present []bool) float64 {
	score := 0.0
	for qi, ok := range present {
		if ok {
			score += contrib[qi]
		}
	}
	return score
}

// seek returns the index of the first posting in list at or after slot:
// galloping from the start, since the target is usually near, then a binary
// search within the last step.
func seek(list []posting, slot uint32) int {
	if len(list) == 0 || list[0].slot >= slot {
		return 0
	}
	lo, step := 0, 1 // list[lo].slot < slot
	for lo+step < len(list) && list[lo+step].slot < slot {
		lo += step
		step *= 2
	}
	hi := min(lo+step, len(list)) // list[hi].slot >= slot, or hi is the end
	i, _ := slices.BinarySearchFunc(list[lo+1:hi], slot, func(p posting, s uint32) int { return cmpUint32(p.slot, s) })
	return lo + 1 + i
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
