// Package seed loads the documents a worker indexes at start-up.
package seed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// LoadMarkdownDir reads every regular *.md file directly inside dir, in file
// name order, and turns each into a document: the ID is the file name without
// its extension, the title is the first level-one heading ("# Title") or the
// ID if there is none, and the text is the rest of the file with that heading
// line removed. Markdown syntax is kept; the tokenizer treats it as
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
// ID is id; see LoadMarkdownDir for the rules.
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
