package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func doc(id string, version int64, text string, vec ...float32) index.Document {
	d := index.Document{ID: id, Version: version, Title: strings.ToUpper(id), Text: text, Metadata: map[string]string{"id": id}}
	if len(vec) > 0 {
		d.Vector = vec
	}
	return d
}

// contents returns every document of every collection, for comparisons.
func contents(s *Store) map[string]map[string]index.Document {
	out := make(map[string]map[string]index.Document)
	for _, c := range s.Index().Snapshot(nil) {
		m := make(map[string]index.Document)
		for _, d := range c.Documents {
			m[d.ID] = *d
		}
		out[fmt.Sprintf("%s/%d", c.Name, c.Dimension)] = m
	}
	return out
}

func TestReopenRestoresEverything(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateCollection("kb", 0); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateCollection("vec", 2); err != nil {
				t.Fatal(err)
			}
			steps := []func() error{
				func() error {
					_, err := s.Put("kb", []index.Document{doc("a", 1, "alpha"), doc("b", 1, "beta")})
					return err
				},
				func() error { _, err := s.Put("kb", []index.Document{doc("a", 2, "alpha two")}); return err },
				func() error { _, err := s.Put("kb", []index.Document{doc("a", 1, "stale")}); return err },
				func() error { _, err := s.Delete("kb", []string{"b", "missing"}); return err },
				func() error { _, err := s.Put("vec", []index.Document{doc("v", 1, "", 3, 4)}); return err },
			}
			for _, step := range steps {
				if err := step(); err != nil {
					t.Fatal(err)
				}
			}
			if compact {
				if err := s.Compact(); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Put("kb", []index.Document{doc("c", 1, "after the snapshot")}); err != nil {
					t.Fatal(err)
				}
			}
			want := contents(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r := openStore(t, dir, Options{})
			if got := contents(r); !reflect.DeepEqual(got, want) {
				t.Errorf("after reopening:\n got %v\nwant %v", got, want)
			}
			if d, _ := r.Index().Get("vec", "v"); math.Abs(float64(d.Vector[0])-0.6) > 1e-6 {
				t.Errorf("vector = %v, want it normalised to [0.6 0.8]", d.Vector)
			}
			res, err := r.Search(context.Background(), index.Query{Collection: "kb", Text: "alpha"})
			if err != nil || len(res.Hits) != 1 || res.Hits[0].Version != 2 {
				t.Errorf("search after reopen = %+v, %v", res, err)
			}
			if st := r.Stats(); len(st) != 2 || st[0].BytesOnDisk <= 0 || st[1].BytesOnDisk <= 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestUnchangedPutsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	if _, err := s.Put("kb", []index.Document{doc("a", 1, "x")}); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()[0].BytesOnDisk
	res, err := s.Put("kb", []index.Document{doc("a", 1, "x")})
	if err != nil || res.Unchanged != 1 {
		t.Fatalf("Put = %+v, %v", res, err)
	}
	if after := s.Stats()[0].BytesOnDisk; after != before {
		t.Errorf("an unchanged put grew the journal from %d to %d bytes", before, after)
	}
}

func TestTornTailIsDroppedWithALogLine(t *testing.T) {
	for _, tail := range []struct {
		name  string
		bytes func(valid []byte) []byte
	}{
		{"half a header", func([]byte) []byte { return []byte{9, 0, 0} }},
		{"short payload", func(v []byte) []byte { return v[:len(v)-3] }},
		{"bad checksum", func(v []byte) []byte { v = slices.Clone(v); v[len(v)-1] ^= 0xff; return v }},
		{"zeroes", func([]byte) []byte { return make([]byte, 40) }},
	} {
		t.Run(tail.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put("kb", []index.Document{doc("kept", 1, "acknowledged")}); err != nil {
				t.Fatal(err)
			}
			journal := s.journalPath(s.gen)
			s.Close()
			valid := appendFrame(nil, EncodeRecord(Record{Kind: kindPut, Collection: "kb", Documents: []index.Document{doc("torn", 1, "never acknowledged")}}))
			f, err := os.OpenFile(journal, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tail.bytes(valid))
			f.Close()
			sizeBefore := fileSize(t, journal)

			var logs syncBuffer // the store logs from background goroutines too
			r := openStore(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if _, ok := r.Index().Get("kb", "kept"); !ok {
				t.Error("the acknowledged document is gone")
			}
			if _, ok := r.Index().Get("kb", "torn"); ok {
				t.Error("the torn document was applied")
			}
			if !strings.Contains(logs.String(), "dropped a torn record") {
				t.Errorf("no log line about the torn record: %s", logs.String())
			}
			if after := fileSize(t, journal); after >= sizeBefore {
				t.Errorf("the torn tail was not truncated: %d -> %d bytes", sizeBefore, after)
			}
			// The repaired journal is no longer the newest; it must read cleanly.
			r.Close()
			openStore(t, dir, Options{})
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestDamageOutsideTheTailStopsOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Put("kb", []index.Document{doc("a", 1, "x")})
	first := s.journalPath(s.gen)
	s.Close()
	// A second generation makes the first one an older journal.
	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Put("kb", []index.Document{doc("b", 1, "y")})
	s2.Close()
	b, _ := os.ReadFile(first)
	b[len(b)-2] ^= 0xff
	os.WriteFile(first, b, 0o600)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "is damaged") || !strings.Contains(err.Error(), first) {
		t.Errorf("Open with a damaged older journal: %v", err)
	}

	dir = t.TempDir()
	s, _ = Open(dir, Options{})
	s.Put("kb", []index.Document{doc("a", 1, "x")})
	s.Compact()
	s.Close()
	snap := filepath.Join(dir, snapshotName)
	b, _ = os.ReadFile(snap)
	os.WriteFile(snap, b[:len(b)-1], 0o600)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Errorf("Open with a truncated snapshot: %v", err)
	}
}

func TestCompactionRemovesCoveredJournals(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{CompactBytes: 4 << 10})
	for i := range 200 {
		if _, err := s.Put("kb", []index.Document{doc(fmt.Sprintf("d%03d", i), 1, strings.Repeat("word ", 20))}); err != nil {
			t.Fatal(err)
		}
	}
	s.bg.Wait()
	gens, _ := s.journalGenerations()
	if len(gens) > 2 {
		t.Errorf("%d journals left after automatic compactions", len(gens))
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); err != nil {
		t.Errorf("no snapshot: %v", err)
	}
	want := contents(s)
	s.Close()
	r := openStore(t, dir, Options{})
	if got := contents(r); !reflect.DeepEqual(got, want) {
		t.Error("contents differ after compaction and reopen")
	}
}

func TestCompactionRunsAlongsideWrites(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{CompactBytes: 2 << 10})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 150 {
				if _, err := s.Put("kb", []index.Document{doc(fmt.Sprintf("w%d-%03d", w, i), 1, "some words")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := s.Compact(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	want := contents(s)
	s.Close()
	r := openStore(t, dir, Options{})
	if got := contents(r); !reflect.DeepEqual(got, want) || len(got["kb/0"]) != 300 {
		t.Errorf("after concurrent compactions: %d documents, want 300", len(got["kb/0"]))
	}
}

func TestOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Open: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(filepath.Join(file, "sub"), Options{}); err == nil || !strings.Contains(err.Error(), "create data directory") {
		t.Errorf("Open under a file: %v", err)
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	s.mu.Lock()
	s.journal.Close() // later writes fail
	s.mu.Unlock()
	if _, err := s.Put("kb", []index.Document{doc("a", 1, "x")}); !errors.Is(err, ErrBroken) {
		t.Fatalf("Put on a broken journal: %v", err)
	}
	if _, ok := s.Index().Get("kb", "a"); ok {
		t.Error("a write that failed to reach the journal is visible")
	}
	if _, err := s.Put("kb", []index.Document{doc("b", 1, "x")}); !errors.Is(err, ErrBroken) {
		t.Errorf("later Put: %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		{Kind: kindCreate, Collection: "kb", Dimension: 384},
		{Kind: kindPut, Collection: "ü", Documents: []index.Document{
			{ID: "a", Version: 1},
			{ID: "b", Version: math.MaxInt64, Title: "t", Text: "x\x00y", Metadata: map[string]string{"k": "v", "": ""}, Vector: []float32{1, -0.5, float32(math.SmallestNonzeroFloat32)}},
		}},
		{Kind: kindDelete, Collection: "kb", IDs: []string{"a", ""}},
		{Kind: kindEnd, Count: 12345},
	}
	for _, rec := range recs {
		got, err := DecodeRecord(EncodeRecord(rec))
		if err != nil {
			t.Fatalf("%+v: %v", rec, err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, rec)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeRecord(Record{Kind: kindCreate, Collection: "kb", Dimension: 3}))
	f.Add(EncodeRecord(Record{Kind: kindPut, Collection: "kb", Documents: []index.Document{{ID: "a", Version: 2, Title: "T", Text: "x", Metadata: map[string]string{"k": "v"}, Vector: []float32{1, 2}}}}))
	f.Add(EncodeRecord(Record{Kind: kindDelete, Collection: "kb", IDs: []string{"a", "b"}}))
	f.Add(EncodeRecord(Record{Kind: kindEnd, Count: 7}))
	f.Add([]byte{})
	f.Add([]byte{kindPut, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{99})
	f.Fuzz(func(t *testing.T, p []byte) {
		rec, err := DecodeRecord(p)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to the same record.
		again, err := DecodeRecord(EncodeRecord(rec))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, rec) && !hasNaN(rec) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, again)
		}
	})
}

func hasNaN(rec Record) bool {
	for _, d := range rec.Documents {
		for _, x := range d.Vector {
			if x != x {
				return true
			}
		}
	}
	return false
}
