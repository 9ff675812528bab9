package store

import (
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// The inverted index is saved next to each snapshot too, so that a start
// reads the postings instead of analysing every document again. Like the
// graph file it is a cache: missing, damaged, from another snapshot or from
// other analyzer settings, it is ignored with a log line and the documents
// are analysed as before.
//
//	postings      "RPOSTS01", uint64 the snapshot's first uncovered journal
//	              generation, uint32 the number of collection records, then
//	              framed records: name, then the collection's encoded
//	              postings (index: savePostings)
//	postings.tmp  a postings file being written; removed at open
const (
	postingsMagic = "RPOSTS01"
	postingsName  = "postings"
)

func (s *Store) writePostings(snap []index.CollectionSnapshot, nextGen uint64) error {
	var frames [][]byte
	for _, c := range snap {
		if c.Postings == nil {
			continue
		}
		payload := append(appendString(nil, c.Name), c.Postings...)
		if len(payload) > maxPayload {
			s.log.Warn("the postings are too large to save in one record; the next start analyses the documents", "collection", c.Name, "bytes", len(payload))
			continue
		}
		frames = append(frames, appendFrame(nil, payload))
	}
	return s.writeCacheFile(postingsName, postingsMagic, "postings file", nextGen, frames)
}

// savedPostings is a postings file read at open, before the snapshot.
type savedPostings struct {
	gen         uint64
	collections map[string][]byte
}

// readPostings reads the postings file and, when it is whole, holds
// postings so that loading the snapshot registers documents without
// analysing them. nil means the documents are analysed as they load.
func (s *Store) readPostings() *savedPostings {
	path := filepath.Join(s.dir, postingsName)
	gen, payloads, err := readCacheFile(path, postingsMagic)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.log.Warn("the saved postings file is unusable; analysing the documents", "file", path, "reason", err.Error())
		return nil
	}
	saved := &savedPostings{gen: gen, collections: make(map[string][]byte)}
	for _, p := range payloads {
		d := &decoder{b: p}
		name := d.string()
		if d.err != nil {
			s.log.Warn("the saved postings file is unusable; analysing the documents", "file", path, "reason", d.err.Error())
			return nil
		}
		saved.collections[name] = d.b
	}
	s.ix.HoldPostings()
	return saved
}

// attachPostings installs the saved postings after the snapshot covering
// journals below nextGen was loaded, then has the index analyse whatever
// they do not cover.
func (s *Store) attachPostings(saved *savedPostings, nextGen uint64) {
	path := filepath.Join(s.dir, postingsName)
	start := time.Now()
	switch {
	case saved == nil:
		return
	case saved.gen != nextGen:
		s.log.Warn("the saved postings file is unusable; analysing the documents", "file", path, "reason", otherSnapshot(saved.gen, nextGen).Error())
	default:
		for name, data := range saved.collections {
			if err := s.ix.AttachPostings(name, data); err != nil {
				s.log.Warn("the saved postings cannot be used; analysing the documents", "collection", name, "reason", err.Error())
			}
		}
	}
	for name, n := range s.ix.ReleasePostings() {
		s.log.Info("analysed the documents the saved postings do not cover", "collection", name, "documents", n)
	}
	s.log.Info("loaded the saved postings", "collections", len(saved.collections), "seconds", time.Since(start).Seconds())
}
