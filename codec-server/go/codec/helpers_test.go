package codec

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"
)

// testMaterial derives distinct, recognisable 32-byte keys so tests can search output for them.
func testMaterial(id string) []byte {
	sum := sha256.Sum256([]byte("test key " + id))
	return sum[:]
}

func testKeyB64(id string) string { return base64.StdEncoding.EncodeToString(testMaterial(id)) }

func mustKey(t testing.TB, id string) Key {
	t.Helper()
	k, err := NewKey(id, testMaterial(id))
	if err != nil {
		t.Fatalf("NewKey(%q): %v", id, err)
	}
	return k
}

func mustRing(t testing.TB, active map[string]string, ids ...string) *KeyRing {
	t.Helper()
	keys := make([]Key, len(ids))
	for i, id := range ids {
		keys[i] = mustKey(t, id)
	}
	r, err := NewKeyRing(keys, active)
	if err != nil {
		t.Fatalf("NewKeyRing: %v", err)
	}
	return r
}

func mustCodec(t testing.TB, ring *KeyRing, namespace string, opts ...Option) *Codec {
	t.Helper()
	c, err := New(ring, namespace, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func jsonPayload(data string) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(data),
	}
}

func assertPayloadsEqual(t testing.TB, got, want []*commonpb.Payload) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d payloads, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("payload %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}

// materialForms lists the ways a key could leak into text.
func materialForms(material []byte) []string {
	dec := make([]string, 6)
	for i, c := range material[:6] {
		dec[i] = strconv.Itoa(int(c))
	}
	return []string{
		string(material),
		base64.StdEncoding.EncodeToString(material),
		base64.RawStdEncoding.EncodeToString(material),
		base64.URLEncoding.EncodeToString(material),
		base64.RawURLEncoding.EncodeToString(material),
		hex.EncodeToString(material),
		strings.ToUpper(hex.EncodeToString(material)),
		// the first bytes in decimal, as %v of a []byte would print them
		strings.Join(dec, " "),
		strings.Join(dec, ", "),
	}
}
