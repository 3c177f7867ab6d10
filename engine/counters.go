package engine

import (
	"encoding/binary"
	"fmt"
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

// liveCounts are the counts in memory, updated by every write.
type liveCounts struct {
	entries counter
	bytes   counter
}

func (l *liveCounts) add(shard uint64, d counts) {
	if d.entries != 0 {
		l.entries.add(shard, d.entries)
	}
	if d.bytes != 0 {
		l.bytes.add(shard, d.bytes)
	}
}

func (l *liveCounts) load() counts {
	return counts{entries: l.entries.load(), bytes: l.bytes.load()}
}
