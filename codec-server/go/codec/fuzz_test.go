package codec

import (
	"bytes"
	"compress/zlib"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDecode: Decode never panics and fails only with the codec's own errors, whatever the
// payload. With seal set, the fuzzed bytes become the plaintext of a correctly encrypted
// payload, which drives the fuzzer past GCM into the protobuf and zlib paths.
func FuzzDecode(f *testing.F) {
	ring := mustRing(f, map[string]string{"*": "k1"}, "k1")
	c := mustCodec(f, ring, "agents", WithInflateLimit(1<<16))
	k1, _ := ring.Key("k1")

	good, err := c.Encode([]*commonpb.Payload{jsonPayload(`"` + string(bytes.Repeat([]byte("seed "), 1000)) + `"`)})
	if err != nil {
		f.Fatal(err)
	}
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(make([]byte, 1<<17))
	w.Close()
	bomb, _ := proto.Marshal(&commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(EncodingZlib)}, Data: z.Bytes()})
	small, _ := proto.Marshal(jsonPayload("1"))

	f.Add(EncodingEncrypted, "k1", good[0].Data, false)
	f.Add(EncodingEncrypted, "k1", bomb, true)
	f.Add(EncodingEncrypted, "k1", small, true)
	f.Add(EncodingEncrypted, "k1", []byte{0xff, 0xff}, true)
	f.Add(EncodingEncrypted, "nope", good[0].Data, false)
	f.Add(EncodingEncrypted, "", []byte{}, false)
	f.Add("json/plain", "", []byte("{}"), false)

	f.Fuzz(func(t *testing.T, encoding, keyID string, data []byte, seal bool) {
		if seal {
			nonce := make([]byte, NonceSize)
			data = k1.aead.Seal(nonce, nonce, data, nil)
		}
		p := &commonpb.Payload{Metadata: map[string][]byte{MetadataEncoding: []byte(encoding), MetadataKeyID: []byte(keyID)}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{p})
		if err != nil {
			for _, known := range []error{ErrMissingKeyID, ErrUnknownKey, ErrCiphertextTooShort, ErrDecryptionFailed, ErrDecompressedTooLarge, ErrMalformedPayload} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("Decode returned an error of no known kind: %v", err)
		}
		if len(out) != 1 {
			t.Fatalf("Decode returned %d payloads", len(out))
		}
		if encoding != EncodingEncrypted && out[0] != p {
			t.Fatalf("non-encrypted payload was not passed through")
		}
		if encoding == EncodingEncrypted && proto.Size(out[0]) > 1<<16 {
			t.Fatalf("decoded payload of %d bytes exceeds the inflate limit", proto.Size(out[0]))
		}
	})
}

// FuzzRoundTrip: Decode(Encode(p)) == p for any payload and threshold.
func FuzzRoundTrip(f *testing.F) {
	ring := mustRing(f, map[string]string{"*": "k1"}, "k1")
	f.Add("encoding", []byte("json/plain"), []byte(`{"a":1}`), uint16(4096))
	f.Add("", []byte{}, []byte{}, uint16(0))
	f.Add("x", []byte{0}, bytes.Repeat([]byte("ab"), 5000), uint16(1))
	f.Fuzz(func(t *testing.T, mdKey string, mdValue, data []byte, threshold uint16) {
		p := &commonpb.Payload{Data: data}
		if mdKey != "" || len(mdValue) > 0 {
			p.Metadata = map[string][]byte{mdKey: mdValue}
		}
		if _, err := proto.Marshal(p); err != nil {
			t.Skip("not a valid proto (invalid UTF-8 in a map key)")
		}
		c := mustCodec(t, ring, "agents", WithCompressionThreshold(int(threshold)))
		enc, err := c.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		dec, err := c.Decode(enc)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !proto.Equal(dec[0], p) {
			t.Fatalf("round trip changed the payload:\n got %v\nwant %v", dec[0], p)
		}
	})
}
