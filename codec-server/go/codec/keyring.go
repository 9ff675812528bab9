package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

const (
	// KeySize is the size of an AES-256 key in bytes.
	KeySize = 32
	// DefaultNamespace is the active-map entry used for namespaces without their own entry.
	DefaultNamespace = "*"
	maxKeyIDLen      = 64
)

// Key is one named AES-256 key. It keeps only the initialised AEAD, not a copy of the raw
// material, and prints as its id only: no verb of the fmt package shows the material.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey validates id and material and returns a Key. The caller may zero material afterwards.
func NewKey(id string, material []byte) (Key, error) {
	if err := ValidateKeyID(id); err != nil {
		return Key{}, err
	}
	if len(material) != KeySize {
		return Key{}, fmt.Errorf("%w: key %s is %d bytes, want %d", ErrInvalidKeyRing, quoteID(id), len(material), KeySize)
	}
	block, err := aes.NewCipher(material)
	if err != nil {
		// Unreachable for 32-byte keys; the underlying error carries no material.
		return Key{}, fmt.Errorf("%w: key %s: %w", ErrInvalidKeyRing, quoteID(id), err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("%w: key %s: %w", ErrInvalidKeyRing, quoteID(id), err)
	}
	return Key{id: id, aead: aead}, nil
}

// ParseKey decodes a standard base64 key (padding optional).
func ParseKey(id, encoded string) (Key, error) {
	if err := ValidateKeyID(id); err != nil {
		return Key{}, err
	}
	material, err := decodeKeyBase64(encoded)
	if err != nil {
		return Key{}, fmt.Errorf("%w: key %s %w", ErrInvalidKeyRing, quoteID(id), err)
	}
	defer clear(material)
	return NewKey(id, material)
}

// ID returns the key id.
func (k Key) ID() string { return k.id }

func (k Key) String() string   { return fmt.Sprintf("Key(%s)", k.id) }
func (k Key) GoString() string { return fmt.Sprintf("codec.Key{id: %q, material: <redacted>}", k.id) }

// Format makes every verb (%x and %d included, which would otherwise walk the struct) print
// the redacted form.
func (k Key) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, k.GoString())
		return
	}
	io.WriteString(f, k.String())
}

// ValidateKeyID reports whether id is 1 to 64 characters from [A-Za-z0-9._-].
func ValidateKeyID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty key id", ErrInvalidKeyRing)
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("%w: key id %s is longer than %d characters", ErrInvalidKeyRing, quoteID(id), maxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: key id %s has characters outside [A-Za-z0-9._-]", ErrInvalidKeyRing, quoteID(id))
		}
	}
	return nil
}

// decodeKeyBase64 accepts standard base64 with or without padding, and nothing else (no
// whitespace, no URL alphabet), like the Python library. Its errors never include the input.
func decodeKeyBase64(s string) ([]byte, error) {
	unpadded := strings.TrimRight(s, "=")
	if len(s)-len(unpadded) > 2 {
		return nil, errors.New("is not valid base64 (too much padding)")
	}
	for i := 0; i < len(unpadded); i++ {
		c := unpadded[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, errors.New("is not valid base64 (standard alphabet A-Z a-z 0-9 + /)")
		}
	}
	b, err := base64.RawStdEncoding.DecodeString(unpadded)
	if err != nil {
		return nil, errors.New("is not valid base64 (bad length)")
	}
	if len(b) != KeySize {
		clear(b)
		return nil, fmt.Errorf("decodes to %d bytes; AES-256 keys must be exactly %d bytes (generate one with: openssl rand -base64 32)", len(b), KeySize)
	}
	return b, nil
}

// KeyRing holds the keys usable for decryption and, per namespace, the active key id used for
// encryption ("*" is the default). It is immutable: rotate by loading a new ring.
type KeyRing struct {
	keys   map[string]Key
	active map[string]string
	// compression: namespace ("*" default) -> smallest serialized payload to compress; absent
	// or 0 is off (SPEC §4: compression next to attacker text leaks secrets by length).
	compression map[string]int
}

// NewKeyRing builds a key ring. Key ids must be unique, there must be at least one key, and
// every id in active must name one of the keys. active may be empty (a decrypt-only ring).
func NewKeyRing(keys []Key, active map[string]string) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrInvalidKeyRing)
	}
	r := &KeyRing{keys: make(map[string]Key, len(keys)), active: make(map[string]string, len(active))}
	for _, k := range keys {
		if k.aead == nil {
			return nil, fmt.Errorf("%w: uninitialised Key (use NewKey or ParseKey)", ErrInvalidKeyRing)
		}
		if _, dup := r.keys[k.id]; dup {
			return nil, fmt.Errorf("%w: duplicate key id %s", ErrInvalidKeyRing, quoteID(k.id))
		}
		r.keys[k.id] = k
	}
	for _, ns := range slices.Sorted(maps.Keys(active)) {
		id := active[ns]
		if ns == "" || ns != strings.TrimSpace(ns) {
			return nil, fmt.Errorf("%w: active map has an empty or space-padded namespace name (use %q for the default)", ErrInvalidKeyRing, DefaultNamespace)
		}
		if _, ok := r.keys[id]; !ok {
			return nil, fmt.Errorf("%w: active key for namespace %s is %s, which is not in keys", ErrInvalidKeyRing, quoteID(ns), quoteID(id))
		}
		r.active[ns] = id
	}
	return r, nil
}

