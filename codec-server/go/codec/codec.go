package codec

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Wire constants (SPEC §2).
const (
	MetadataEncoding    = converter.MetadataEncoding // "encoding"
	MetadataKeyID       = "encryption-key-id"
	EncodingEncrypted   = "binary/encrypted"
	EncodingZlib        = "binary/zlib"
	NonceSize           = 12
	TagSize             = 16
	DefaultInflateLimit = 64 << 20
	// SuggestedCompressionMin is the threshold key ring documents use when a namespace opts
	// in; the default is the key ring's setting, off when it has none (SPEC §2, §4).
	SuggestedCompressionMin = 4096
	// Payloads over twice SampleBytes are compressed only when their first SampleBytes shrink
	// by at least 1/10 at level 1 (SPEC §2), so incompressible data costs a 4 KiB trial.
	SampleBytes = 4096
)

// Codec encrypts payloads with the namespace's active key and decrypts with any key of the
// ring (SPEC §2-3). It is safe for concurrent use.
type Codec struct {
	ring      *KeyRing
	namespace string
	threshold int
	limit     int64

	nonceMu sync.Mutex // guards nonce when it is not crypto/rand
	nonce   io.Reader

	observer Observer // nil: nothing reported
}

var _ converter.PayloadCodec = (*Codec)(nil)

// Option configures a Codec.
type Option func(*Codec) error

// WithCompressionThreshold sets the serialized size at or above which payloads are compressed
// before encryption, overriding the key ring's setting for the namespace (0 disables
// compression, see SPEC §4 on length leaks).
func WithCompressionThreshold(n int) Option {
	return func(c *Codec) error {
		if n < 0 {
			return fmt.Errorf("compression threshold %d is negative", n)
		}
		c.threshold = n
		return nil
	}
}

// WithInflateLimit bounds the decompressed size of one payload (default 64 MiB), so a small
// zlib bomb cannot exhaust memory.
func WithInflateLimit(n int64) Option {
	return func(c *Codec) error {
		if n <= 0 {
			return fmt.Errorf("inflate limit %d is not positive", n)
		}
		c.limit = n
		return nil
	}
}

// WithNonceSource replaces crypto/rand as the nonce source. For tests and test vectors only:
// a repeated nonce under one key breaks GCM.
func WithNonceSource(r io.Reader) Option {
	return func(c *Codec) error {
		if r == nil {
			return errors.New("nil nonce source")
		}
		c.nonce = r
		return nil
	}
}

// New returns a codec that encrypts for namespace. A namespace without an active key yields a
// decrypt-only codec whose Encode fails with ErrNoActiveKey (the codec server uses one).
func New(ring *KeyRing, namespace string, opts ...Option) (*Codec, error) {
	if ring == nil {
		return nil, errors.New("codec: nil key ring")
	}
	c := &Codec{
		ring:      ring,
		namespace: namespace,
		threshold: -1, // the key ring's setting unless an option sets one
		limit:     DefaultInflateLimit,
		nonce:     rand.Reader,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("codec: %w", err)
		}
	}
	if c.threshold < 0 {
		c.threshold = ring.CompressionThreshold(namespace)
	}
	return c, nil
}

// deterministic matches SerializeToString(deterministic=True) so vectors are byte-exact.
var deterministic = proto.MarshalOptions{Deterministic: true}

// Encode implements converter.PayloadCodec.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	key, err := c.ring.ActiveKey(c.namespace)
	if err != nil {
		if c.observer != nil {
			c.observer.Failed(OperationEncode, NoKeyID, FailureReason(err))
		}
		return payloads, err
	}
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if out[i], err = c.encodeOne(key, p); err != nil {
			return payloads, fmt.Errorf("encode payload %d: %w", i, err)
		}
		if c.observer != nil {
			c.observer.Succeeded(OperationEncode, key.id, len(out[i].Data))
		}
	}
	return out, nil
}

