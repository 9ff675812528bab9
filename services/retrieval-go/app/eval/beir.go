// Package eval measures retrieval quality on a BEIR dataset (Thakur et al.,
// 2021) the way trec_eval does, through the same store and index the worker
// uses.
package eval

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Dataset is a BEIR dataset's test split.
type Dataset struct {
	Corpus  []CorpusDoc
	Queries []Query // only queries with judgments, in file order
	// Qrels maps a query id to its judged documents and their relevance.
	Qrels map[string]map[string]int
}

// CorpusDoc is one line of corpus.jsonl.
type CorpusDoc struct {
	ID    string `json:"_id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Query is one test query. Only its text is read: BEIR's queries.jsonl
// carries gold evidence in "metadata" for some datasets, which must not
// leak into retrieval.
type Query struct {
	ID   string `json:"_id"`
	Text string `json:"text"`
}

// LoadDataset reads dir/corpus.jsonl(.gz), dir/queries-test.jsonl (or
// queries.jsonl) and dir/qrels/test.tsv.
func LoadDataset(dir string) (*Dataset, error) {
	ds := &Dataset{Qrels: make(map[string]map[string]int)}
	if err := ds.loadQrels(filepath.Join(dir, "qrels", "test.tsv")); err != nil {
		return nil, err
	}
	corpusPath, err := firstExisting(dir, "corpus.jsonl.gz", "corpus.jsonl")
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	if err := readJSONLines(corpusPath, func(line []byte) error {
		var d CorpusDoc
		if err := json.Unmarshal(line, &d); err != nil {
			return err
		}
		if d.ID == "" {
			return errors.New(`a document has no "_id"`)
		}
		if seen[d.ID] {
			return fmt.Errorf("document id %q occurs twice", d.ID)
		}
		seen[d.ID] = true
		ds.Corpus = append(ds.Corpus, d)
		return nil
	}); err != nil {
		return nil, err
	}
	queriesPath, err := firstExisting(dir, "queries-test.jsonl", "queries.jsonl")
	if err != nil {
		return nil, err
	}
	if err := readJSONLines(queriesPath, func(line []byte) error {
		var q Query
		if err := json.Unmarshal(line, &q); err != nil {
			return err
		}
		if _, judged := ds.Qrels[q.ID]; judged {
			ds.Queries = append(ds.Queries, q)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(ds.Queries) != len(ds.Qrels) {
		return nil, fmt.Errorf("%s has %d of the %d queries judged in qrels/test.tsv", queriesPath, len(ds.Queries), len(ds.Qrels))
	}
	return ds, nil
}

func firstExisting(dir string, names ...string) (string, error) {
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s has none of %s; is it a BEIR dataset directory?", dir, strings.Join(names, ", "))
}

// loadQrels reads a BEIR qrels file: a header line, then
// "query-id<TAB>corpus-id<TAB>score" lines, possibly with CRLF endings.
func (ds *Dataset) loadQrels(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist; is it a BEIR dataset directory?", path)
		}
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 && strings.HasPrefix(line, "query-id") || line == "" {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			return fmt.Errorf("%s line %d: want 3 tab-separated fields, got %d", path, n, len(fields))
		}
		rel, err := strconv.Atoi(fields[2])
		if err != nil {
			return fmt.Errorf("%s line %d: score %q is not an integer", path, n, fields[2])
		}
		if ds.Qrels[fields[0]] == nil {
			ds.Qrels[fields[0]] = make(map[string]int)
		}
		ds.Qrels[fields[0]][fields[1]] = rel
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(ds.Qrels) == 0 {
		return fmt.Errorf("%s holds no judgments", path)
	}
	return nil
}

// readJSONLines calls fn with each non-empty line of a JSON-lines file,
// gunzipping it if its name ends in .gz.
func readJSONLines(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			if ferr := fn(line); ferr != nil {
				return fmt.Errorf("%s line %d: %w", path, n, ferr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// LoadEmbeddings reads a JSON-lines file (gzipped if it ends in .gz) of
// {"id": "...", "vector": [numbers]} objects, one a line, all of one
// dimension.
func LoadEmbeddings(path string) (map[string][]float32, int, error) {
	out := make(map[string][]float32)
	dim := 0
	err := readJSONLines(path, func(line []byte) error {
		var e struct {
			ID     string    `json:"id"`
			Vector []float32 `json:"vector"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return err
		}
		if e.ID == "" || len(e.Vector) == 0 {
			return errors.New(`want {"id": "...", "vector": [numbers]}`)
		}
		if dim == 0 {
			dim = len(e.Vector)
		} else if len(e.Vector) != dim {
			return fmt.Errorf("vector of %q has dimension %d, earlier ones %d", e.ID, len(e.Vector), dim)
		}
		out[e.ID] = e.Vector
		return nil
	})
	return out, dim, err
}
