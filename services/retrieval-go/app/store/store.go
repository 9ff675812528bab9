// Package store makes the search index durable: every write is appended to a
// journal and fsynced before it is acknowledged, and the journal is
// periodically compacted into a snapshot that replaces the previous one by an
// atomic rename. Opening a data directory rebuilds the index from the
// snapshot and the journals written after it.
//
// # Files
//
//	LOCK                       held (flock) by the process using the directory
//	snapshot                   the last complete snapshot
//	snapshot.tmp               a snapshot being written; removed at open
//	graph                      the HNSW graphs as of the snapshot (graphfile.go); a cache
//	graph.tmp                  a graph file being written; removed at open
//	postings                   the inverted index as of the snapshot (postingsfile.go); a cache
//	postings.tmp               a postings file being written; removed at open
//	journal-<gen>.log          journals, <gen> 16 hex digits, replayed in order
//
// A journal starts with the 8-byte magic "RJOURNL1"; a snapshot with
// "RSNAPSH1" and the generation (uint64, little-endian) of the first journal
// it does not cover. After the header come framed records (record.go): a
// little-endian uint32 length, a CRC-32C, and the payload. A snapshot ends
// with an end record holding its document count.
//
// # Guarantees
//
// A write returns only after its record is on disk (write, then fsync), so a
// crash at any moment, kill -9 included, loses no acknowledged write. A crash
// in the middle of an append leaves a torn record at the end of the newest
// journal; opening drops it with a warning (it was never acknowledged).
// Damage anywhere else (an older journal, the snapshot) stops the open with
// an error naming the file, rather than silently losing acknowledged data.
// Replaying a record twice is harmless, because puts are versioned and
// deletes idempotent.
//
// Each open starts a new journal generation. Compaction rotates to a new
// journal while writes are held, captures the index as of that point, writes
// it to snapshot.tmp, fsyncs it, renames it over snapshot, fsyncs the
// directory and only then deletes the journals it covers.
package store

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

const (
	journalMagic  = "RJOURNL1"
	snapshotMagic = "RSNAPSH1"
	snapshotName  = "snapshot"
	lockName      = "LOCK"

	// DefaultCompactBytes is the journal size that triggers a compaction.
	DefaultCompactBytes = 64 << 20
	// snapshotBatch is how many documents one snapshot record holds.
	snapshotBatch = 256
)

// Options configure a Store. The zero value means the defaults.
type Options struct {
	Index index.Options
	// CompactBytes is the size the journals since the last snapshot may
	// reach before a compaction starts; zero means DefaultCompactBytes.
	CompactBytes int64
	// Logger receives recovery and compaction events; nil discards them.
	Logger *slog.Logger
}

// Store is a durable index. It is safe for concurrent use.
type Store struct {
	dir    string
	opts   Options
	log    *slog.Logger
	ix     *index.Index
	lockFD *os.File

	mu      sync.Mutex // the fields below
	journal *os.File
	gen     uint64
	broken  error // set when a journal write fails: nothing more is acknowledged
	closed  bool
	// Per-collection bytes of records on disk: in the snapshot, in journals
	// a running compaction will cover, and in journals after it.
	snapBytes, coveredBytes, journalBytes map[string]int64
	journalTotal                          int64 // bytes appended since the last snapshot

	compactMu sync.Mutex // one compaction at a time
	bg        sync.WaitGroup

	// graphsCaughtUp is done once the background insertion of the vectors
	// loaded at open has finished; closing stopGraphs ends it early.
	graphsCaughtUp sync.WaitGroup
	stopGraphs     chan struct{}
	closeOnce      sync.Once
}

// Open opens the data directory dir, creating it if needed, and rebuilds the
// index from it. Only one Store may use a directory at a time.
func Open(dir string, opts Options) (*Store, error) {
	if opts.CompactBytes <= 0 {
		opts.CompactBytes = DefaultCompactBytes
	}
	s := &Store{
		dir:          dir,
		opts:         opts,
		log:          opts.Logger,
		ix:           index.New(opts.Index),
		snapBytes:    make(map[string]int64),
		coveredBytes: make(map[string]int64),
		journalBytes: make(map[string]int64),
		stopGraphs:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %s; check RETRIEVAL_DATA_DIR", dir, rootCause(err))
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	if err := s.recover(); err != nil {
		s.lockFD.Close()
		return nil, err
	}
	if s.journalTotal >= opts.CompactBytes {
		s.startCompaction()
	}
	return s, nil
}

func (s *Store) lock() error {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("data directory %s is not writable; fix its permissions or choose another with RETRIEVAL_DATA_DIR", s.dir)
		}
		return fmt.Errorf("open data directory %s: %s", s.dir, rootCause(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("data directory %s is in use by another process; stop it or choose another directory with RETRIEVAL_DATA_DIR", s.dir)
		}
		return fmt.Errorf("lock data directory %s: %w", s.dir, err)
	}
	s.lockFD = f
	return nil
}

