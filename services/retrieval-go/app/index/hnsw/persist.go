package hnsw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/durable-agents/reference/services/retrieval-go/app/wire"
)

// NoNode marks, in the order given to Encode, an id that has no node.
const NoNode = math.MaxUint32

// encodingVersion is the first byte of an encoded graph; bump it when the
// layout changes so that an old file is rebuilt rather than misread.
const encodingVersion = 1

// Encode appends the graph's structure, without its vectors, to dst with
// the nodes renumbered: the node order[i] becomes i (NoNode leaves i
// empty). Every node of the graph must appear in order exactly once; Encode
// fails otherwise. Decode restores it.
//
// Layout (little-endian; u = uvarint): version byte, u M, u efConstruction,
// uint64 seed, u dimension, u len(order), u entry, u node count, then per
// id: u (level+1) (0: no node), and per layer 0..level u count and u ids.
func (g *Graph) Encode(dst []byte, order []uint32) ([]byte, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	newID := make(map[uint32]uint32, g.count)
	for i, old := range order {
		if old == NoNode {
			continue
		}
		if !g.has(old) {
			return nil, fmt.Errorf("hnsw: encode: id %d is not in the graph", old)
		}
		if _, dup := newID[old]; dup {
			return nil, fmt.Errorf("hnsw: encode: id %d appears twice", old)
		}
		newID[old] = uint32(i)
	}
	if len(newID) != g.count {
		return nil, fmt.Errorf("hnsw: encode: order names %d of the graph's %d nodes", len(newID), g.count)
	}
	dim := 0
	if g.top >= 0 {
		dim = len(g.vecs[g.entry])
	}
	dst = append(dst, encodingVersion)
	dst = binary.AppendUvarint(dst, uint64(g.p.M))
	dst = binary.AppendUvarint(dst, uint64(g.p.EfConstruction))
	dst = binary.LittleEndian.AppendUint64(dst, g.p.Seed)
	dst = binary.AppendUvarint(dst, uint64(dim))
	dst = binary.AppendUvarint(dst, uint64(len(order)))
	dst = binary.AppendUvarint(dst, uint64(newID[g.entry]))
	dst = binary.AppendUvarint(dst, uint64(g.count))
	for _, old := range order {
		if old == NoNode {
			dst = binary.AppendUvarint(dst, 0)
			continue
		}
		level := int(g.levels[old])
		dst = binary.AppendUvarint(dst, uint64(level+1))
		for l := 0; l <= level; l++ {
			links := g.neighbours(old, l)
			dst = binary.AppendUvarint(dst, uint64(len(links)))
			for _, nb := range links {
				dst = binary.AppendUvarint(dst, uint64(newID[nb]))
			}
		}
	}
	return dst, nil
}

// ErrIncompatible reports an encoded graph built with other parameters or
// another vector dimension than the caller's: valid, but not usable.
var ErrIncompatible = errors.New("graph built with other parameters")

// Decode rebuilds a graph that Encode wrote, taking each node's vector from
// vector(id), which must return a unit vector of the graph's dimension. It
// checks the structure it reads (lengths, link counts, ids, layers, the
// entry point) and never panics on bad input; catching flipped bits that
// leave a valid structure is the job of a checksum around the encoding (the
// store frames it with a CRC). p must match the parameters the graph was built with (defaults
// filled in the same way); a mismatch fails with ErrIncompatible.
func Decode(data []byte, p Parameters, vector func(id uint32) []float32) (*Graph, error) {
	d := wire.Decoder{B: data}
	h, err := decodeHeader(&d, len(data), p)
	if err != nil {
		return nil, err
	}
	g := New(h.p)
	g.grow(int(h.n))
	maxLevel, err := g.decodeNodes(&d, h, vector)
	if err != nil {
		return nil, err
	}
	if d.Err != nil || len(d.B) != 0 {
		return nil, errors.New("hnsw: decode: trailing or missing bytes")
	}
	if uint64(g.count) != h.count {
		return nil, fmt.Errorf("hnsw: decode: %d nodes, header says %d", g.count, h.count)
	}
	if err := g.checkLinks(uint32(h.n)); err != nil {
		return nil, err
	}
	if h.count > 0 {
		g.entry, g.top = uint32(h.entry), int(g.levels[h.entry])
		if g.top != maxLevel {
			return nil, errors.New("hnsw: decode: the entry point is not on the top layer")
		}
	}
	return g, nil
}

