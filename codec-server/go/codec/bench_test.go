package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

// The benchmarks behind `make bench-codec` (ops/bench/codec_bench.py reads their output lines).
// Payload kinds: random bytes (incompressible: what compression costs when it does not pay)
// and JSON text (compressible records, as model transcripts and tool results are). The size is
// the first part of every name, so `-bench '(EncodeDecode|RawAESGCM)/1MiB'` measures the codec
// and its baseline at one size back to back: on a shared machine, a neighbour's burst then
// slows both rather than one, and the ratio stays meaningful.
var benchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

var benchKinds = []string{"random", "json"}

func randomBytes(b *testing.B, n int) []byte {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		b.Fatal(err)
	}
	return buf
}

// jsonText is n bytes of JSON-like records from a small vocabulary, deterministic per n.
func jsonText(n int) []byte {
	words := []string{"refund", "order", "customer", "keyboard", "shipping", "policy", "approved", "days",
		"invoice", "the", "a", "was", "broken", "arrived", "late", "support", "ticket", "agent"}
	r := mrand.New(mrand.NewPCG(uint64(n), 7))
	buf := make([]byte, 0, n+256)
	buf = append(buf, '[')
	for i := 0; len(buf) < n; i++ {
		buf = fmt.Appendf(buf, `{"id":%d,"customer":"C-%04d","amount_cents":%d,"note":"`, i, r.IntN(10000), r.IntN(100000))
		for w := 0; w < 12; w++ {
			buf = append(buf, words[r.IntN(len(words))]...)
			buf = append(buf, ' ')
		}
		buf = append(buf, `"},`...)
	}
	return buf[:n]
}

func benchPayload(b *testing.B, kind string, n int) *commonpb.Payload {
	if kind == "json" {
		return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: jsonText(n)}
	}
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: randomBytes(b, n)}
}

// BenchmarkEncodeDecode: one payload through Encode and Decode per iteration, for each kind,
// with compression off (the key ring's default) and on (threshold 4096).
func BenchmarkEncodeDecode(b *testing.B) {
	ring := mustRing(b, map[string]string{"*": "k1"}, "k1")
	codecs := map[string]*Codec{
		"off": mustCodec(b, ring, "agents"),
		"on":  mustCodec(b, ring, "agents", WithCompressionThreshold(SuggestedCompressionMin)),
	}
	for _, size := range benchSizes {
		for _, kind := range benchKinds {
			for _, compression := range []string{"off", "on"} {
				b.Run(size.name+"/"+kind+"/"+compression, func(b *testing.B) {
					c := codecs[compression]
					in := []*commonpb.Payload{benchPayload(b, kind, size.n)}
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
	}
}

// BenchmarkRawAESGCM is the baseline: seal and open of the same sizes with the same kind of
// key and a fresh random nonce, without protobuf or compression. Each call returns a new
// buffer, as the codec must (its caller keeps the ciphertext and the plaintext), so the ratio
// compares the codec with the least an encrypting codec can do; "inplace" reuses two buffers
// and shows what the allocations themselves cost.
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
		for _, mode := range []string{"fresh", "inplace"} {
			b.Run(size.name+"/"+mode, func(b *testing.B) {
				plain := randomBytes(b, size.n)
				sealed := make([]byte, 0, NonceSize+size.n+TagSize)
				opened := make([]byte, 0, size.n)
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				for b.Loop() {
					dst, out := sealed[:NonceSize], opened[:0]
					if mode == "fresh" {
						dst, out = make([]byte, NonceSize, NonceSize+size.n+TagSize), nil
					}
					if _, err := io.ReadFull(rand.Reader, dst[:NonceSize]); err != nil {
						b.Fatal(err)
					}
					ct := aead.Seal(dst, dst[:NonceSize], plain, nil)
					if _, err := aead.Open(out, ct[:NonceSize], ct[NonceSize:], nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
