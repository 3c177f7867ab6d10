package engine

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// counts is what the store holds: entries and their stored bytes (data key
// plus record). See keyState for how they stay exact.
type counts struct {
	entries int64
	bytes   int64
}

func (c counts) encode() []byte {
	b := make([]byte, 0, 16)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.entries))
	return binary.LittleEndian.AppendUint64(b, uint64(c.bytes))
}

func decodeCounts(b []byte) (counts, error) {
	if len(b) != 16 {
		return counts{}, fmt.Errorf("%w: counters are %d bytes, want 16", ErrCorrupt, len(b))
	}
	return counts{
		entries: int64(binary.LittleEndian.Uint64(b)),
		bytes:   int64(binary.LittleEndian.Uint64(b[8:])),
	}, nil
}

// liveCounts is the in-memory mirror of the persisted counts.
type liveCounts struct {
	entries atomic.Int64
	bytes   atomic.Int64
}

func (l *liveCounts) add(d counts) {
	l.entries.Add(d.entries)
	l.bytes.Add(d.bytes)
}