// Index returns the in-memory index, for searches. Writes must go through
// the Store.
func (s *Store) Index() *index.Index { return s.ix }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Search runs a search; see index.Index.Search.
func (s *Store) Search(ctx context.Context, q index.Query) (index.Result, error) {
	return s.ix.Search(ctx, q)
}

// CreateCollection creates a collection durably; see index.Index.CreateCollection.
func (s *Store) CreateCollection(name string, dim int) error {
	return s.ix.CreateCollection(name, dim, func() error {
		return s.append(Record{Kind: kindCreate, Collection: name, Dimension: dim})
	})
}

// Put indexes docs durably; see index.Index.Put. When it returns without
// error, the documents that changed are on disk.
func (s *Store) Put(collection string, docs []index.Document) (index.PutResult, error) {
	res, err := s.ix.Put(collection, docs, func(changed []index.Document) error {
		return s.append(Record{Kind: kindPut, Collection: collection, Documents: changed})
	})
	if err == nil {
		s.maybeCompact()
	}
	return res, err
}

// Delete removes documents durably; see index.Index.Delete.
func (s *Store) Delete(collection string, ids []string) (index.DeleteResult, error) {
	res, err := s.ix.Delete(collection, ids, func(existing []string) error {
		return s.append(Record{Kind: kindDelete, Collection: collection, IDs: existing})
	})
	if err == nil {
		s.maybeCompact()
	}
	return res, err
}

// ErrBroken is wrapped by writes refused after a failed journal write.
var ErrBroken = errors.New("the journal cannot be written")

func (s *Store) append(rec Record) error {
	frame := appendFrame(nil, EncodeRecord(rec))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("the store is closed")
	case s.broken != nil:
		return s.broken
	}
	if _, err := s.journal.Write(frame); err != nil {
		return s.breakLocked(err)
	}
	// After a failed fsync the kernel may have dropped the dirty pages, so
	// the record's fate is unknown: refuse every later write rather than
	// acknowledge one that may follow a hole.
	if err := s.journal.Sync(); err != nil {
		return s.breakLocked(err)
	}
	s.journalBytes[rec.Collection] += int64(len(frame))
	s.journalTotal += int64(len(frame))
	return nil
}

func (s *Store) breakLocked(err error) error {
	s.broken = fmt.Errorf("%w (%s): %v; restart the worker once the disk is fixed", ErrBroken, s.journal.Name(), rootCause(err))
	s.log.Error("journal write failed; refusing further writes", "file", s.journal.Name(), "error", err)
	return s.broken
}

// Stats describes one collection, with its size on disk.
type Stats struct {
	index.CollectionStats
	// BytesOnDisk counts the collection's records in the snapshot and the
	// journals; the files' headers and the lock file are not counted.
	BytesOnDisk int64
}

// Stats describes every collection, in name order.
func (s *Store) Stats() []Stats {
	ixStats := s.ix.Stats()
	out := make([]Stats, len(ixStats))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range ixStats {
		out[i] = Stats{CollectionStats: st, BytesOnDisk: s.snapBytes[st.Name] + s.coveredBytes[st.Name] + s.journalBytes[st.Name]}
	}
	return out
}

// Close waits for a running compaction and closes the files. The index
// stays readable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.stopGraphs) })
	s.graphsCaughtUp.Wait()
	s.bg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.journal.Close()
	if lerr := s.lockFD.Close(); err == nil {
		err = lerr
	}
	return err
}

func (s *Store) maybeCompact() {
	s.mu.Lock()
	due := s.journalTotal >= s.opts.CompactBytes && !s.closed
	s.mu.Unlock()
	if due {
		s.startCompaction()
	}
}

func (s *Store) startCompaction() {
	if !s.compactMu.TryLock() {
		return
	}
	s.bg.Go(func() {
		defer s.compactMu.Unlock()
		if err := s.compactLocked(); err != nil {
			s.log.Error("compaction failed; the journal keeps growing until one succeeds", "error", err)
		}
	})
}

// Compact writes a snapshot of the index and deletes the journals it
// covers. Writes wait only while the journal is rotated; searches never
// wait.
func (s *Store) Compact() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	return s.compactLocked()
}

