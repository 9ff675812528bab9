package seed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
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
			if got != want {
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
	if len(docs) != len(want) || docs[0] != want[0] || docs[1] != want[1] {
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
