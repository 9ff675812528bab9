package codec

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Environment variables that select a key source (SPEC §5.2).
const (
	EnvKeyRingFile = "CODEC_KEYRING_FILE"
	EnvKeyRingDir  = "CODEC_KEYRING_DIR"
	EnvKeyRing     = "CODEC_KEYRING"
)

// KeySource loads a key ring. A KMS or Vault source implements it without touching codec code.
type KeySource interface {
	Load(ctx context.Context) (*KeyRing, error)
}

// FileKeySource reads a key ring JSON document (SPEC §5.1) from a file.
type FileKeySource struct {
	Path string
}

func (s FileKeySource) Load(ctx context.Context) (*KeyRing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	doc, err := os.ReadFile(s.Path)
	if err != nil {
		// *PathError names the path and the OS reason only.
		return nil, fmt.Errorf("read key ring file: %w", err)
	}
	defer clear(doc)
	ring, err := ParseKeyRing(doc)
	if err != nil {
		return nil, fmt.Errorf("key ring file %s: %w", s.Path, err)
	}
	return ring, nil
}

// DirKeySource reads the layout of a Kubernetes Secret mounted as a volume: one file
// "<key-id>.key" per key holding its base64 material, and a file "active" with lines
// "namespace=key-id" ("*=key-id" for the default). Other files and hidden entries (the
// "..data" links Kubernetes adds) are ignored.
type DirKeySource struct {
	Dir string
}

// activeFile is the name of the namespace -> key id file in a DirKeySource.
const activeFile = "active"

// compressionFile is the name of the namespace -> compression threshold file in a DirKeySource.
const compressionFile = "compression"

func (s DirKeySource) Load(ctx context.Context) (*KeyRing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("read key ring directory: %w", err)
	}
	var keys []Key
	for _, e := range entries {
		name := e.Name()
		id, ok := strings.CutSuffix(name, ".key")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(s.Dir, name)
		// Stat, not the DirEntry type: Secret volume entries are symlinks into ..data.
		if fi, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("key ring directory %s: %w", s.Dir, err)
		} else if fi.IsDir() {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("key ring directory %s: %w", s.Dir, err)
		}
		k, err := ParseKey(id, strings.TrimSpace(string(raw)))
		clear(raw)
		if err != nil {
			// The error names the key id, hence the file; the file name itself is not quoted
			// because a key pasted as a file name would be echoed.
			return nil, fmt.Errorf("key ring directory %s: %w", s.Dir, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key ring directory %s: %w: no <key-id>.key files", s.Dir, ErrInvalidKeyRing)
	}
	active, err := readPairsFile(filepath.Join(s.Dir, activeFile), activeFile, "namespace=key-id")
	if err != nil {
		return nil, fmt.Errorf("key ring directory %s: %w", s.Dir, err)
	}
	ring, err := NewKeyRing(keys, active)
	if err != nil {
		return nil, fmt.Errorf("key ring directory %s: %w", s.Dir, err)
	}
	// The optional compression file (SPEC §5.2): "namespace=bytes" lines. The owners file is
	// the codec server's business and is ignored here, as every other file.
	pairs, err := readPairsFile(filepath.Join(s.Dir, compressionFile), compressionFile, "namespace=bytes")
	if err != nil {
		return nil, fmt.Errorf("key ring directory %s: %w", s.Dir, err)
	}
	compression := make(map[string]int, len(pairs))
	for ns, v := range pairs {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("key ring directory %s: %w: file %q: namespace %s: want a whole number of bytes (0 is off)", s.Dir, ErrInvalidKeyRing, compressionFile, quoteID(ns))
		}
		compression[ns] = n
	}
	if err := ring.setCompression(compression); err != nil {
		return nil, fmt.Errorf("key ring directory %s: %w", s.Dir, err)
	}
	return ring, nil
}

// readPairsFile parses "name=value" lines (the active file's namespace=key-id, the compression
// file's namespace=bytes). Blank lines and lines starting with "#" are ignored; a missing file
// is an empty map (for active, a decrypt-only ring).
func readPairsFile(path, name, want string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	active := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ns, id, ok := strings.Cut(line, "=")
		ns, id = strings.TrimSpace(ns), strings.TrimSpace(id)
		if !ok || ns == "" || id == "" {
			// The line itself is not quoted: it may be a key pasted into the wrong file.
			return nil, fmt.Errorf("%w: file %q line %d: want %s", ErrInvalidKeyRing, name, n, want)
		}
		if _, dup := active[ns]; dup {
			return nil, fmt.Errorf("%w: file %q line %d: namespace %s listed twice", ErrInvalidKeyRing, name, n, quoteID(ns))
		}
		active[ns] = id
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: file %q: %w", ErrInvalidKeyRing, name, err)
	}
	return active, nil
}

// EnvKeySource reads a key ring JSON document from an environment variable (CODEC_KEYRING
// when Var is empty).
type EnvKeySource struct {
	Var string
}

func (s EnvKeySource) Load(ctx context.Context) (*KeyRing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := s.Var
	if name == "" {
		name = EnvKeyRing
	}
	doc := os.Getenv(name)
	if strings.TrimSpace(doc) == "" {
		return nil, fmt.Errorf("environment variable %s is not set or empty", name)
	}
	ring, err := ParseKeyRing([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return ring, nil
}

// KeySourceFromEnv returns the key source selected by exactly one of CODEC_KEYRING_FILE,
// CODEC_KEYRING_DIR and CODEC_KEYRING (SPEC §5.2). An empty or blank variable counts as unset,
// as in the Python library.
func KeySourceFromEnv() (KeySource, error) {
	var set []string
	var src KeySource
	if v := strings.TrimSpace(os.Getenv(EnvKeyRingFile)); v != "" {
		set, src = append(set, EnvKeyRingFile), FileKeySource{Path: v}
	}
	if v := strings.TrimSpace(os.Getenv(EnvKeyRingDir)); v != "" {
		set, src = append(set, EnvKeyRingDir), DirKeySource{Dir: v}
	}
	if strings.TrimSpace(os.Getenv(EnvKeyRing)) != "" {
		set, src = append(set, EnvKeyRing), EnvKeySource{Var: EnvKeyRing}
	}
	switch len(set) {
	case 1:
		return src, nil
	case 0:
		return nil, fmt.Errorf("no encryption key ring configured: set exactly one of %s, %s or %s (see codec-server/SPEC.md §5)",
			EnvKeyRingFile, EnvKeyRingDir, EnvKeyRing)
	default:
		slices.Sort(set)
		return nil, fmt.Errorf("several encryption key ring sources are set (%s): set exactly one of %s, %s or %s",
			strings.Join(set, ", "), EnvKeyRingFile, EnvKeyRingDir, EnvKeyRing)
	}
}

// LoadKeyRingFromEnv loads the key ring from the source KeySourceFromEnv selects.
func LoadKeyRingFromEnv(ctx context.Context) (*KeyRing, error) {
	src, err := KeySourceFromEnv()
	if err != nil {
		return nil, err
	}
	return src.Load(ctx)
}