func (s *Store) compactLocked() error {
	var rotateErr error
	var covered uint64 // journals below this generation are in the snapshot
	snap := s.ix.Snapshot(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			rotateErr = errors.New("the store is closed")
			return
		}
		if rotateErr = s.openJournalLocked(s.gen + 1); rotateErr != nil {
			return
		}
		covered = s.gen
		for k, v := range s.journalBytes {
			s.coveredBytes[k] += v
		}
		clear(s.journalBytes)
		s.journalTotal = 0
	})
	if rotateErr != nil {
		return rotateErr
	}
	sizes, err := s.writeSnapshot(snap, covered)
	if err != nil {
		return err
	}
	if err := s.writeGraphs(snap, covered); err != nil {
		// The snapshot is complete without it; the next start rebuilds.
		s.log.Warn("saving the HNSW graphs failed; the next start rebuilds them from the vectors", "error", err)
	}
	if err := s.writePostings(snap, covered); err != nil {
		s.log.Warn("saving the postings failed; the next start analyses the documents", "error", err)
	}
	gens, err := s.journalGenerations()
	if err != nil {
		return err
	}
	for _, g := range gens {
		if g < covered {
			if err := os.Remove(s.journalPath(g)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove compacted journal: %w", err)
			}
		}
	}
	s.mu.Lock()
	s.snapBytes = sizes
	clear(s.coveredBytes)
	s.mu.Unlock()
	docs := 0
	for _, c := range snap {
		docs += len(c.Documents)
	}
	s.log.Info("compacted the journal into a snapshot", "collections", len(snap), "documents", docs)
	return nil
}

// writeSnapshot writes snap atomically and returns each collection's bytes.
func (s *Store) writeSnapshot(snap []index.CollectionSnapshot, nextGen uint64) (map[string]int64, error) {
	sizes := make(map[string]int64)
	err := s.writeAtomically(snapshotName, "snapshot", func(w *bufio.Writer) error {
		hdr := binary.LittleEndian.AppendUint64([]byte(snapshotMagic), nextGen)
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		var count uint64
		var frame []byte
		write := func(rec Record) error {
			frame = appendFrame(frame[:0], EncodeRecord(rec))
			sizes[rec.Collection] += int64(len(frame))
			_, err := w.Write(frame)
			return err
		}
		for _, c := range snap {
			if err := write(Record{Kind: kindCreate, Collection: c.Name, Dimension: c.Dimension}); err != nil {
				return err
			}
			for chunk := range slices.Chunk(c.Documents, snapshotBatch) {
				docs := make([]index.Document, len(chunk))
				for i, d := range chunk {
					docs[i] = *d
				}
				if err := write(Record{Kind: kindPut, Collection: c.Name, Documents: docs}); err != nil {
					return err
				}
				count += uint64(len(chunk))
			}
		}
		return write(Record{Kind: kindEnd, Count: count})
	})
	delete(sizes, "")
	return sizes, err
}

// writeAtomically writes the file name in the data directory through
// name.tmp: fill writes the content, which is flushed and fsynced before the
// rename over name and the directory's fsync, so that after a crash name is
// either the old file or the complete new one. what names the file in
// errors.
func (s *Store) writeAtomically(name, what string, fill func(w *bufio.Writer) error) error {
	tmp := filepath.Join(s.dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", what, err)
	}
	f = nil
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("install %s: %w", what, err)
	}
	return syncDir(s.dir)
}

func (s *Store) journalPath(gen uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("journal-%016x.log", gen))
}

// journalGenerations lists the journals in the directory, oldest first.
func (s *Store) journalGenerations() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read data directory %s: %w", s.dir, err)
	}
	var gens []uint64
	for _, e := range entries {
		hex, ok := strings.CutPrefix(e.Name(), "journal-")
		if !ok {
			continue
		}
		hex, ok = strings.CutSuffix(hex, ".log")
		if !ok || len(hex) != 16 {
			continue
		}
		g, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		gens = append(gens, g)
	}
	slices.Sort(gens)
	return gens, nil
}

// openJournalLocked starts journal generation gen and makes it current.
func (s *Store) openJournalLocked(gen uint64) error {
	path := s.journalPath(gen)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create journal: %w", err)
	}
	if _, err := f.Write([]byte(journalMagic)); err != nil {
		f.Close()
		return fmt.Errorf("write journal header: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync journal: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	if s.journal != nil {
		if err := s.journal.Close(); err != nil {
			s.log.Warn("closing the previous journal failed", "file", s.journal.Name(), "error", err)
		}
	}
	s.journal, s.gen = f, gen
	return nil
}

