package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// The HNSW graphs are saved next to each snapshot so that a start does not
// rebuild them vector by vector (minutes at 100,000 vectors). The file is a
// cache of what the snapshot's vectors determine: whenever it is missing,
// damaged, or belongs to another snapshot, the graphs are rebuilt from the
// vectors, with a log line saying why, and searches are as correct as ever.
//
//	graph      "RGRAPH01", uint64 the snapshot's first uncovered journal
//	           generation (binds the file to one snapshot), uint32 the number
//	           of collection frames, then that many framed records (the
//	           journal's framing, CRC included):
//	           name, uvarint documents, uvarint dimension, uvarint dead-node
//	           count and their float32 vectors, uvarint length and the
//	           encoded graph (hnsw.Graph.Encode)
//	graph.tmp  a graph file being written; removed at open
const (
	graphMagic = "RGRAPH01"
	graphName  = "graph"
)

// writeGraphs saves the graphs of snap, bound to the snapshot that covers
// journals below nextGen. It is written after the snapshot is installed; a
// crash in between leaves the older file, which the next open recognises as
// another snapshot's and ignores.
func (s *Store) writeGraphs(snap []index.CollectionSnapshot, nextGen uint64) error {
	var frames [][]byte
	for _, c := range snap {
		if c.GraphErr != nil {
			s.log.Warn("the HNSW graph could not be saved; the next start rebuilds it", "collection", c.Name, "error", c.GraphErr)
			continue
		}
		if c.Graph == nil {
			continue
		}
		payload := encodeSavedGraph(c)
		if len(payload) > maxPayload {
			s.log.Warn("the HNSW graph is too large to save in one record; the next start rebuilds it", "collection", c.Name, "bytes", len(payload))
			continue
		}
		frames = append(frames, appendFrame(nil, payload))
	}
	return s.writeCacheFile(graphName, graphMagic, "graph file", nextGen, frames)
}

// writeCacheFile writes a file of framed payloads bound to the snapshot that
// covers journals below nextGen: magic, uint64 nextGen, uint32 the number of
// frames, the frames.
func (s *Store) writeCacheFile(name, magic, what string, nextGen uint64, frames [][]byte) error {
	return s.writeAtomically(name, what, func(w *bufio.Writer) error {
		hdr := binary.LittleEndian.AppendUint64([]byte(magic), nextGen)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(frames)))
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, fr := range frames {
			if _, err := w.Write(fr); err != nil {
				return err
			}
		}
		return nil
	})
}

func encodeSavedGraph(c index.CollectionSnapshot) []byte {
	b := appendString(nil, c.Name)
	b = binary.AppendUvarint(b, uint64(len(c.Documents)))
	b = binary.AppendUvarint(b, uint64(c.Dimension))
	b = binary.AppendUvarint(b, uint64(len(c.Graph.Dead)))
	for _, v := range c.Graph.Dead {
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(c.Graph.Encoded)))
	return append(b, c.Graph.Encoded...)
}

type savedGraphRecord struct {
	collection string
	documents  int
	graph      index.SavedGraph
}

func decodeSavedGraph(p []byte) (savedGraphRecord, error) {
	d := &decoder{b: p}
	var rec savedGraphRecord
	rec.collection = d.string()
	rec.documents = int(d.uvarint())
	dim := int(d.uvarint())
	dead := d.uvarint()
	if d.err == nil && (dim == 0 || dead > uint64(len(d.b)/(4*dim))) {
		d.fail("%d dead vectors of dimension %d exceed the %d bytes left", dead, dim, len(d.b))
	}
	for range dead {
		if d.err != nil {
			break
		}
		v := make([]float32, dim)
		for i := range v {
			v[i] = math.Float32frombits(d.uint32())
		}
		rec.graph.Dead = append(rec.graph.Dead, v)
	}
	n := d.uvarint()
	if d.err == nil && n != uint64(len(d.b)) {
		d.fail("graph of %d bytes, %d left", n, len(d.b))
	}
	if d.err != nil {
		return savedGraphRecord{}, d.err
	}
	rec.graph.Encoded = d.b
	return rec, nil
}

// loadGraphs attaches the saved graphs of the snapshot covering journals
// below nextGen to the freshly loaded index (graphs held). A problem with
// the file is never fatal: it is logged, and the collections it concerns
// build their graphs when released.
func (s *Store) loadGraphs(nextGen uint64) {
	path := filepath.Join(s.dir, graphName)
	start := time.Now()
	recs, err := readGraphFile(path, nextGen)
	if errors.Is(err, fs.ErrNotExist) {
		if nextGen > 0 {
			s.log.Info("no saved HNSW graph next to the snapshot; building the graphs from the vectors", "file", path)
		}
		return
	}
	if err != nil {
		s.log.Warn("the saved HNSW graph file is unusable; building the graphs from the vectors", "file", path, "reason", err.Error())
		return
	}
	nodes := 0
	for _, rec := range recs {
		docs, ok := s.ix.Len(rec.collection)
		if !ok || docs != rec.documents {
			s.log.Warn("the saved HNSW graph does not match the snapshot's collection; building it from the vectors",
				"collection", rec.collection, "graph_documents", rec.documents, "documents", docs)
			continue
		}
		if err := s.ix.AttachGraph(rec.collection, &rec.graph); err != nil {
			s.log.Warn("the saved HNSW graph cannot be used; building it from the vectors", "collection", rec.collection, "reason", err.Error())
			continue
		}
		nodes += rec.documents + len(rec.graph.Dead)
	}
	s.log.Info("loaded the saved HNSW graphs", "collections", len(recs), "nodes", nodes, "seconds", time.Since(start).Seconds())
}

// readCacheFile reads a file writeCacheFile wrote, checking every frame's
// CRC, and returns the snapshot generation it is bound to and its payloads.
func readCacheFile(path, magic string) (uint64, [][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	hdr := make([]byte, len(magic)+12)
	if _, err := io.ReadFull(r, hdr); err != nil || string(hdr[:len(magic)]) != magic {
		return 0, nil, errors.New("bad header")
	}
	gen := binary.LittleEndian.Uint64(hdr[len(magic):])
	count := binary.LittleEndian.Uint32(hdr[len(magic)+8:])
	var payloads [][]byte
	for range count {
		payload, _, err := readFrame(r, nil)
		if err == io.EOF {
			return 0, nil, errors.New("fewer records than its header says")
		}
		if err != nil {
			return 0, nil, err
		}
		payloads = append(payloads, payload)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return 0, nil, errors.New("stray bytes after the last record")
	}
	return gen, payloads, nil
}

func readGraphFile(path string, nextGen uint64) ([]savedGraphRecord, error) {
	gen, payloads, err := readCacheFile(path, graphMagic)
	if err != nil {
		return nil, err
	}
	if gen != nextGen {
		return nil, otherSnapshot(gen, nextGen)
	}
	var recs []savedGraphRecord
	for _, p := range payloads {
		rec, err := decodeSavedGraph(p)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func otherSnapshot(gen, nextGen uint64) error {
	return fmt.Errorf("it belongs to another snapshot (generation %d, the snapshot's is %d)", gen, nextGen)
}
