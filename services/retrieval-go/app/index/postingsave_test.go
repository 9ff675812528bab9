package index

import (
	"context"
	"fmt"
	"reflect"
	"testing"
)

func postingsDocs() []Document {
	var docs []Document
	for i := range 40 {
		docs = append(docs, Document{ID: fmt.Sprintf("d%02d", i), Version: 1, Title: fmt.Sprintf("title %d", i%5),
			Text: fmt.Sprintf("alpha beta %d gamma %d delta", i%7, i%3)})
	}
	return docs
}

// heldIndex is a fresh index with docs registered unanalysed, as a store
// loading a snapshot leaves it before attaching saved postings.
func heldIndex(t testing.TB, docs []Document) *Index {
	ix := New(Options{})
	ix.HoldPostings()
	if _, err := ix.Put("c", docs, nil); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestAttachedPostingsAnswerLikeAnalysis(t *testing.T) {
	docs := postingsDocs()
	built := New(Options{})
	if _, err := built.Put("c", docs, nil); err != nil {
		t.Fatal(err)
	}
	// A replaced and a deleted document leave dead postings, which the
	// saved postings drop; the snapshot holds only live documents.
	if _, err := built.Put("c", []Document{{ID: "d03", Version: 2, Text: "epsilon alpha"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := built.Delete("c", []string{"d05"}, nil); err != nil {
		t.Fatal(err)
	}
	snap := built.Snapshot(nil)[0]
	var live []Document
	for _, d := range snap.Documents {
		live = append(live, *d)
	}
	loaded := heldIndex(t, live)
	if err := loaded.AttachPostings("c", snap.Postings); err != nil {
		t.Fatal(err)
	}
	if n := loaded.ReleasePostings(); len(n) != 0 {
		t.Errorf("documents analysed again: %v", n)
	}
	for _, q := range []string{"alpha", "beta 3 gamma", "epsilon", "title 2 delta", "nothing"} {
		for _, search := range []func(context.Context, Query) (Result, error){loaded.Search, loaded.SearchBruteForce} {
			got, err1 := search(context.Background(), Query{Collection: "c", Text: q, TopK: 10})
			want, err2 := built.Search(context.Background(), Query{Collection: "c", Text: q, TopK: 10})
			if err1 != nil || err2 != nil || !reflect.DeepEqual(got.Hits, want.Hits) {
				t.Fatalf("%q: loaded %v, built %v (%v %v)", q, got.Hits, want.Hits, err1, err2)
			}
		}
	}
}

func TestAttachPostingsRejectsWhatDoesNotFit(t *testing.T) {
	docs := postingsDocs()
	built := New(Options{})
	if _, err := built.Put("c", docs, nil); err != nil {
		t.Fatal(err)
	}
	good := built.Snapshot(nil)[0].Postings
	for _, tc := range []struct {
		name string
		docs []Document
		data []byte
	}{
		{"fewer documents", docs[:30], good},
		{"truncated", docs, good[:len(good)-3]},
		{"trailing byte", docs, append(append([]byte(nil), good...), 0)},
		{"other version", docs, append([]byte{99}, good[1:]...)},
		{"empty", docs, nil},
	} {
		ix := heldIndex(t, tc.docs)
		if err := ix.AttachPostings("c", tc.data); err == nil {
			t.Errorf("%s: attached", tc.name)
		}
		ix.ReleasePostings() // falls back to analysing
		res, err := ix.Search(context.Background(), Query{Collection: "c", Text: "alpha", TopK: 100})
		if err != nil || len(res.Hits) != len(tc.docs) {
			t.Errorf("%s: after falling back %d hits for a word in every document, err %v", tc.name, len(res.Hits), err)
		}
	}
}

func FuzzAttachPostings(f *testing.F) {
	docs := postingsDocs()
	built := New(Options{})
	if _, err := built.Put("c", docs, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(built.Snapshot(nil)[0].Postings)
	f.Fuzz(func(t *testing.T, data []byte) {
		ix := heldIndex(t, docs)
		_ = ix.AttachPostings("c", data) // must not panic
		ix.ReleasePostings()
		if _, err := ix.Search(context.Background(), Query{Collection: "c", Text: "alpha gamma", TopK: 5}); err != nil {
			t.Fatal(err)
		}
	})
}
