package seed

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// demoKB is the knowledge base the demo stack seeds; the tests use the same
// files so that the demo and the tests cannot drift apart.
const demoKB = "../../../../ops/demo/knowledge-base"

func TestParseMarkdown(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		wantTitle string
		wantText  string
	}{
		{"heading first", "# Refund policy\n\nRefunds take 5 days.\n", "Refund policy", "Refunds take 5 days."},
		{"no heading falls back to id", "Just text.\n", "doc", "Just text."},
		{"empty file", "", "doc", ""},
		{"heading after preamble", "Intro line.\n# Title\nBody", "Title", "Intro line.\nBody"},
		{"second-level heading is not a title", "## Sub\n# Real\nBody", "Real", "## Sub\nBody"},
		{"only the first h1 is removed", "# One\nA\n# Two\nB", "One", "A\n# Two\nB"},
		{"crlf and bom", "\ufeff# Title\r\nBody\r\n", "Title", "Body"},
		{"hash without space is not a heading", "#hashtag\nBody", "doc", "#hashtag\nBody"},
		{"empty heading is skipped", "# \n# Title\nBody", "Title", "# \nBody"},
		{"comment in code fence is not a heading", "```sh\n# install\n```\n# Title\nBody", "Title", "```sh\n# install\n```\nBody"},
		{"indented code is not a heading", "    # code\n# Title", "Title", "# code"},
		{"title is trimmed", "#   Spaced title  \nBody", "Spaced title", "Body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseMarkdown("doc", tt.src)
			want := index.Document{ID: "doc", Title: tt.wantTitle, Text: tt.wantText}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseMarkdown(%q) =\n%+v\nwant\n%+v", tt.src, got, want)
			}
		})
	}
}

func TestLoadMarkdownDirDemoKnowledgeBase(t *testing.T) {
	docs, err := LoadMarkdownDir(demoKB)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 4 {
		t.Errorf("demo knowledge base has %d documents, want at least 4", len(docs))
	}
	byID := make(map[string]index.Document)
	for _, d := range docs {
		byID[d.ID] = d
		if d.Title == d.ID {
			t.Errorf("%s has no '# ' heading", d.ID)
		}
		if strings.HasPrefix(d.Text, "# ") || d.Text == "" {
			t.Errorf("%s: text %.40q should be the body without the title", d.ID, d.Text)
		}
	}
	// The contract example (nexus/retrieval/examples) names this document.
	if got := byID["refund-policy"].Title; got != "Refund policy" {
		t.Errorf("refund-policy title = %q, want %q", got, "Refund policy")
	}
}

func TestLoadMarkdownDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.md", "# Bee\nbuzz")
	write("a.md", "# Ant\ncolony")
	write("notes.txt", "# ignored")
	write("README.MD", "# ignored too: only .md counts")
	if err := os.Mkdir(filepath.Join(dir, "sub.md"), 0o700); err != nil {
		t.Fatal(err)
	}

	docs, err := LoadMarkdownDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []index.Document{{ID: "a", Title: "Ant", Text: "colony"}, {ID: "b", Title: "Bee", Text: "buzz"}}
	if !reflect.DeepEqual(docs, want) {
		t.Errorf("LoadMarkdownDir = %+v, want %+v", docs, want)
	}

	write("bad.md", "\xff\xfe")
	if _, err := LoadMarkdownDir(dir); err == nil || !strings.Contains(err.Error(), "bad.md is not valid UTF-8") {
		t.Errorf("invalid UTF-8: error = %v", err)
	}
}

func TestLoadMarkdownDirErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file.md")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{"missing", filepath.Join(dir, "missing"), "does not exist"},
		{"file", file, "is a file, not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadMarkdownDir(tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.dir) {
				t.Errorf("LoadMarkdownDir(%s) error = %v, want it to name the directory and say %q", tt.dir, err, tt.want)
			}
		})
	}
}

func TestSyncIsVersionedByContent(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sync := func(docs ...index.Document) Result {
		t.Helper()
		res, err := Sync(st, "kb", docs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a := index.Document{ID: "a", Title: "A", Text: "alpha"}
	b := index.Document{ID: "b", Title: "B", Text: "beta"}
	if got := sync(a, b); got.Added != 2 {
		t.Errorf("first sync = %+v, want 2 added", got)
	}
	// Another document in the collection, not from the seed directory.
	if _, err := st.Put("kb", []index.Document{{ID: "ingested", Version: 7, Text: "x"}}); err != nil {
		t.Fatal(err)
	}
	before := st.Stats()[0].BytesOnDisk
	if got := sync(a, b); got.Unchanged != 2 || got.Added+got.Replaced+got.Deleted != 0 {
		t.Errorf("re-seeding the same files = %+v, want 2 unchanged", got)
	}
	if after := st.Stats()[0].BytesOnDisk; after != before {
		t.Errorf("re-seeding wrote %d bytes", after-before)
	}
	a.Text = "alpha, edited"
	if got := sync(a); got.Replaced != 1 || got.Deleted != 1 {
		t.Errorf("editing a and removing b = %+v, want 1 replaced and 1 deleted", got)
	}
	d, _ := st.Index().Get("kb", "a")
	if d.Version != 2 || d.Metadata[SourceKey] != SourceValue || d.Metadata[HashKey] != ContentHash(a) {
		t.Errorf("a = %+v", d)
	}
	if _, ok := st.Index().Get("kb", "ingested"); !ok {
		t.Error("sync deleted a document that was not a seed document")
	}
	if got := sync(); got.Deleted != 1 {
		t.Errorf("an empty seed directory = %+v, want a deleted", got)
	}
}