func (c *Codec) encodeOne(key Key, p *commonpb.Payload) (*commonpb.Payload, error) {
	// One buffer holds nonce || serialized payload || room for the tag, and GCM seals the
	// serialized bytes in place: one allocation and one copy (the serialization) for the
	// uncompressed path, which is every payload when compression is off.
	size := deterministic.Size(p)
	buf := make([]byte, NonceSize, NonceSize+size+TagSize)
	buf, err := deterministic.MarshalAppend(buf, p)
	if err != nil {
		return nil, fmt.Errorf("serialize payload: %w", err)
	}
	plain := buf[NonceSize:]
	// Never compress what this codec could not inflate again (SPEC §2): a payload over the
	// inflate limit is stored as it is, so everything written stays readable.
	if c.threshold > 0 && len(plain) >= c.threshold && int64(len(plain)) <= c.limit && worthTrying(plain) {
		z, err := deflate(plain)
		if err != nil {
			return nil, err
		}
		if len(z) < len(plain) {
			buf, err = deterministic.MarshalAppend(buf[:NonceSize], &commonpb.Payload{
				Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingZlib)},
				Data:     z,
			})
			if err != nil {
				return nil, fmt.Errorf("serialize compressed payload: %w", err)
			}
		}
	}
	// The compressed form may not fit the buffer sized for the original (its marker adds a few
	// bytes): make room for the tag, or Seal would not seal in place.
	buf = slices.Grow(buf, TagSize)
	plain = buf[NonceSize:]
	if err := c.readNonce(buf[:NonceSize]); err != nil {
		return nil, err
	}
	// In place: dst is plain[:0] and buf has TagSize bytes of spare capacity for the tag.
	sealed := key.aead.Seal(plain[:0], buf[:NonceSize], plain, nil)
	return &commonpb.Payload{
		Metadata: map[string][]byte{
			MetadataEncoding: []byte(EncodingEncrypted),
			MetadataKeyID:    []byte(key.id),
		},
		Data: buf[:NonceSize+len(sealed)],
	}, nil
}

func (c *Codec) readNonce(nonce []byte) error {
	if c.nonce != rand.Reader {
		c.nonceMu.Lock()
		defer c.nonceMu.Unlock()
	}
	if _, err := io.ReadFull(c.nonce, nonce); err != nil {
		return fmt.Errorf("read nonce: %w", err)
	}
	return nil
}

// Decode implements converter.PayloadCodec. Payloads not marked binary/encrypted pass through
// unchanged, so histories written before encryption was enabled still load.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		var err error
		if out[i], err = c.decodeOne(p); err != nil {
			c.observeDecode(p, err)
			return payloads, fmt.Errorf("decode payload %d: %w", i, err)
		}
		if out[i] != p {
			c.observeDecode(p, nil)
		}
	}
	return out, nil
}

// observeDecode reports a decoded (err nil) or refused encrypted payload.
func (c *Codec) observeDecode(p *commonpb.Payload, err error) {
	if c.observer == nil {
		return
	}
	id := string(p.GetMetadata()[MetadataKeyID])
	if err == nil {
		c.observer.Succeeded(OperationDecode, id, len(p.Data))
		return
	}
	label := id
	if _, known := c.ring.keys[id]; !known {
		label = UnknownKeyID
	}
	if id == "" {
		label = NoKeyID
	}
	c.observer.Failed(OperationDecode, label, FailureReason(err))
}

func (c *Codec) decodeOne(p *commonpb.Payload) (*commonpb.Payload, error) {
	if string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
		return p, nil
	}
	id := string(p.Metadata[MetadataKeyID])
	if id == "" {
		return nil, ErrMissingKeyID
	}
	key, ok := c.ring.keys[id]
	if !ok {
		return nil, &UnknownKeyError{KeyID: id}
	}
	if len(p.Data) < NonceSize+TagSize {
		return nil, fmt.Errorf("%w for key id %s: %d bytes, need at least %d", ErrCiphertextTooShort, quoteID(id), len(p.Data), NonceSize+TagSize)
	}
	plain, err := key.aead.Open(nil, p.Data[:NonceSize], p.Data[NonceSize:], nil)
	if err != nil {
		return nil, &DecryptionError{KeyID: id}
	}
	inner, err := parsePayload(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: plaintext under key id %s is not a serialized Payload", ErrMalformedPayload, quoteID(id))
	}
	if string(inner.GetMetadata()[MetadataEncoding]) != EncodingZlib {
		return inner, nil
	}
	inflated, err := inflate(inner.Data, c.limit)
	if err != nil {
		return nil, fmt.Errorf("key id %s: %w", quoteID(id), err)
	}
	outer, err := parsePayload(inflated)
	if err != nil {
		return nil, fmt.Errorf("%w: decompressed plaintext under key id %s is not a serialized Payload", ErrMalformedPayload, quoteID(id))
	}
	return outer, nil
}

