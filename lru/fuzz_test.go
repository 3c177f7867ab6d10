package lru

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzRestore: a snapshot read back from the store may be damaged. Any
// bytes either restore (a well-formed snapshot of any power-of-two size)
// or give ErrBadSnapshot; nothing panics, and a restored clock snapshots
// to its own size. It stages (the decoding) and takes the staged clock,
// as an Open does: Install's pause would slow the fuzzer a hundredfold.
func FuzzRestore(f *testing.F) {
	c := NewAccessClock(4)
	c.Touch(1<<63, 5)
	f.Add(c.Snapshot())
	f.Add(NewAccessClock(1).Snapshot())
	f.Add(NewAccessClock(64).Snapshot())
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, slots := range []int{1, 8, 64} {
			a := NewAccessClock(slots)
			st, _, err := a.Stage(bytes.NewReader(b))
			if err != nil && !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("Stage: %v", err)
			}
			if err == nil {
				a = st.Clock()
			}
			if got := len(a.Snapshot()); got != 8+4*slots || got != a.SnapshotLen() {
				t.Fatalf("snapshot of %d slots is %d bytes", slots, got)
			}
		}
	})
}
