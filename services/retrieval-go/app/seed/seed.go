// Package seed loads Markdown documents a worker indexes at start-up. It is
// an opt-in (--seed-dir / RETRIEVAL_SEED_DIR) for running the Go worker on its
// own: seeded documents are whole files without vectors, so they answer BM25
// only. The dev stack and tests leave it off and fill collection "kb" through
// the agent's IngestWorkflow (chunked, embedded, hybrid-searchable).
package seed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
	"github.com/durable-agents/reference/services/retrieval-go/app/store"
)

// Metadata the seed loader sets on its documents.
const (
	SourceKey   = "source"
	SourceValue = "seed"
	HashKey     = "content_sha256"
)

// LoadMarkdownDir reads every regular *.md file directly inside dir, in file
// name order, and turns each into a document: the ID is the file name without
// its extension, the title is the first level-one heading ("# Title") or the
// ID if there is none, and the text is the rest of the file with that heading
// line removed. Markdown syntax is kept; the analyzer treats it as
// punctuation.
func LoadMarkdownDir(dir string) ([]index.Document, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("seed directory %s does not exist", dir)
		case errors.Is(err, fs.ErrPermission):
			return nil, fmt.Errorf("seed directory %s is not readable", dir)
		}
		// ReadDir on a file fails with a syscall error whose text is
		// unhelpful ("not a directory" at best), so say it plainly.
		if fi, statErr := os.Stat(dir); statErr == nil && !fi.IsDir() {
			return nil, fmt.Errorf("seed directory %s is a file, not a directory", dir)
		}
		return nil, fmt.Errorf("read seed directory: %w", err)
	}

	var docs []index.Document
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".md" || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read seed document: %w", err)
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("seed document %s is not valid UTF-8", path)
		}
		docs = append(docs, ParseMarkdown(strings.TrimSuffix(e.Name(), ".md"), string(b)))
	}
	return docs, nil
}

// ParseMarkdown builds a document from the Markdown source of a file whose
// ID is id; see LoadMarkdownDir for the rules. Version and metadata are left
// to Sync.
func ParseMarkdown(id, src string) index.Document {
	src = strings.TrimPrefix(src, "\ufeff")
	src = strings.ReplaceAll(src, "\r\n", "\n")
	lines := strings.Split(src, "\n")

	title := ""
	inFence := false
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		// A "# " inside a fenced code block is a shell comment, not a heading.
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || len(line)-len(trimmed) > 3 {
			continue
		}
		if h, ok := strings.CutPrefix(trimmed, "# "); ok && strings.TrimSpace(h) != "" {
			title = strings.TrimSpace(h)
			lines = append(lines[:i:i], lines[i+1:]...)
			break
		}
	}
	if title == "" {
		title = id
	}
	return index.Document{
		ID:    id,
		Title: title,
		Text:  strings.TrimSpace(strings.Join(lines, "\n")),
	}
}

// ContentHash identifies a seed document's content.
func ContentHash(d index.Document) string {
	sum := sha256.Sum256([]byte(d.Title + "\x00" + d.Text))
	return hex.EncodeToString(sum[:8])
}

// Result says what Sync did.
type Result struct {
	index.PutResult
	Deleted int
}

// Sync makes the collection's seed documents equal docs, through the same
// versioned write path as every other document: a document whose content
// hash matches the stored one is put again with the stored version (a
// no-op, so restarting the worker writes nothing), a changed one with the
// next version, a new one with version 1. Seed documents (metadata
// source=seed) whose file is gone are deleted; documents indexed by other
// means are never touched.
func Sync(st *store.Store, collection string, docs []index.Document) (Result, error) {
	if err := st.CreateCollection(collection, 0); err != nil {
		return Result{}, fmt.Errorf("create collection %q: %w", collection, err)
	}
	keep := make(map[string]bool, len(docs))
	if len(docs) > 0 {
		put := make([]index.Document, len(docs))
		for i, d := range docs {
			hash := ContentHash(d)
			d.Metadata = map[string]string{SourceKey: SourceValue, HashKey: hash}
			d.Version = 1
			if old, ok := st.Index().Get(collection, d.ID); ok {
				d.Version = old.Version + 1
				if old.Metadata[HashKey] == hash {
					d.Version = old.Version
				}
			}
			put[i] = d
			keep[d.ID] = true
		}
		res, err := st.Put(collection, put)
		if err != nil {
			return Result{}, fmt.Errorf("index seed documents: %w", err)
		}
		out := Result{PutResult: res}
		return out, deleteGone(st, collection, keep, &out)
	}
	var out Result
	return out, deleteGone(st, collection, keep, &out)
}

func deleteGone(st *store.Store, collection string, keep map[string]bool, out *Result) error {
	var gone []string
	for _, id := range st.Index().Find(collection, map[string]string{SourceKey: SourceValue}) {
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	res, err := st.Delete(collection, gone)
	if err != nil {
		return fmt.Errorf("delete removed seed documents: %w", err)
	}
	out.Deleted = res.Deleted
	return nil
}