// header is what an encoded graph says before its nodes.
type header struct {
	p     Parameters // the caller's, defaults filled in, with the encoded seed
	dim   int
	n     uint64 // ids, present or not
	entry uint64 // the entry point's id
	count uint64 // nodes present
}

// decodeHeader reads the header of an encoding of size bytes and checks it
// against the parameters p the caller builds with.
func decodeHeader(d *wire.Decoder, size int, p Parameters) (header, error) {
	if v := d.Byte(); d.Err == nil && v != encodingVersion {
		return header{}, fmt.Errorf("%w: encoding version %d, this build reads %d", ErrIncompatible, v, encodingVersion)
	}
	m, efc, seed := d.Uvarint(), d.Uvarint(), d.Uint64()
	var h header
	h.dim = int(d.Uvarint())
	h.n = d.Uvarint()
	h.entry = d.Uvarint()
	h.count = d.Uvarint()
	if d.Err != nil {
		return header{}, d.Err
	}
	p = p.WithDefaults()
	if m != uint64(p.M) || efc != uint64(p.EfConstruction) {
		return header{}, fmt.Errorf("%w: M %d and efConstruction %d, want %d and %d", ErrIncompatible, m, efc, p.M, p.EfConstruction)
	}
	// Each present node takes at least two bytes, each absent one a byte.
	if h.n > uint64(size) || h.count > h.n || (h.count > 0 && h.entry >= h.n) {
		return header{}, errors.New("hnsw: decode: node counts out of range")
	}
	p.Seed = seed
	h.p = p
	return h, nil
}

// decodeNodes reads the h.n ids' levels and links into g, which has room
// for them, and returns the highest level of a node. It checks each link's
// range and count; whether links lead to nodes on their layer is left to
// checkLinks, since a link may name a node that comes later.
func (g *Graph) decodeNodes(d *wire.Decoder, h header, vector func(id uint32) []float32) (maxLevel int, err error) {
	maxLevel = -1
	for id := range uint32(h.n) {
		levelPlus1 := d.Uvarint()
		if d.Err != nil {
			return 0, d.Err
		}
		if levelPlus1 == 0 {
			continue
		}
		if levelPlus1 > math.MaxInt8+1 {
			return 0, fmt.Errorf("hnsw: decode: node %d on layer %d", id, levelPlus1-1)
		}
		level := int(levelPlus1) - 1
		vec := vector(id)
		if len(vec) != h.dim {
			return 0, fmt.Errorf("%w: node %d has a vector of dimension %d, the graph %d", ErrIncompatible, id, len(vec), h.dim)
		}
		g.vecs[id], g.levels[id] = vec, int8(level)
		if level > 0 {
			g.upper[id] = make([][]uint32, level)
		}
		for l := 0; l <= level; l++ {
			k := d.Uvarint()
			if d.Err == nil && k > uint64(g.maxLinks(l)) {
				return 0, fmt.Errorf("hnsw: decode: node %d has %d links on layer %d", id, k, l)
			}
			links := make([]uint32, 0, k)
			for range k {
				nb := d.Uvarint()
				if d.Err == nil && (nb >= h.n || nb == uint64(id)) {
					return 0, fmt.Errorf("hnsw: decode: node %d links to %d", id, nb)
				}
				links = append(links, uint32(nb))
			}
			if d.Err != nil {
				return 0, d.Err
			}
			if l == 0 {
				g.setNeighbours(id, 0, links)
			} else {
				g.upper[id][l-1] = links
			}
		}
		g.count++
		maxLevel = max(maxLevel, level)
	}
	return maxLevel, nil
}

// checkLinks reports a link, among ids below n, to a node that is not on
// the link's layer.
func (g *Graph) checkLinks(n uint32) error {
	for id := range n {
		for l := 0; l <= int(g.levels[id]); l++ {
			for _, nb := range g.neighbours(id, l) {
				if int(g.levels[nb]) < l {
					return fmt.Errorf("hnsw: decode: node %d links on layer %d to %d, which is not there", id, l, nb)
				}
			}
		}
	}
	return nil
}
