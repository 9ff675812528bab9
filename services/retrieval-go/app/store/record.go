package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"unicode/utf8"

	"github.com/durable-agents/reference/services/retrieval-go/app/index"
)

// Record kinds. The numbers are on disk: never reuse one.
const (
	kindCreate byte = 1 // collection, dimension
	kindPut    byte = 2 // collection, documents
	kindDelete byte = 3 // collection, ids
	kindEnd    byte = 4 // snapshots only: the number of documents before it
)

// Record is one journal or snapshot entry.
type Record struct {
	Kind       byte
	Collection string
	Dimension  int              // kindCreate
	Documents  []index.Document // kindPut
	IDs        []string         // kindDelete
	Count      uint64           // kindEnd
}

// Framing: every record is stored as
//
//	length  uint32, little-endian: the payload's length
//	crc     uint32, little-endian: CRC-32C (Castagnoli) of the payload
//	payload length bytes
//
// so that a reader can tell a record torn by a crash (too short, or a CRC
// that does not match) from a whole one.
const (
	frameHeader = 8
	// maxPayload bounds one record; a length beyond it is corruption, not an
	// allocation to attempt.
	maxPayload = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks a frame that ends early or fails its checksum.
var errTorn = errors.New("torn or corrupt record")

// appendFrame appends the framed payload to dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// readFrame reads one frame from r. It returns io.EOF at a clean end, and
// an error wrapping errTorn for a partial or damaged frame.
func readFrame(r io.Reader, buf []byte) ([]byte, int, error) {
	var hdr [frameHeader]byte
	n, err := io.ReadFull(r, hdr[:])
	if err == io.EOF {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, n, fmt.Errorf("%w: %d-byte frame header", errTorn, n)
	}
	size := binary.LittleEndian.Uint32(hdr[:4])
	sum := binary.LittleEndian.Uint32(hdr[4:])
	if size > maxPayload {
		return nil, n, fmt.Errorf("%w: frame length %d exceeds %d", errTorn, size, maxPayload)
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	m, err := io.ReadFull(r, buf)
	if err != nil {
		return nil, n + m, fmt.Errorf("%w: %d of %d payload bytes", errTorn, m, size)
	}
	if crc32.Checksum(buf, castagnoli) != sum {
		return nil, n + m, fmt.Errorf("%w: checksum mismatch", errTorn)
	}
	return buf, n + m, nil
}

// EncodeRecord returns the payload for rec (without framing).
//
// Layout: a kind byte, then the collection name, then by kind:
//
//	create: dimension (uvarint)
//	put:    count (uvarint), then per document: id, version (varint), title,
//	        text, metadata count (uvarint) and key/value pairs, vector
//	        length (uvarint) and that many float32 (little-endian IEEE 754)
//	delete: count (uvarint), then the ids
//	end:    document count (uvarint)
//
// Strings are a uvarint byte length followed by UTF-8 bytes.
func EncodeRecord(rec Record) []byte {
	b := []byte{rec.Kind}
	b = appendString(b, rec.Collection)
	switch rec.Kind {
	case kindCreate:
		b = binary.AppendUvarint(b, uint64(rec.Dimension))
	case kindPut:
		b = binary.AppendUvarint(b, uint64(len(rec.Documents)))
		for _, d := range rec.Documents {
			b = appendString(b, d.ID)
			b = binary.AppendVarint(b, d.Version)
			b = appendString(b, d.Title)
			b = appendString(b, d.Text)
			b = binary.AppendUvarint(b, uint64(len(d.Metadata)))
			for _, k := range sortedKeys(d.Metadata) {
				b = appendString(b, k)
				b = appendString(b, d.Metadata[k])
			}
			b = binary.AppendUvarint(b, uint64(len(d.Vector)))
			for _, x := range d.Vector {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
		}
	case kindDelete:
		b = binary.AppendUvarint(b, uint64(len(rec.IDs)))
		for _, id := range rec.IDs {
			b = appendString(b, id)
		}
	case kindEnd:
		b = binary.AppendUvarint(b, rec.Count)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeRecord parses a payload written by EncodeRecord. It never panics and
// never allocates more than a small multiple of len(p), whatever p holds.
func DecodeRecord(p []byte) (Record, error) {
	d := decoder{b: p}
	var rec Record
	rec.Kind = d.byte()
	rec.Collection = d.string()
	switch rec.Kind {
	case kindCreate:
		dim := d.uvarint()
		if dim > math.MaxInt32 {
			d.fail("dimension %d out of range", dim)
		}
		rec.Dimension = int(dim)
	case kindPut:
		n := d.count(1 + 1 + 1 + 1 + 1 + 1) // the smallest document
		if n > 0 {
			rec.Documents = make([]index.Document, 0, n)
		}
		for range n {
			var doc index.Document
			doc.ID = d.string()
			doc.Version = d.varint()
			doc.Title = d.string()
			doc.Text = d.string()
			if m := d.count(2); m > 0 {
				doc.Metadata = make(map[string]string, m)
				for range m {
					k := d.string()
					doc.Metadata[k] = d.string()
				}
			}
			if dim := d.count(4); dim > 0 {
				doc.Vector = make([]float32, dim)
				for i := range doc.Vector {
					doc.Vector[i] = math.Float32frombits(d.uint32())
				}
			}
			if d.err != nil {
				break
			}
			rec.Documents = append(rec.Documents, doc)
		}
	case kindDelete:
		n := d.count(1)
		for range n {
			rec.IDs = append(rec.IDs, d.string())
			if d.err != nil {
				break
			}
		}
	case kindEnd:
		rec.Count = d.uvarint()
	default:
		if d.err == nil {
			d.fail("unknown record kind %d", rec.Kind)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d stray bytes after the record", len(d.b))
	}
	if d.err != nil {
		return Record{}, d.err
	}
	return rec, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("malformed record: "+format, args...)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	if len(d.b) < 4 {
		d.fail("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

// count reads an element count and rejects one that could not fit in the
// remaining bytes if each element took at least minSize bytes.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/minSize) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string of %d bytes exceeds the %d bytes left", n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	if !utf8.ValidString(s) {
		d.fail("string is not UTF-8")
		return ""
	}
	return s
}