// recover rebuilds the index from the snapshot and journals and opens a new
// journal generation.
func (s *Store) recover() error {
	_ = os.Remove(filepath.Join(s.dir, snapshotName+".tmp"))
	_ = os.Remove(filepath.Join(s.dir, graphName+".tmp"))
	_ = os.Remove(filepath.Join(s.dir, postingsName+".tmp"))
	// Documents are loaded without touching the HNSW graphs: the saved
	// graphs are attached to the snapshot's documents, and whatever they
	// lack is inserted in the background once the store serves.
	s.ix.HoldGraphs()
	postings := s.readPostings()
	nextGen, err := s.loadSnapshot()
	if err != nil {
		return err
	}
	s.attachPostings(postings, nextGen)
	s.loadGraphs(nextGen)
	gens, err := s.journalGenerations()
	if err != nil {
		return err
	}
	var replay []uint64
	for _, g := range gens {
		if g < nextGen {
			// Covered by the snapshot; left behind by a crash between the
			// snapshot's rename and the journals' removal.
			if err := os.Remove(s.journalPath(g)); err != nil {
				return fmt.Errorf("remove compacted journal: %w", err)
			}
			continue
		}
		replay = append(replay, g)
	}
	records := 0
	for i, g := range replay {
		n, err := s.replayJournal(g, i == len(replay)-1)
		if err != nil {
			return err
		}
		records += n
	}
	// The journals' vectors join the graphs in the background (catchUpGraphs).
	s.ix.ReleaseGraphs()
	last := nextGen
	if len(replay) > 0 {
		last = max(last, replay[len(replay)-1]+1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openJournalLocked(last); err != nil {
		return fmt.Errorf("data directory %s: %w", s.dir, err)
	}
	docs := 0
	for _, c := range s.ix.Stats() {
		docs += c.Documents
	}
	s.log.Info("opened the index", "dir", s.dir, "collections", len(s.ix.Collections()), "documents", docs,
		"journal_records_replayed", records)
	s.catchUpGraphs()
	return nil
}

// catchUpGraphs inserts the vectors that are not in a graph after the open
// (the journals' since the snapshot, or all of a collection's when its saved
// graph could not be used) in the background: the store serves at once, and
// searches compare queries with those vectors directly meanwhile.
func (s *Store) catchUpGraphs() {
	s.graphsCaughtUp.Add(1)
	go func() {
		defer s.graphsCaughtUp.Done()
		start := time.Now()
		for collection, n := range s.ix.CatchUpGraphs(s.stopGraphs) {
			s.log.Info("built the HNSW graph of the vectors loaded at start", "collection", collection, "vectors", n, "seconds", time.Since(start).Seconds())
		}
	}()
}

// WaitForGraphs waits until the graphs hold every vector loaded at open (or
// the store is closed). Searches do not need to wait: they are complete
// either way, only slower before.
func (s *Store) WaitForGraphs() { s.graphsCaughtUp.Wait() }

// loadSnapshot loads the snapshot, if there is one, into the index and
// returns the generation of the first journal it does not cover (0 without
// a snapshot).
func (s *Store) loadSnapshot() (uint64, error) {
	path := filepath.Join(s.dir, snapshotName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("snapshot %s is damaged (%s); restore the data directory from a backup or delete it and re-index",
			path, fmt.Sprintf(format, args...))
	}
	hdr := make([]byte, len(snapshotMagic)+8)
	if _, err := io.ReadFull(r, hdr); err != nil || string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return 0, corrupt("bad header")
	}
	nextGen := binary.LittleEndian.Uint64(hdr[len(snapshotMagic):])
	// Reading, decoding and analysing a record runs one record ahead of
	// applying it, on another goroutine: applying is serial (it builds the
	// postings), the rest is not, and together they are most of a start.
	records := make(chan snapshotRecord, 2)
	stop := make(chan struct{})
	defer close(stop)
	go s.readSnapshot(r, records, stop)
	if err := s.applySnapshot(records); err != nil {
		return 0, corrupt("%v", err)
	}
	return nextGen, nil
}

// snapshotRecord is a snapshot record read ahead of applying it: decoded,
// the documents of a put analysed, or the error that ends the reading.
type snapshotRecord struct {
	rec      Record
	analyzed *index.Analyzed
	size     int // of its frame
	err      error
}

// readSnapshot sends the records that follow the snapshot's header on
// records, up to the end record or the first error, and closes it. It gives
// up when stop is closed.
func (s *Store) readSnapshot(r *bufio.Reader, records chan<- snapshotRecord, stop <-chan struct{}) {
	defer close(records)
	for {
		payload, _, err := readFrame(r, nil)
		var l snapshotRecord
		switch {
		case err == io.EOF:
			l.err = errors.New("no end record")
		case err != nil:
			l.err = err
		default:
			l.size = frameHeader + len(payload)
			l.rec, l.err = DecodeRecord(payload)
			if l.err == nil && l.rec.Kind == kindPut {
				l.analyzed = s.ix.AnalyzeDocuments(l.rec.Documents)
			}
		}
		select {
		case records <- l:
		case <-stop:
			return
		}
		if l.err != nil || l.rec.Kind == kindEnd {
			return
		}
	}
}

// applySnapshot applies the records from readSnapshot in order until the end
// record, whose document count must match the documents put before it.
func (s *Store) applySnapshot(records <-chan snapshotRecord) error {
	var count uint64
	for l := range records {
		if l.err != nil {
			return l.err
		}
		rec := l.rec
		if rec.Kind == kindEnd {
			if rec.Count != count {
				return fmt.Errorf("end record counts %d documents, found %d", rec.Count, count)
			}
			return nil
		}
		var err error
		if rec.Kind == kindPut {
			count += uint64(len(rec.Documents))
			_, err = s.ix.PutAnalyzed(rec.Collection, l.analyzed, nil)
		} else {
			err = s.applyRecord(rec)
		}
		if err != nil {
			return err
		}
		s.snapBytes[rec.Collection] += int64(l.size)
	}
	return errors.New("no end record")
}

// replayJournal applies journal gen. In the newest journal (last), a torn
// record and anything after it are cut off: that is where a crash
// interrupted an append that was never acknowledged.
func (s *Store) replayJournal(gen uint64, last bool) (int, error) {
	path := s.journalPath(gen)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	hdr := make([]byte, len(journalMagic))
	n, err := io.ReadFull(r, hdr)
	if err != nil || string(hdr) != journalMagic {
		if last && err != nil {
			// Created but never written: a crash right after rotation.
			s.log.Warn("removed a journal with an incomplete header", "file", path, "bytes", n)
			f.Close()
			return 0, os.Remove(path)
		}
		return 0, fmt.Errorf("journal %s is damaged (bad header); restore the data directory from a backup or delete it and re-index", path)
	}
	offset := int64(len(journalMagic))
	records := 0
	var buf []byte
	for {
		payload, size, err := readFrame(r, buf)
		if err == io.EOF {
			return records, nil
		}
		var rec Record
		if err == nil {
			buf = payload
			rec, err = DecodeRecord(payload)
		}
		if err != nil {
			if !last {
				return 0, fmt.Errorf("journal %s is damaged at byte %d (%v); restore the data directory from a backup or delete it and re-index", path, offset, err)
			}
			info, _ := f.Stat()
			dropped := info.Size() - offset
			s.log.Warn("dropped a torn record at the end of the journal; it was never acknowledged",
				"file", path, "offset", offset, "bytes_dropped", dropped, "reason", err.Error())
			if err := f.Truncate(offset); err != nil {
				return 0, fmt.Errorf("truncate torn journal %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return 0, fmt.Errorf("sync journal %s: %w", path, err)
			}
			return records, nil
		}
		if err := s.applyRecord(rec); err != nil {
			return 0, fmt.Errorf("journal %s, record at byte %d cannot be applied: %w", path, offset, err)
		}
		s.journalBytes[rec.Collection] += int64(size)
		s.journalTotal += int64(size)
		offset += int64(size)
		records++
	}
}

func (s *Store) applyRecord(rec Record) error {
	switch rec.Kind {
	case kindCreate:
		return s.ix.CreateCollection(rec.Collection, rec.Dimension, nil)
	case kindPut:
		_, err := s.ix.Put(rec.Collection, rec.Documents, nil)
		return err
	case kindDelete:
		_, err := s.ix.Delete(rec.Collection, rec.IDs, nil)
		return err
	}
	return fmt.Errorf("unexpected record kind %d", rec.Kind)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open data directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync data directory %s: %w", dir, err)
	}
	return nil
}

// rootCause returns the innermost error message ("permission denied"
// rather than the path operation around it).
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// sortedKeys makes encoded metadata byte-for-byte reproducible.
func sortedKeys(m map[string]string) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}
