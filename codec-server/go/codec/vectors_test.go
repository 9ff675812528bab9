package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"
)

// vectorsPath is the shared, normative vector file (SPEC §7), written by
// codec-server/testdata/generate_vectors.py.
var vectorsPath = filepath.Join("..", "..", "testdata", "vectors.json")

type vectorPayload struct {
	Metadata map[string]string `json:"metadata"`
	Data     string            `json:"data"`
}

func (v vectorPayload) proto(t *testing.T) *commonpb.Payload {
	t.Helper()
	p := &commonpb.Payload{Data: mustB64(t, v.Data)}
	if len(v.Metadata) > 0 {
		p.Metadata = make(map[string][]byte, len(v.Metadata))
		for k, val := range v.Metadata {
			p.Metadata[k] = mustB64(t, val)
		}
	}
	return p
}

type vectorFile struct {
	SpecVersion        int `json:"spec_version"`
	KeyringCompression []struct {
		Name       string          `json:"name"`
		Keyring    json.RawMessage `json:"keyring"`
		Thresholds map[string]int  `json:"thresholds"`
	} `json:"keyring_compression"`
	Keys    map[string]string `json:"keys"`
	Vectors []struct {
		Name                 string        `json:"name"`
		KeyID                string        `json:"key_id"`
		Nonce                string        `json:"nonce"`
		CompressionThreshold int           `json:"compression_threshold"`
		Plain                vectorPayload `json:"plain"`
		Encoded              vectorPayload `json:"encoded"`
		ByteExact            bool          `json:"byte_exact"`
	} `json:"vectors"`
	DecodeErrors []struct {
		Name          string        `json:"name"`
		Encoded       vectorPayload `json:"encoded"`
		ErrorContains string        `json:"error_contains"`
	} `json:"decode_errors"`
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("vector base64: %v", err)
	}
	return b
}

func loadVectors(t *testing.T) (*vectorFile, []Key) {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read shared vectors (generate with codec-server/testdata/generate_vectors.py): %v", err)
	}
	var vf vectorFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&vf); err != nil {
		t.Fatalf("parse %s: %v", vectorsPath, err)
	}
	if len(vf.Vectors) == 0 || len(vf.DecodeErrors) == 0 {
		t.Fatalf("%s has no vectors or no decode_errors", vectorsPath)
	}
	var keys []Key
	for id, b64 := range vf.Keys {
		k, err := ParseKey(id, b64)
		if err != nil {
			t.Fatalf("vector key: %v", err)
		}
		keys = append(keys, k)
	}
	return &vf, keys
}

func TestVectors(t *testing.T) {
	vf, keys := loadVectors(t)
	decodeRing, err := NewKeyRing(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	decoder := mustCodec(t, decodeRing, "any")
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			plain, encoded := v.Plain.proto(t), v.Encoded.proto(t)

			got, err := decoder.Decode([]*commonpb.Payload{encoded})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			assertPayloadsEqual(t, got, []*commonpb.Payload{plain})

			ring, err := NewKeyRing(keys, map[string]string{DefaultNamespace: v.KeyID})
			if err != nil {
				t.Fatal(err)
			}
			c := mustCodec(t, ring, "agents",
				WithNonceSource(bytes.NewReader(mustB64(t, v.Nonce))),
				WithCompressionThreshold(v.CompressionThreshold))
			enc, err := c.Encode([]*commonpb.Payload{plain})
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if v.ByteExact {
				if !proto.Equal(enc[0], encoded) {
					t.Fatalf("Encode is not byte-exact:\n got metadata %q data %x\nwant metadata %q data %x",
						enc[0].Metadata, enc[0].Data, encoded.Metadata, encoded.Data)
				}
			} else {
				// Compressed: zlib output differs between implementations, but the nonce, the
				// metadata and the inner compression marker must match, and it must decode.
				if !bytes.Equal(enc[0].Data[:NonceSize], encoded.Data[:NonceSize]) ||
					string(enc[0].Metadata[MetadataKeyID]) != v.KeyID {
					t.Fatalf("Encode: nonce or key id differ from the vector")
				}
				if inner := openWith(t, mustKeyMaterial(t, vf.Keys[v.KeyID]), enc[0].Data); string(inner.Metadata[MetadataEncoding]) != EncodingZlib {
					t.Fatalf("vector is compressed but our encoding is not")
				}
				round, err := decoder.Decode(enc)
				if err != nil {
					t.Fatalf("Decode(Encode(plain)): %v", err)
				}
				assertPayloadsEqual(t, round, []*commonpb.Payload{plain})
			}
		})
	}
	for _, v := range vf.DecodeErrors {
		t.Run("decode_error/"+v.Name, func(t *testing.T) {
			_, err := decoder.Decode([]*commonpb.Payload{v.Encoded.proto(t)})
			if err == nil {
				t.Fatalf("Decode succeeded, want error containing %q", v.ErrorContains)
			}
			if !strings.Contains(err.Error(), v.ErrorContains) {
				t.Fatalf("error %q does not contain %q", err, v.ErrorContains)
			}
		})
	}
}

func mustKeyMaterial(t *testing.T, b64 string) []byte {
	t.Helper()
	m, err := decodeKeyBase64(b64)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Version 2: compression is off unless the key ring turns it on for a namespace.
func TestVectorKeyRingCompression(t *testing.T) {
	vf, _ := loadVectors(t)
	if vf.SpecVersion != 2 || len(vf.KeyringCompression) == 0 {
		t.Fatalf("spec_version %d with %d key ring compression cases", vf.SpecVersion, len(vf.KeyringCompression))
	}
	for _, c := range vf.KeyringCompression {
		ring, err := ParseKeyRing(c.Keyring)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		for ns, want := range c.Thresholds {
			if got := ring.CompressionThreshold(ns); got != want {
				t.Errorf("%s: CompressionThreshold(%q) = %d, want %d", c.Name, ns, got, want)
			}
		}
	}
}
