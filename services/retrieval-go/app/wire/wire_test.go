package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestDecoderRoundTripAndShortInput(t *testing.T) {
	b := []byte{7}
	b = binary.AppendUvarint(b, 300)
	b = binary.LittleEndian.AppendUint64(b, 1<<40)
	b = AppendString(b, "héllo")
	d := Decoder{B: b}
	if d.Byte() != 7 || d.Uvarint() != 300 || d.Uint64() != 1<<40 || d.String() != "héllo" || d.Err != nil || len(d.B) != 0 {
		t.Fatalf("round trip failed: %v", d.Err)
	}
	for cut := range len(b) {
		d := Decoder{B: b[:cut]}
		d.Byte()
		d.Uvarint()
		d.Uint64()
		_ = d.String()
		if !errors.Is(d.Err, ErrShort) {
			t.Errorf("%d of %d bytes decoded without error", cut, len(b))
		}
		if d.Uvarint() != 0 || d.String() != "" {
			t.Error("reads after a failure must return zero values")
		}
	}
}
