// Package wire reads the little binary encodings the index saves next to
// its snapshots (the HNSW graph, the postings): uvarints, fixed-size numbers
// and length-prefixed strings, remembering the first error so that a caller
// checks once per record instead of after every number.
package wire

import (
	"encoding/binary"
	"errors"
)

// ErrShort reports an encoding that ends early or holds a malformed number.
var ErrShort = errors.New("the encoding ends early or holds a bad number")

// Decoder reads from B; after the first failure every read returns zero and
// Err is ErrShort.
type Decoder struct {
	B   []byte
	Err error
}

func (d *Decoder) fail() {
	if d.Err == nil {
		d.Err = ErrShort
	}
	d.B = nil
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.Err != nil || len(d.B) == 0 {
		d.fail()
		return 0
	}
	v := d.B[0]
	d.B = d.B[1:]
	return v
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Uint64 reads a little-endian uint64.
func (d *Decoder) Uint64() uint64 {
	if d.Err != nil || len(d.B) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.B)
	d.B = d.B[8:]
	return v
}

// String reads a uvarint length and that many bytes.
func (d *Decoder) String() string {
	n := d.Uvarint()
	if d.Err != nil || n > uint64(len(d.B)) {
		d.fail()
		return ""
	}
	s := string(d.B[:n])
	d.B = d.B[n:]
	return s
}

// AppendString appends s with its uvarint length.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
