package lru

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
)

// Tick is a point in time in the access clock's units: hundredths of a
// second since the clock's epoch, modulo 2^32 (497 days). Ages are computed
// with wrapping arithmetic, so only their differences matter. A cache that
// holds a few seconds of writes (a 64 MiB cache under a burst) still tells
// its hot keys from its cold ones at this resolution; seconds would not.
type Tick uint32

// TicksPerSecond is the access clock's resolution.
const TicksPerSecond = 100

// TickAt converts unix nanoseconds to a Tick for the given epoch (unix
// nanoseconds).
func TickAt(unixNanos, epoch int64) Tick {
	return Tick((unixNanos - epoch) / (1e9 / TicksPerSecond))
}

// Age returns how long before now t was, in ticks.
func (t Tick) Age(now Tick) uint32 { return uint32(now - t) }

// AccessClock remembers the last access of each key in a fixed table of
// 4-byte slots indexed by the key's hash. Keys that share a slot share the
// most recent access of the two, which can only make a cold key look
// warmer, never a hot key colder. A slot of 0 means "no access recorded":
// the caller falls back to the record's write time. It is safe for
// concurrent use; memory is 4 bytes a slot whatever the number of keys.
type AccessClock struct {
	slots []atomic.Uint32
	shift uint // hash >> shift is the slot
}

// Slot bounds: 64Ki slots (256 KiB) to 4Mi slots (16 MiB).
const (
	MinSlots = 1 << 16
	MaxSlots = 1 << 22
)

// SlotsFor returns the table size for a cache of sizeLimit bytes: a slot
// for each 256 bytes of the limit, a power of two within the bounds.
func SlotsFor(sizeLimit int64) int {
	n := sizeLimit / 256
	s := MinSlots
	for int64(s) < n && s < MaxSlots {
		s <<= 1
	}
	return s
}

// NewAccessClock returns a clock with slots rounded up to a power of two.
func NewAccessClock(slots int) *AccessClock {
	n := 1
	for n < slots {
		n <<= 1
	}
	return &AccessClock{slots: make([]atomic.Uint32, n), shift: uint(64 - bits.TrailingZeros(uint(n)))}
}

// Slots returns the table size.
func (a *AccessClock) Slots() int { return len(a.slots) }

func (a *AccessClock) slot(h uint64) *atomic.Uint32 {
	if len(a.slots) == 1 {
		return &a.slots[0]
	}
	return &a.slots[h>>a.shift]
}

// Touch records an access of the key with hash h at now. It writes only
// when the slot holds another tick, so a hot key costs one store per tick,
// not one per access.
func (a *AccessClock) Touch(h uint64, now Tick) {
	if now == 0 {
		now = 1 // 0 means "never"
	}
	s := a.slot(h)
	if Tick(s.Load()) != now {
		s.Store(uint32(now))
	}
}

// Last returns the last recorded access of the key with hash h and whether
// there is one.
func (a *AccessClock) Last(h uint64) (Tick, bool) {
	t := a.slot(h).Load()
	return Tick(t), t != 0
}

// Sum returns a hash of the table's contents, so that a caller can tell
// whether a snapshot would differ from one it saved before without taking
// (and allocating) it. It reads the slots one by one while touches may go
// on: a touch that races it may or may not change the result.
func (a *AccessClock) Sum() uint64 {
	h := uint64(len(a.slots))
	for i := range a.slots {
		h = (h ^ uint64(a.slots[i].Load())) * 0x100000001b3 // FNV-1a's prime, per slot
	}
	return h
}

// ErrBadSnapshot reports a snapshot that does not fit the clock.
var ErrBadSnapshot = errors.New("lru: access clock snapshot does not fit")

// SnapshotLen returns the length of the clock's Snapshot: a snapshot of
// that length restores as an exact copy, not split or folded.
func (a *AccessClock) SnapshotLen() int { return 8 + 4*len(a.slots) }

// Snapshot encodes the table: the slot count, then the slots.
func (a *AccessClock) Snapshot() []byte {
	b := make([]byte, 0, a.SnapshotLen())
	b = binary.LittleEndian.AppendUint64(b, uint64(len(a.slots)))
	for i := range a.slots {
		b = binary.LittleEndian.AppendUint32(b, a.slots[i].Load())
	}
	return b
}

// Restore loads a snapshot, which may come from a clock of another size (a
// cache reopened with another SizeLimit): slots are indexed by the top bits
// of the hash, so a smaller snapshot's slot covers several of ours and is
// copied to each, and several slots of a larger one fold into one of ours,
// which keeps the newest of their ticks (the rule for keys sharing a slot).
func (a *AccessClock) Restore(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("%w: %d bytes", ErrBadSnapshot, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n == 0 || n&(n-1) != 0 || n > 1<<40 || uint64(len(b)-8) != 4*n {
		return fmt.Errorf("%w: %d bytes for %d slots", ErrBadSnapshot, len(b), n)
	}
	b = b[8:]
	m := uint64(len(a.slots))
	for i := range a.slots {
		var t uint32
		if n <= m {
			t = binary.LittleEndian.Uint32(b[4*(uint64(i)/(m/n)):])
		} else {
			fold := n / m
			for j := uint64(i) * fold; j < uint64(i+1)*fold; j++ {
				t = newer(t, binary.LittleEndian.Uint32(b[4*j:]))
			}
		}
		a.slots[i].Store(t)
	}
	return nil
}

// newer returns the later of two ticks, with 0 meaning none. Ticks wrap, so
// "later" is by wrapping difference: right for ticks less than 2^31 apart
// (248 days).
func newer(t, u uint32) uint32 {
	switch {
	case t == 0:
		return u
	case u == 0:
		return t
	case int32(u-t) > 0:
		return u
	}
	return t
}