// keyRingDocument is the JSON document of SPEC §5.1.
type keyRingDocument struct {
	Keys   map[string]string `json:"keys"`
	Active map[string]string `json:"active"`
	// Owners records which namespaces a key encrypted for after it stopped being active. Only
	// the codec server uses it (to refuse keys of other namespaces); workers check it and
	// otherwise ignore it, since decryption picks the key by the payload's id.
	Owners map[string][]string `json:"owners"`
	// Compression opts namespaces into compression before encryption (SPEC §5.1).
	Compression map[string]int `json:"compression"`
}

// ParseKeyRing parses a key ring JSON document (SPEC §5.1). Errors name key ids and JSON
// offsets, never values.
func ParseKeyRing(doc []byte) (*KeyRing, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	var d keyRingDocument
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidKeyRing, describeJSONError(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON document", ErrInvalidKeyRing)
	}
	if d.Keys == nil {
		return nil, fmt.Errorf("%w: missing \"keys\"", ErrInvalidKeyRing)
	}
	keys := make([]Key, 0, len(d.Keys))
	for _, id := range slices.Sorted(maps.Keys(d.Keys)) {
		k, err := ParseKey(id, d.Keys[id])
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	for _, id := range slices.Sorted(maps.Keys(d.Owners)) {
		if _, ok := d.Keys[id]; !ok {
			return nil, fmt.Errorf("%w: \"owners\" names %s, which is not in keys", ErrInvalidKeyRing, quoteID(id))
		}
		names := d.Owners[id]
		if len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return !validOwner(n) }) {
			return nil, fmt.Errorf("%w: owners of %s must be a non-empty list of namespace names (or \"*\")", ErrInvalidKeyRing, quoteID(id))
		}
	}
	ring, err := NewKeyRing(keys, d.Active)
	if err != nil {
		return nil, err
	}
	if err := ring.setCompression(d.Compression); err != nil {
		return nil, err
	}
	return ring, nil
}

// setCompression validates and sets the per-namespace compression thresholds.
func (r *KeyRing) setCompression(compression map[string]int) error {
	for _, ns := range slices.Sorted(maps.Keys(compression)) {
		if !validOwner(ns) {
			return fmt.Errorf("%w: compression entry for an invalid namespace name", ErrInvalidKeyRing)
		}
		if compression[ns] < 0 {
			return fmt.Errorf("%w: compression for namespace %s must be a whole number of bytes >= 0 (0 is off)", ErrInvalidKeyRing, quoteID(ns))
		}
	}
	r.compression = maps.Clone(compression)
	return nil
}

// CompressionThreshold is the smallest serialized payload that namespace compresses: its own
// entry, else "*", else 0 (off).
func (r *KeyRing) CompressionThreshold(namespace string) int {
	if n, ok := r.compression[namespace]; ok {
		return n
	}
	return r.compression[DefaultNamespace]
}

// validOwner accepts "*" or a namespace name ([A-Za-z0-9._-], 1-255 characters).
func validOwner(name string) bool {
	if name == DefaultNamespace {
		return true
	}
	if len(name) == 0 || len(name) > 255 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// describeJSONError turns a JSON error into text without the input: encoding/json's syntax
// errors quote the offending character, which may belong to a key.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return `the document must be a JSON object with "keys" and "active"`
		}
		return fmt.Sprintf("JSON field %q has the wrong type (want %s)", typ.Field, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated JSON document"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// Only top-level fields can be unknown (keys and active are maps): names, not values.
		return "unexpected " + strings.TrimPrefix(err.Error(), "json: ") + " (want \"keys\", \"active\" and \"owners\")"
	default:
		return "malformed JSON document"
	}
}

// Key returns the key with the given id.
func (r *KeyRing) Key(id string) (Key, bool) {
	k, ok := r.keys[id]
	return k, ok
}

// KeyIDs returns the ids of all keys, sorted.
func (r *KeyRing) KeyIDs() []string { return slices.Sorted(maps.Keys(r.keys)) }

// Active returns a copy of the namespace -> active key id map.
func (r *KeyRing) Active() map[string]string { return maps.Clone(r.active) }

// ActiveKey returns the key used to encrypt for namespace: its own entry, else "*".
func (r *KeyRing) ActiveKey(namespace string) (Key, error) {
	id, ok := r.active[namespace]
	if !ok {
		id, ok = r.active[DefaultNamespace]
	}
	if !ok {
		return Key{}, &NoActiveKeyError{Namespace: namespace}
	}
	return r.keys[id], nil
}

// String, GoString and Format use value receivers so that a dereferenced KeyRing prints
// redacted too.
func (r KeyRing) String() string {
	var b strings.Builder
	b.WriteString("KeyRing(keys=[")
	b.WriteString(strings.Join(r.KeyIDs(), " "))
	b.WriteString("] active={")
	for i, ns := range slices.Sorted(maps.Keys(r.active)) {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%s", ns, r.active[ns])
	}
	b.WriteString("})")
	return b.String()
}

func (r KeyRing) GoString() string {
	return fmt.Sprintf("&codec.KeyRing{keys: %#v, active: %#v, material: <redacted>}", r.KeyIDs(), r.active)
}

// Format keeps every verb on the redacted forms (see Key.Format).
func (r KeyRing) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, r.GoString())
		return
	}
	io.WriteString(f, r.String())
}
