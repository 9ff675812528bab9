package codec

import (
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

func TestRoundTrip(t *testing.T) {
	random := make([]byte, 10000)
	rand.Read(random)
	tests := []struct {
		name       string
		payload    *commonpb.Payload
		threshold  int
		compressed bool // whether the inner payload is expected to be binary/zlib
	}{
		{name: "small json", payload: jsonPayload(`{"a":1}`), threshold: SuggestedCompressionMin},
		{name: "empty payload", payload: &commonpb.Payload{}, threshold: SuggestedCompressionMin},
		{name: "nil metadata", payload: &commonpb.Payload{Data: []byte("x")}, threshold: SuggestedCompressionMin},
		{name: "binary/null", payload: &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/null")}}, threshold: SuggestedCompressionMin},
		{name: "large compressible", payload: jsonPayload(`"` + strings.Repeat("hello world ", 2000) + `"`), threshold: SuggestedCompressionMin, compressed: true},
		{name: "large compressible, compression disabled", payload: jsonPayload(`"` + strings.Repeat("a", 50000) + `"`), threshold: 0},
		{name: "large incompressible", payload: &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: random}, threshold: SuggestedCompressionMin},
		{name: "exactly at threshold", payload: jsonPayload(strings.Repeat("b", 100)), threshold: proto.Size(jsonPayload(strings.Repeat("b", 100))), compressed: true},
		{name: "one below threshold", payload: jsonPayload(strings.Repeat("b", 100)), threshold: proto.Size(jsonPayload(strings.Repeat("b", 100))) + 1},
		{name: "many metadata entries", payload: &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "z": nil, "a": []byte("1"), "messageType": []byte("x.Y")}, Data: []byte("{}")}, threshold: SuggestedCompressionMin},
	}
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCodec(t, ring, "agents", WithCompressionThreshold(tt.threshold))
			enc, err := c.Encode([]*commonpb.Payload{tt.payload})
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			e := enc[0]
			if got := string(e.Metadata[MetadataEncoding]); got != EncodingEncrypted {
				t.Errorf("encoding = %q, want %q", got, EncodingEncrypted)
			}
			if got := string(e.Metadata[MetadataKeyID]); got != "k1" {
				t.Errorf("key id = %q, want k1", got)
			}
			if len(e.Metadata) != 2 {
				t.Errorf("outer metadata has %d entries, want exactly 2", len(e.Metadata))
			}
			if len(tt.payload.Data) > 8 && bytes.Contains(e.Data, tt.payload.Data[:8]) {
				t.Errorf("ciphertext contains plaintext")
			}
			inner := openWith(t, testMaterial("k1"), e.Data)
			if got := string(inner.Metadata[MetadataEncoding]) == EncodingZlib; got != tt.compressed {
				t.Errorf("inner payload compressed = %v, want %v", got, tt.compressed)
			}
			dec, err := c.Decode(enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			assertPayloadsEqual(t, dec, []*commonpb.Payload{tt.payload})
		})
	}
}

