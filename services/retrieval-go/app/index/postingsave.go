package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/durable-agents/reference/services/retrieval-go/app/wire"
)

// The inverted index is saved with each snapshot so that a start need not
// analyse every document again (most of the CPU of opening a large
// collection). Like the graph it is a cache of what the documents determine,
// valid only for the analyzer settings it was built with.

// postingsEncodingVersion is the first byte of encoded postings.
const postingsEncodingVersion = 1

// savePostings encodes the collection's postings numbered as the snapshot's
// documents will be (live slots in order), dead postings left out. The caller
// holds the index's write lock and c.mu for reading.
//
// Layout (u = uvarint): version byte, analyzer stop words and stemmer
// (u length + bytes each), u documents, u length per document, u terms, then
// per term its text (u length + bytes), u postings and per posting u slot
// delta (from the previous posting's slot + 1) and u frequency.
func (c *collection) savePostings(analyzer AnalyzerConfig) []byte {
	newSlot := make([]uint32, len(c.slots))
	n := uint32(0)
	for s, e := range c.slots {
		if e != nil {
			newSlot[s] = n
			n++
		}
	}
	b := []byte{postingsEncodingVersion}
	b = wire.AppendString(b, analyzer.StopWords)
	b = wire.AppendString(b, analyzer.Stemmer)
	b = binary.AppendUvarint(b, uint64(n))
	for s, e := range c.slots {
		if e != nil {
			b = binary.AppendUvarint(b, uint64(c.lengths[s]))
		}
	}
	live := 0
	for t := range c.postings {
		if c.df[t] > 0 {
			live++
		}
	}
	b = binary.AppendUvarint(b, uint64(live))
	terms := make([]string, len(c.postings))
	for w, t := range c.termIDs {
		terms[t] = w
	}
	for t, list := range c.postings {
		if c.df[t] == 0 {
			continue
		}
		b = wire.AppendString(b, terms[t])
		b = binary.AppendUvarint(b, uint64(c.df[t]))
		next := uint32(0)
		for _, p := range list {
			if c.slots[p.slot] == nil {
				continue
			}
			s := newSlot[p.slot]
			b = binary.AppendUvarint(b, uint64(s-next))
			b = binary.AppendUvarint(b, uint64(p.freq))
			next = s + 1
		}
	}
	return b
}

// HoldPostings makes writes register documents without analysing them until
// AttachPostings or ReleasePostings, so that a store loading a snapshot can
// attach the postings it saved instead of analysing every document.
func (ix *Index) HoldPostings() {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.postingsHeld.Store(true)
}

// ErrOtherAnalyzer reports saved postings built with other analyzer
// settings: valid, but not for this index.
var ErrOtherAnalyzer = errors.New("postings built with other analyzer settings")

// AttachPostings installs saved postings in a collection whose documents
// were just loaded, unanalysed, from the snapshot they were saved with. It
// checks that they fit (document count, lengths equal to the frequencies
// they sum, sorted in-range postings, distinct terms) and fails otherwise,
// leaving the collection to be analysed on ReleasePostings.
func (ix *Index) AttachPostings(collection string, data []byte) error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	if !ix.postingsHeld.Load() {
		return errors.New("postings are not held")
	}
	c, err := ix.collection(collection)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.postingsReady || len(c.postings) != 0 || c.live != len(c.slots) {
		return fmt.Errorf("collection %q already has postings or dead slots", collection)
	}
	saved, err := decodePostings(collection, data, len(c.slots), ix.opts.Analyzer.Config())
	if err != nil {
		return err
	}
	c.installPostings(saved)
	return nil
}

// savedPostings is what decodePostings reads from saved postings: a
// collection's inverted index without its per-term statistics.
type savedPostings struct {
	lengths  []uint32 // per slot
	termIDs  map[string]uint32
	postings [][]posting // per term id, sorted by slot
}

// decodePostings decodes postings saved for the collection's slots documents
// by an analyzer with settings cfg, and checks that they fit them. The
// collection is not touched, so a failure leaves it as it was.
func decodePostings(collection string, data []byte, slots int, cfg AnalyzerConfig) (*savedPostings, error) {
	d := wire.Decoder{B: data}
	if v := d.Byte(); d.Err == nil && v != postingsEncodingVersion {
		return nil, fmt.Errorf("%w: encoding version %d", ErrOtherAnalyzer, v)
	}
	saved := AnalyzerConfig{StopWords: d.String(), Stemmer: d.String()}
	if d.Err == nil && saved != cfg {
		return nil, fmt.Errorf("%w: %+v, this index uses %+v", ErrOtherAnalyzer, saved, cfg)
	}
	n := d.Uvarint()
	if d.Err == nil && n != uint64(slots) {
		return nil, fmt.Errorf("collection %q: postings for %d documents, the snapshot has %d", collection, n, slots)
	}
	s := &savedPostings{lengths: make([]uint32, 0, slots)}
	for range slots {
		s.lengths = append(s.lengths, uint32(d.Uvarint()))
	}
	sums, err := s.decodeTerms(&d, collection, n, slots)
	if err != nil {
		return nil, err
	}
	if d.Err != nil || len(d.B) != 0 {
		return nil, fmt.Errorf("collection %q: the saved postings end early or have trailing bytes", collection)
	}
	for slot, l := range s.lengths {
		if uint64(l) != sums[slot] {
			return nil, fmt.Errorf("collection %q: document %d has length %d but its terms add up to %d", collection, slot, l, sums[slot])
		}
	}
	return s, nil
}

