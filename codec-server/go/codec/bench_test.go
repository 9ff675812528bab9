package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

// benchSizes use random data with the key ring's default, compression off (SPEC version 2); the
// Python bench (ops/bench) measures the same.
var benchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

func randomBytes(b *testing.B, n int) []byte {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return buf
}

// BenchmarkEncodeDecode: one payload through Encode and Decode per iteration.
func BenchmarkEncodeDecode(b *testing.B) {
	c := mustCodec(b, mustRing(b, map[string]string{"*": "k1"}, "k1"), "agents")
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			in := []*commonpb.Payload{{
				Metadata: map[string][]byte{"encoding": []byte("binary/plain")},
				Data:     randomBytes(b, size.n),
			}}
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			for b.Loop() {
				enc, err := c.Encode(in)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawAESGCM is the baseline: seal and open of the same sizes with the same kind of
// key and a fresh random nonce, without protobuf or compression.
func BenchmarkRawAESGCM(b *testing.B) {
	block, err := aes.NewCipher(testMaterial("k1"))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			plain := randomBytes(b, size.n)
			sealed := make([]byte, 0, NonceSize+size.n+TagSize)
			opened := make([]byte, 0, size.n)
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			for b.Loop() {
				nonce := sealed[:NonceSize]
				if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
					b.Fatal(err)
				}
				ct := aead.Seal(nonce, nonce, plain, nil)
				if _, err := aead.Open(opened[:0], ct[:NonceSize], ct[NonceSize:], nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
