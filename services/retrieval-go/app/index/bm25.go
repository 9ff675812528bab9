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

// searchBM25 returns the best limit slots for the query terms. Only
// documents that contain at least one query term are ranked. The caller
// holds a read lock.
func (c *collection) searchBM25(ctx context.Context, terms []string, limit int, filter func(uint32) bool, how bm25Strategy) ([]scored, error) {
	if c.live == 0 || len(terms) == 0 || limit <= 0 {
		return nil, nil
	}
	n := float64(c.live)
	avgdl := float64(c.totalLen) / n
	k1, b := c.opts.K1, c.opts.B
	var qts []queryTerm
	counts := make(map[uint32]float64)
	for _, t := range terms {
		id, ok := c.termIDs[t]
		if !ok || c.df[id] == 0 {
			continue
		}
		if counts[id] == 0 {
			df := float64(c.df[id])
			qts = append(qts, queryTerm{id: id, idf: math.Log(1 + (n-df+0.5)/(df+0.5)), k1p1: k1 + 1})
		}
		counts[id]++
	}
	if len(qts) == 0 {
		return nil, nil
	}
	for i := range qts {
		qts[i].qtf = counts[qts[i].id]
	}
	weight := func(q queryTerm, freq, length uint32) float64 {
		tf := float64(freq)
		return q.qtf * q.idf * tf * q.k1p1 / (tf + k1*(1-b+b*float64(length)/avgdl))
	}
	top := c.newTopK(limit)
	steps := 0
	tick := func() error {
		if steps++; steps%cancelCheckInterval == 0 {
			return ctx.Err()
		}
		return nil
	}
	if how == bm25Auto {
		how = bm25Exhaustive
		if limit <= maxScoreLimit {
			how = bm25MaxScore
		}
	}

	switch how {
	case bm25BruteForce:
		for slot, e := range c.slots {
			if err := tick(); err != nil {
				return nil, err
			}
			if e == nil || (filter != nil && !filter(uint32(slot))) {
				continue
			}
			score, matched := 0.0, false
			for _, q := range qts {
				i, ok := slices.BinarySearchFunc(e.terms, q.id, func(tf termFreq, id uint32) int { return int(tf.term) - int(id) })
				if ok {
					score += weight(q, e.terms[i].freq, e.length)
					matched = true
				}
			}
			if matched {
				top.offer(scored{slot: uint32(slot), score: score})
			}
		}
		return top.sorted(), nil
	case bm25MaxScore:
		if err := c.maxScore(qts, weight, top, filter, tick); err != nil {
			return nil, err
		}
		return top.sorted(), nil
	}

	// Term at a time into a dense accumulator: documents are visited in the
	// same order on every run, so floating-point sums, and the ranking, are
	// reproducible.
	accp, _ := c.scorePool.Get().(*[]float64)
	if accp == nil {
		accp = new([]float64)
	}
	defer c.scorePool.Put(accp)
	if len(*accp) < len(c.slots) {
		*accp = make([]float64, len(c.slots)+len(c.slots)/4)
	}
	acc := (*accp)[:len(c.slots)]
	var touched []uint32
	defer func() {
		for _, s := range touched {
			acc[s] = 0
		}
	}()
	for _, q := range qts {
		for _, p := range c.postings[q.id] {
			if err := tick(); err != nil {
				return nil, err
			}
			if c.slots[p.slot] == nil {
				continue
			}
			if acc[p.slot] == 0 {
				touched = append(touched, p.slot)
			}
			acc[p.slot] += weight(q, p.freq, c.lengths[p.slot])
		}
	}
	for _, s := range touched {
		if filter == nil || filter(s) {
			top.offer(scored{slot: s, score: acc[s]})
		}
	}
	return top.sorted(), nil
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
	type cursor struct {
		qi    int // index into qts: the summation order
		list  []posting
		pos   int
		bound float64
	}
	curs := make([]cursor, len(qts))
	for i, q := range qts {
		curs[i] = cursor{qi: i, list: c.postings[q.id], bound: weight(q, c.maxFreq[q.id], c.minLength[q.id])}
	}
	slices.SortFunc(curs, func(a, b cursor) int {
		if a.bound != b.bound {
			if a.bound < b.bound {
				return -1
			}
			return 1
		}
		return a.qi - b.qi
	})
	// below[i] bounds what terms 0..i-1 (in bound order) add together.
	below := make([]float64, len(curs)+1)
	for i, cu := range curs {
		below[i+1] = below[i] + cu.bound
	}
	threshold := math.Inf(-1) // the k-th best score so far, once there are k
	essential := 0            // curs[essential:] are the essential terms
	contrib := make([]float64, len(qts))
	present := make([]bool, len(qts))
	const noSlot = math.MaxUint32
	for {
		// The next candidate: the smallest slot any essential list is at.
		doc := uint32(noSlot)
		for i := essential; i < len(curs); i++ {
			if cu := &curs[i]; cu.pos < len(cu.list) && cu.list[cu.pos].slot < doc {
				doc = cu.list[cu.pos].slot
			}
		}
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
		score := 0.0
		for qi, ok := range present {
			if ok {
				score += contrib[qi]
			}
		}
		top.offer(scored{slot: doc, score: score})
		if len(top.items) < top.k {
			continue
		}
		threshold = top.items[0].score
		for essential < len(curs) && below[essential+1]*(1+pruneSlack) < threshold {
			essential++
		}
	}
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