// decodeTerms reads the terms and their postings into s, term ids in the
// order saved, and returns per slot the sum of its postings' frequencies,
// which must equal its length. A short read stops it with d.Err set, for the
// caller to report.
func (s *savedPostings) decodeTerms(d *wire.Decoder, collection string, n uint64, slots int) ([]uint64, error) {
	nterms := d.Uvarint()
	if d.Err == nil && nterms > uint64(len(d.B)) {
		return nil, fmt.Errorf("collection %q: %d terms cannot fit in %d bytes", collection, nterms, len(d.B))
	}
	s.termIDs = make(map[string]uint32, nterms)
	s.postings = make([][]posting, 0, nterms)
	sums := make([]uint64, slots)
	for t := range uint32(nterms) {
		w := d.String()
		count := d.Uvarint()
		if d.Err != nil {
			break
		}
		if _, dup := s.termIDs[w]; dup || w == "" || count == 0 || count > n {
			return nil, fmt.Errorf("collection %q: bad term %q with %d postings", collection, w, count)
		}
		s.termIDs[w] = t
		list := make([]posting, 0, count)
		next := uint64(0)
		for range count {
			slot := next + d.Uvarint()
			freq := d.Uvarint()
			if d.Err != nil {
				break
			}
			if slot >= n || freq == 0 || freq > 1<<31 {
				return nil, fmt.Errorf("collection %q: term %q has a bad posting", collection, w)
			}
			list = append(list, posting{slot: uint32(slot), freq: uint32(freq)})
			sums[slot] += freq
			next = slot + 1
		}
		s.postings = append(s.postings, list)
	}
	return sums, nil
}

// installPostings makes s the collection's inverted index and derives what
// analysis would have: per-term statistics, corpus length and each
// document's term list.
func (c *collection) installPostings(s *savedPostings) {
	lengths, postings := s.lengths, s.postings
	c.termIDs = s.termIDs
	c.postings = postings
	c.df = make([]uint32, len(postings))
	c.maxFreq = make([]uint32, len(postings))
	c.minLength = make([]uint32, len(postings))
	c.lengths = lengths
	c.totalLen, c.allPostings, c.deadPostings = 0, 0, 0
	for _, l := range lengths {
		c.totalLen += int64(l)
	}
	perSlot := make([]int, len(c.slots))
	for _, list := range postings {
		for _, p := range list {
			perSlot[p.slot]++
		}
	}
	for slot, e := range c.slots {
		e.length = lengths[slot]
		e.terms = make([]termFreq, 0, perSlot[slot])
	}
	for t, list := range postings {
		c.df[t] = uint32(len(list))
		c.minLength[t] = ^uint32(0)
		for _, p := range list {
			c.maxFreq[t] = max(c.maxFreq[t], p.freq)
			c.minLength[t] = min(c.minLength[t], lengths[p.slot])
			e := c.slots[p.slot]
			e.terms = append(e.terms, termFreq{term: uint32(t), freq: p.freq}) // terms in id order: sorted
		}
		c.allPostings += len(list)
	}
	c.postingsReady = true
}

// ReleasePostings ends HoldPostings: the documents of every collection
// without attached postings are analysed and indexed now (in parallel), and
// writes analyse their documents again. It returns the number of documents
// analysed per collection, for the caller to log.
func (ix *Index) ReleasePostings() map[string]int {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.postingsHeld.Store(false)
	analysed := make(map[string]int)
	for _, name := range slices.Sorted(maps.Keys(ix.collectionsCopy())) {
		c, _ := ix.collection(name)
		c.mu.RLock()
		var pending []*slotEntry
		var slots []uint32
		if !c.postingsReady {
			for s, e := range c.slots {
				if e != nil {
					pending = append(pending, e)
					slots = append(slots, uint32(s))
				}
			}
		}
		c.mu.RUnlock()
		if len(pending) > 0 {
			analyze(ix.opts.Analyzer, pending)
			c.mu.Lock()
			for i, e := range pending {
				c.indexTerms(e, slots[i])
			}
			c.mu.Unlock()
			analysed[name] = len(pending)
		}
		c.mu.Lock()
		c.postingsReady = true
		c.mu.Unlock()
	}
	return analysed
}

func (ix *Index) collectionsCopy() map[string]*collection {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return maps.Clone(ix.collections)
}