// worthTrying is the sampled compressibility check of SPEC §2.
func worthTrying(plain []byte) bool {
	if len(plain) <= 2*SampleBytes {
		return true
	}
	var buf bytes.Buffer
	buf.Grow(SampleBytes + 64)
	if err := zlibTo(&buf, plain[:SampleBytes]); err != nil {
		return false
	}
	return buf.Len()*10 <= SampleBytes*9
}

// writers keeps zlib writers for reuse: a new one allocates about 1 MiB of state, more than
// compressing a sample costs.
var writers = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed)
	return w
}}

// zlibTo writes the RFC 1950 stream of b at level 1 (SPEC §2: any level; the fastest keeps
// compression cheap, and it is the level of the sample check).
func zlibTo(dst io.Writer, b []byte) error {
	w := writers.Get().(*zlib.Writer)
	defer writers.Put(w)
	w.Reset(dst)
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Close()
}

// parsePayload is proto.Unmarshal for the usual shape of a decrypted Payload (metadata entries
// and data, nothing else), except that Data and the metadata values alias b instead of being
// copied: b is a buffer the codec has just allocated and owns, and copying a large payload a
// second time costs as much as decrypting it. Anything else (external payloads, unknown
// fields, a malformed encoding) goes to proto.Unmarshal, which stays the reference; a test
// holds the two to the same results.
func parsePayload(b []byte) (*commonpb.Payload, error) {
	p := &commonpb.Payload{}
	for rest := b; len(rest) > 0; {
		num, value, n := consumeBytesField(rest)
		if n < 0 || (num != 1 && num != 2) {
			return unmarshalPayload(b)
		}
		rest = rest[n:]
		if num == 2 {
			p.Data = value[:len(value):len(value)]
			continue
		}
		var key string
		var val []byte
		for entry := value; len(entry) > 0; {
			num, field, n := consumeBytesField(entry)
			if n < 0 || (num != 1 && num != 2) {
				return unmarshalPayload(b)
			}
			entry = entry[n:]
			if num == 1 {
				if !utf8.Valid(field) {
					return unmarshalPayload(b)
				}
				key = string(field)
			} else {
				val = field[:len(field):len(field)]
			}
		}
		if p.Metadata == nil {
			p.Metadata = make(map[string][]byte)
		}
		p.Metadata[key] = val
	}
	return p, nil
}

// consumeBytesField reads one length-delimited field; n < 0 for anything else.
func consumeBytesField(b []byte) (protowire.Number, []byte, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType {
		return 0, nil, -1
	}
	value, m := protowire.ConsumeBytes(b[n:])
	if m < 0 {
		return 0, nil, -1
	}
	return num, value, n + m
}

func unmarshalPayload(b []byte) (*commonpb.Payload, error) {
	p := &commonpb.Payload{}
	if err := proto.Unmarshal(b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// deflate writes an RFC 1950 stream, as converter.NewZlibCodec does (there at the default level,
// here at level 1: SPEC §2 allows any).
func deflate(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(b)/2 + 64)
	if err := zlibTo(&buf, b); err != nil {
		return nil, fmt.Errorf("compress payload: %w", err)
	}
	return buf.Bytes(), nil
}

// inflate is the SDK's zlib decode with a bound: reading one byte past limit proves the stream
// is too large without inflating all of it.
func inflate(z []byte, limit int64) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("%w: invalid zlib stream", ErrMalformedPayload)
	}
	defer r.Close()
	var buf bytes.Buffer
	buf.Grow(int(min(int64(len(z))*4, limit)))
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: invalid zlib stream", ErrMalformedPayload)
	}
	if n > limit {
		return nil, fmt.Errorf("%w of %d bytes", ErrDecompressedTooLarge, limit)
	}
	return buf.Bytes(), nil
}
