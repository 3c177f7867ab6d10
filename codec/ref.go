package codec

import "encoding/binary"

// Ref locates a value stored outside its record, in a value log: the
// entry (which holds the key and the stored value) of Length bytes at
// Offset of segment Segment, whose checksum is Sum. The reader checks Sum
// and the key against what it reads there, so a Ref that points at the
// wrong bytes reads as corrupt, never as another key's value.
type Ref struct {
	Segment uint32
	Offset  uint32
	Length  uint32
	Sum     uint32
}

// RefSize is the length of a Ref in a record's payload: four little-endian
// uint32s in field order.
const RefSize = 16

const refOffLength = 8

func (r Ref) append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, r.Segment)
	dst = binary.LittleEndian.AppendUint32(dst, r.Offset)
	dst = binary.LittleEndian.AppendUint32(dst, r.Length)
	return binary.LittleEndian.AppendUint32(dst, r.Sum)
}

// ParseRef reads the Ref that is the payload of a reference record
// (Verify).
func ParseRef(payload []byte) (Ref, error) {
	if len(payload) != RefSize {
		return Ref{}, corrupt("a reference of %d bytes, want %d", len(payload), RefSize)
	}
	le := binary.LittleEndian
	return Ref{Segment: le.Uint32(payload), Offset: le.Uint32(payload[4:]), Length: le.Uint32(payload[8:]), Sum: le.Uint32(payload[12:])}, nil
}
