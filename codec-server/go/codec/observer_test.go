package codec

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Succeeded(operation, keyID string, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("ok %s %s %d", operation, keyID, size))
}

func (r *recorder) Failed(operation, keyID, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("fail %s %s %s", operation, keyID, reason))
}

// The observer sees each encrypted payload once, with bounded labels: a key id the ring does
// not hold is reported as "unknown", never as the id a forger put on the wire.
func TestObserver(t *testing.T) {
	rec := &recorder{}
	ring := mustRing(t, map[string]string{"*": "k1"}, "k1")
	c := mustCodec(t, ring, "agents", WithObserver(rec))
	enc, err := c.Encode([]*commonpb.Payload{jsonPayload(`"hello"`)})
	if err != nil {
		t.Fatal(err)
	}
	size := len(enc[0].Data)
	if _, err := c.Decode(append(enc, jsonPayload("1"))); err != nil { // the plain one passes uncounted
		t.Fatal(err)
	}
	forged := &commonpb.Payload{Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte("attacker-chosen")}, Data: enc[0].Data}
	tampered := &commonpb.Payload{Metadata: enc[0].Metadata, Data: slices.Clone(enc[0].Data)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	noID := &commonpb.Payload{Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted)}, Data: enc[0].Data}
	for _, p := range []*commonpb.Payload{forged, tampered, noID} {
		if _, err := c.Decode([]*commonpb.Payload{p}); err == nil {
			t.Fatal("a bad payload decoded")
		}
	}
	if _, err := mustCodec(t, mustRing(t, nil, "k1"), "agents", WithObserver(rec)).Encode(enc); err == nil {
		t.Fatal("encoded without an active key")
	}
	want := []string{
		fmt.Sprintf("ok encode k1 %d", size),
		fmt.Sprintf("ok decode k1 %d", size),
		"fail decode unknown unknown_key",
		"fail decode k1 auth_failed",
		"fail decode none missing_key_id",
		"fail encode none no_active_key",
	}
	if !slices.Equal(rec.events, want) {
		t.Fatalf("events:\n%q\nwant:\n%q", rec.events, want)
	}
	if _, err := New(ring, "agents", WithObserver(nil)); err == nil {
		t.Fatal("New accepted a nil observer")
	}
}
