package index

import (
	"errors"
	"fmt"

	"github.com/durable-agents/reference/services/retrieval-go/app/index/hnsw"
)

// SavedGraph is a collection's HNSW graph as of a snapshot, numbered the way
// the collection's slots will be numbered when the snapshot is loaded again:
// the snapshot's documents first, in order, then the graph's nodes whose
// documents are gone (deleted or replaced; they stay in the graph as
// waypoints), whose vectors only the graph still holds.
type SavedGraph struct {
	// Encoded is the graph's structure (hnsw.Graph.Encode).
	Encoded []byte
	// Dead are the vectors of the nodes numbered after the documents.
	Dead [][]float32
}

// saveGraph captures the collection's graph numbered as the snapshot docs
// will be, or nil when it has no vectors. The caller holds the index's
// write lock (no insert is under way) and c.mu for reading.
func (c *collection) saveGraph() (*SavedGraph, error) {
	g := c.graph.Load()
	if g.Len() == 0 {
		return nil, nil
	}
	order := make([]uint32, 0, c.live+c.graphDead)
	var deadSlots []uint32
	for s, e := range c.slots {
		switch {
		case e != nil && e.doc.Vector != nil:
			order = append(order, uint32(s))
		case e != nil:
			order = append(order, hnsw.NoNode)
		case g.Contains(uint32(s)):
			deadSlots = append(deadSlots, uint32(s))
		}
	}
	saved := &SavedGraph{}
	for _, s := range deadSlots {
		order = append(order, s)
		saved.Dead = append(saved.Dead, g.Vector(s))
	}
	var err error
	if saved.Encoded, err = g.Encode(nil, order); err != nil {
		return nil, fmt.Errorf("save the HNSW graph of collection %q: %w", c.name, err)
	}
	return saved, nil
}

// HoldGraphs stops writes from inserting into the HNSW graphs until
// ReleaseGraphs, so that a store loading a snapshot can attach the graph it
// saved instead of building one document at a time. Searches meanwhile
// compare the query with the vectors not yet in a graph directly.
func (ix *Index) HoldGraphs() {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.graphsHeld = true
}

// AttachGraph installs a saved graph in a collection whose documents were
// just loaded from the snapshot the graph was saved with, while graphs are
// held. It checks that the graph fits the documents (every document with a
// vector is a node with that vector's dimension, and nothing else is) and
// fails otherwise, leaving the collection to build its graph on release.
func (ix *Index) AttachGraph(collection string, saved *SavedGraph) error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	if !ix.graphsHeld {
		return errors.New("graphs are not held")
	}
	c, err := ix.collection(collection)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.graphNext.Load() != 0 || c.graph.Load().Len() != 0 || c.deadSlots() != 0 {
		return fmt.Errorf("collection %q already has graph nodes or dead slots", collection)
	}
	live := uint32(len(c.slots))
	g, err := hnsw.Decode(saved.Encoded, c.opts.HNSW, func(id uint32) []float32 {
		if id < live {
			return c.slots[id].doc.Vector // nil for a document without a vector: a dimension mismatch
		}
		if int(id-live) < len(saved.Dead) {
			return saved.Dead[id-live]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("collection %q: %w", collection, err)
	}
	if g.Len() != c.vectors+len(saved.Dead) {
		return fmt.Errorf("collection %q: the graph has %d nodes for %d vectors and %d waypoints", collection, g.Len(), c.vectors, len(saved.Dead))
	}
	for range saved.Dead {
		c.slots = append(c.slots, nil)
		c.lengths = append(c.lengths, 0)
	}
	c.graph.Store(g)
	c.graphNext.Store(uint32(len(c.slots)))
	c.graphDead = len(saved.Dead)
	return nil
}

// deadSlots counts slots whose document is gone. The caller holds c.mu.
func (c *collection) deadSlots() int {
	n := 0
	for _, e := range c.slots {
		if e == nil {
			n++
		}
	}
	return n
}

// ReleaseGraphs ends HoldGraphs: from now on writes insert their vectors
// into the graphs again. The documents loaded while graphs were held (all of
// a collection's where no graph was attached) are not in them yet:
// CatchUpGraphs inserts them, and searches compare queries with them
// directly until then, so they are found all along.
func (ix *Index) ReleaseGraphs() {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.graphsHeld = false
}

// graphCatchUpBatch is how many vectors CatchUpGraphs inserts per turn of
// the write lock, so that writes wait at most a few hundred milliseconds.
const graphCatchUpBatch = 256

// CatchUpGraphs inserts every vector not yet in its collection's graph, a
// batch at a time between writes, until done or until stop is closed. It
// returns how many vectors it inserted per collection.
func (ix *Index) CatchUpGraphs(stop <-chan struct{}) map[string]int {
	inserted := make(map[string]int)
	for _, name := range ix.Collections() {
		c, err := ix.collection(name)
		if err != nil {
			continue
		}
		before := c.graph.Load().Len()
		for done := false; !done; {
			select {
			case <-stop:
				return inserted
			default:
			}
			ix.writeMu.Lock()
			done = c.catchUpGraphUpTo(graphCatchUpBatch)
			ix.writeMu.Unlock()
		}
		if n := c.graph.Load().Len() - before; n > 0 {
			inserted[name] = n
		}
	}
	return inserted
}