// openWith decrypts with a GCM built here, independently of the codec's key handling.
func openWith(t *testing.T, material, data []byte) *commonpb.Payload {
	t.Helper()
	k, err := NewKey("check", material)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := k.aead.Open(nil, data[:NonceSize], data[NonceSize:], nil)
	if err != nil {
		t.Fatalf("independent open: %v", err)
	}
	p := &commonpb.Payload{}
	if err := proto.Unmarshal(plain, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncodeUsesFreshNonces(t *testing.T) {
	c := mustCodec(t, mustRing(t, map[string]string{"*": "k1"}, "k1"), "agents")
	p := jsonPayload(`"same"`)
	enc, err := c.Encode([]*commonpb.Payload{p, p})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(enc[0].Data[:NonceSize], enc[1].Data[:NonceSize]) {
		t.Fatal("two payloads share a nonce")
	}
}

func TestNonceSource(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, NonceSize)
	c := mustCodec(t, mustRing(t, map[string]string{"*": "k1"}, "k1"), "agents", WithNonceSource(bytes.NewReader(nonce)))
	enc, err := c.Encode([]*commonpb.Payload{jsonPayload("1")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc[0].Data[:NonceSize], nonce) {
		t.Fatalf("nonce = %x, want %x", enc[0].Data[:NonceSize], nonce)
	}
	// The reader is exhausted: the codec must fail, not reuse or zero a nonce.
	if _, err := c.Encode([]*commonpb.Payload{jsonPayload("2")}); err == nil {
		t.Fatal("Encode with an exhausted nonce source succeeded")
	}
}

func TestPassThrough(t *testing.T) {
	c := mustCodec(t, mustRing(t, map[string]string{"*": "k1"}, "k1"), "agents")
	sdkZlib, err := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{jsonPayload("1")})
	if err != nil {
		t.Fatal(err)
	}
	in := []*commonpb.Payload{
		jsonPayload(`{"plain":true}`),
		{},
		nil,
		{Metadata: map[string][]byte{MetadataKeyID: []byte("k1")}, Data: []byte("not encrypted")},
		{Metadata: map[string][]byte{MetadataEncoding: []byte("binary/ENCRYPTED")}, Data: []byte("case matters")},
		sdkZlib[0],
	}
	out, err := c.Decode(in)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	for i := range in {
		if out[i] != in[i] {
			t.Errorf("payload %d: not passed through unchanged", i)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	old := mustRing(t, map[string]string{"*": "k-old"}, "k-old")
	oldCodec := mustCodec(t, old, "agents")
	written, err := oldCodec.Encode([]*commonpb.Payload{jsonPayload(`"before rotation"`)})
	if err != nil {
		t.Fatal(err)
	}

	// Rotate: the new key becomes active, the old one stays for decryption.
	rotated := mustRing(t, map[string]string{"*": "k-new", "business": "k-old"}, "k-new", "k-old")
	c := mustCodec(t, rotated, "agents")
	fresh, err := c.Encode([]*commonpb.Payload{jsonPayload(`"after rotation"`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(fresh[0].Metadata[MetadataKeyID]); got != "k-new" {
		t.Errorf("new payload key id = %q, want k-new", got)
	}
	biz, err := mustCodec(t, rotated, "business").Encode([]*commonpb.Payload{jsonPayload("1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(biz[0].Metadata[MetadataKeyID]); got != "k-old" {
		t.Errorf("business namespace key id = %q, want k-old (per-namespace entry)", got)
	}
	dec, err := c.Decode(append(written, fresh...))
	if err != nil {
		t.Fatalf("rotated ring cannot decode: %v", err)
	}
	assertPayloadsEqual(t, dec, []*commonpb.Payload{jsonPayload(`"before rotation"`), jsonPayload(`"after rotation"`)})

	// Retiring the old key too early is reported with its id.
	retired := mustRing(t, map[string]string{"*": "k-new"}, "k-new")
	_, err = mustCodec(t, retired, "agents").Decode(written)
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || uk.KeyID != "k-old" {
		t.Fatalf("decode with retired key: err = %v, want UnknownKeyError for k-old", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1", "k2")
	c := mustCodec(t, ring, "agents", WithInflateLimit(1000))
	good, err := c.Encode([]*commonpb.Payload{jsonPayload(`"x"`)})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(id string, data []byte) *commonpb.Payload {
		md := map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted)}
		if id != "" {
			md[MetadataKeyID] = []byte(id)
		}
		return &commonpb.Payload{Metadata: md, Data: data}
	}
	seal := func(inner []byte) []byte {
		nonce := make([]byte, NonceSize)
		k, _ := ring.Key("k1")
		return k.aead.Seal(nonce, nonce, inner, nil)
	}
	zlibOf := func(b []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	compressedInner := func(z []byte) []byte {
		b, _ := proto.Marshal(&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(EncodingZlib)}, Data: z})
		return b
	}
	bomb := compressedInner(zlibOf(make([]byte, 5000)))
	corruptZ := zlibOf([]byte("hello hello hello"))
	corruptZ[len(corruptZ)-1] ^= 1 // breaks the adler32 checksum
	tampered := bytes.Clone(good[0].Data)
	tampered[len(tampered)-1] ^= 1

	tests := []struct {
		name     string
		payload  *commonpb.Payload
		sentinel error
		contains string
	}{
		{"missing key id", enc("", good[0].Data), ErrMissingKeyID, "missing encryption-key-id"},
		{"unknown key id", enc("nope", good[0].Data), ErrUnknownKey, `unknown encryption key id "nope"`},
		{"too short", enc("k1", make([]byte, NonceSize+TagSize-1)), ErrCiphertextTooShort, "ciphertext too short"},
		{"empty data", enc("k1", nil), ErrCiphertextTooShort, "ciphertext too short"},
		{"wrong key", enc("k2", good[0].Data), ErrDecryptionFailed, `decryption failed for key id "k2" (wrong key or tampered data)`},
		{"tampered", enc("k1", tampered), ErrDecryptionFailed, `decryption failed for key id "k1"`},
		{"plaintext not a payload", enc("k1", seal([]byte{0xff, 0xff, 0xff})), ErrMalformedPayload, `key id "k1"`},
		{"zlib bomb", enc("k1", seal(bomb)), ErrDecompressedTooLarge, "decompressed payload exceeds limit"},
		{"not zlib", enc("k1", seal(compressedInner([]byte("not zlib")))), ErrMalformedPayload, "invalid zlib stream"},
		{"zlib bad checksum", enc("k1", seal(compressedInner(corruptZ))), ErrMalformedPayload, "invalid zlib stream"},
		{"inflated not a payload", enc("k1", seal(compressedInner(zlibOf([]byte{0xff, 0xff})))), ErrMalformedPayload, "decompressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []*commonpb.Payload{jsonPayload("1"), tt.payload}
			out, err := c.Decode(in)
			if err == nil {
				t.Fatal("Decode succeeded")
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			if !strings.Contains(err.Error(), "payload 1") {
				t.Errorf("error %q does not name the payload index", err)
			}
			if len(out) != len(in) || out[1] != in[1] {
				t.Errorf("Decode did not return its input on error")
			}
		})
	}
}

func TestInflateLimitBoundary(t *testing.T) {
	payload := jsonPayload(strings.Repeat("z", 10000))
	size := int64(proto.Size(payload))
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	enc, err := mustCodec(t, ring, "agents", WithCompressionThreshold(SuggestedCompressionMin)).Encode([]*commonpb.Payload{payload})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustCodec(t, ring, "agents", WithInflateLimit(size)).Decode(enc); err != nil {
		t.Errorf("limit == inflated size: %v", err)
	}
	if _, err := mustCodec(t, ring, "agents", WithInflateLimit(size-1)).Decode(enc); !errors.Is(err, ErrDecompressedTooLarge) {
		t.Errorf("limit == inflated size - 1: err = %v, want ErrDecompressedTooLarge", err)
	}
}

// A codec never writes what it could not read back: a payload over its inflate limit is not
// compressed, so the same codec (a worker replaying its own history) decodes it.
func TestEncodeDoesNotCompressPastTheInflateLimit(t *testing.T) {
	payload := jsonPayload(strings.Repeat("z", 10000))
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	c := mustCodec(t, ring, "agents", WithCompressionThreshold(SuggestedCompressionMin), WithInflateLimit(int64(proto.Size(payload))-1))
	enc, err := c.Encode([]*commonpb.Payload{payload})
	if err != nil {
		t.Fatal(err)
	}
	if len(enc[0].Data) < 10000 {
		t.Fatalf("compressed to %d bytes past the inflate limit", len(enc[0].Data))
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatalf("the codec cannot read what it wrote: %v", err)
	}
	assertPayloadsEqual(t, dec, []*commonpb.Payload{payload})
}

func TestEncodeNoActiveKey(t *testing.T) {
	ring := mustRing(t, map[string]string{"business": "k1"}, "k1")
	c := mustCodec(t, ring, "agents") // decrypt-only for agents
	_, err := c.Encode([]*commonpb.Payload{jsonPayload("1")})
	var nak *NoActiveKeyError
	if !errors.As(err, &nak) || !errors.Is(err, ErrNoActiveKey) || nak.Namespace != "agents" {
		t.Fatalf("err = %v, want NoActiveKeyError for agents", err)
	}
	enc, err := mustCodec(t, ring, "business").Encode([]*commonpb.Payload{jsonPayload("1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(enc); err != nil {
		t.Fatalf("decrypt-only codec cannot decode: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	tests := []struct {
		name string
		ring *KeyRing
		opts []Option
	}{
		{"nil ring", nil, nil},
		{"negative threshold", ring, []Option{WithCompressionThreshold(-1)}},
		{"zero inflate limit", ring, []Option{WithInflateLimit(0)}},
		{"nil nonce source", ring, []Option{WithNonceSource(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.ring, "agents", tt.opts...); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

// TestSDKZlibCompatible: our compressed inner payload is the SDK zlib codec's format, and
// the SDK's output inflates with our bounded reader.
func TestSDKZlibCompatible(t *testing.T) {
	p := jsonPayload(`"` + strings.Repeat("compress me ", 1000) + `"`)
	sdk, err := converter.NewZlibCodec(converter.ZlibCodecOptions{}).Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := inflate(sdk[0].Data, DefaultInflateLimit)
	if err != nil {
		t.Fatal(err)
	}
	got := &commonpb.Payload{}
	if err := proto.Unmarshal(inflated, got); err != nil || !proto.Equal(got, p) {
		t.Fatalf("SDK zlib payload did not inflate to the original (err %v)", err)
	}

	enc, err := mustCodec(t, mustRing(t, map[string]string{"*": "k1"}, "k1"), "agents").Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	inner := openWith(t, testMaterial("k1"), enc[0].Data)
	dec, err := converter.NewZlibCodec(converter.ZlibCodecOptions{}).Decode([]*commonpb.Payload{inner})
	if err != nil {
		t.Fatal(err)
	}
	assertPayloadsEqual(t, dec, []*commonpb.Payload{p})
}

// TestConcurrentUse: one codec serves every worker goroutine.
func TestConcurrentUse(t *testing.T) {
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	for _, c := range []*Codec{
		mustCodec(t, ring, "agents"),
		mustCodec(t, ring, "agents", WithNonceSource(rand.Reader)), // the locked path
	} {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				want := []*commonpb.Payload{jsonPayload(strings.Repeat(strconv.Itoa(g), 5000))}
				for range 20 {
					enc, err := c.Encode(want)
					if err != nil {
						t.Error(err)
						return
					}
					got, err := c.Decode(enc)
					if err != nil || !proto.Equal(got[0], want[0]) {
						t.Errorf("goroutine %d: round trip failed: %v", g, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// Compression is off unless the key ring turns it on for the namespace (SPEC §4, §5.1), and a
// payload whose sample does not compress is not deflated whole (SPEC §2).
func TestCompressionFollowsTheKeyRing(t *testing.T) {
	big := jsonPayload(`"` + strings.Repeat("secret=hunter2 ", 2000) + `"`)
	doc := `{"keys":{"k1":"` + testKeyB64("k1") + `"},"active":{"*":"k1"},"compression":{"retrieval":4096,"agents":0}}`
	ring, err := ParseKeyRing([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	size := func(ns string, p *commonpb.Payload, opts ...Option) int {
		enc, err := mustCodec(t, ring, ns, opts...).Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		return len(enc[0].Data)
	}
	if n := size("retrieval", big); n > 1000 {
		t.Errorf("retrieval opted in but wrote %d bytes", n)
	}
	if n := size("agents", big); n < 30000 {
		t.Errorf("agents did not opt in but wrote %d bytes", n)
	}
	plainRing := mustRing(t, map[string]string{"*": "k1"}, "k1")
	if n := len(mustEncode(t, mustCodec(t, plainRing, "business"), big)); n < 30000 {
		t.Errorf("a ring without compression compressed to %d bytes", n)
	}
	random := make([]byte, SampleBytes)
	rand.Read(random)
	mixed := &commonpb.Payload{Data: append(random, make([]byte, 20000)...)}
	if n := size("retrieval", mixed, WithCompressionThreshold(1)); n < 24000 {
		t.Errorf("an incompressible sample still led to compression (%d bytes)", n)
	}
	for _, bad := range []string{`{"agents":-1}`, `{"bad name":1}`, `{"agents":"4096"}`} {
		if _, err := ParseKeyRing([]byte(`{"keys":{"k1":"` + testKeyB64("k1") + `"},"compression":` + bad + `}`)); err == nil {
			t.Errorf("compression %s accepted", bad)
		}
	}
}

func mustEncode(t *testing.T, c *Codec, p *commonpb.Payload) []byte {
	t.Helper()
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	return enc[0].Data
}

// parsePayload (which aliases the decrypted buffer) must agree with proto.Unmarshal on every
// input: well-formed payloads of every shape, and bytes that are not a Payload at all.
func TestParsePayloadAgreesWithProtoUnmarshal(t *testing.T) {
	var inputs [][]byte
	for _, p := range []*commonpb.Payload{
		{},
		{Data: []byte("x")},
		{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "": nil, "empty": {}}, Data: []byte(`{"a":1}`)},
		{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: make([]byte, 70000)},
		{ExternalPayloads: []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 5}}},
	} {
		b, err := deterministic.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
	}
	inputs = append(inputs,
		[]byte{0x12, 0x01, 'a', 0x12, 0x01, 'b'},   // data twice: the last wins
		[]byte{0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe}, // metadata key not UTF-8
		[]byte{0x0a, 0x00},                         // an empty map entry
		[]byte{0x12, 0x05, 'a'},                    // truncated
		[]byte{0x08, 0x01},                         // a varint field (unknown)
		[]byte{0xff},
	)
	random := make([]byte, 64)
	for i := 0; i < 2000; i++ {
		rand.Read(random)
		inputs = append(inputs, append([]byte(nil), random[:i%64]...))
	}
	for _, in := range inputs {
		want := &commonpb.Payload{}
		wantErr := proto.Unmarshal(in, want)
		got, err := parsePayload(append([]byte(nil), in...))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%x: parsePayload err %v, proto.Unmarshal err %v", in, err, wantErr)
		}
		if err == nil && !proto.Equal(got, want) {
			t.Fatalf("%x: parsePayload %v, proto.Unmarshal %v", in, got, want)
		}
	}
}
