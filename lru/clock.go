package lru

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/diskcache-go/diskcache/internal/offheap"
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

// AccessClock remembers the last access of each key in a table of 4-byte
// slots indexed by the top bits of the key's hash. Keys that share a slot
// share the most recent access of the two, which can only make a cold key
// look warmer, never a hot key colder. A slot of 0 means "no access
// recorded": the caller falls back to the record's write time. It is safe
// for concurrent use.
//
// The table is sized by the caller from what the cache holds (SlotsFor) and
// grows with it (Grow): a cache of a few keys under a large limit keeps a
// few kilobytes, not the limit's worth.
type AccessClock struct {
	tab atomic.Pointer[clockTable]
}

// clockTable is one size of the clock's table. Its slots live outside the
// Go heap (internal/offheap): every function that uses them keeps the
// table alive past its last use.
type clockTable struct {
	slots []atomic.Uint32
	shift uint // hash >> shift is the slot
	// prev is the table this one replaced, until replace has merged it in
	// a second time: a touch of it that the first pass missed is read
	// from there meanwhile (load).
	prev atomic.Pointer[clockTable]
}

// Slot bounds: 4Ki slots (16 KiB) to 4Mi slots (16 MiB).
const (
	MinSlots = 1 << 12
	MaxSlots = 1 << 22
)

// SlotsPerKey is how many slots SlotsFor gives each key the cache holds.
// The zipf simulation (TestApproximationMatchesExactLRU) runs at about 13
// slots a cached key and stays within 0.3 points of an exact LRU; at 2-4
// slots a key it lost 0.5-1.2 points.
const SlotsPerKey = 16

// SlotsFor returns the table size for a cache that holds keys entries under
// a limit of sizeLimit bytes: SlotsPerKey slots a key, a power of two of at
// least MinSlots, and at most a slot for each 256 bytes of the limit (and
// MaxSlots), since no more keys than that fit under it.
func SlotsFor(keys, sizeLimit int64) int {
	ceiling := MinSlots
	for int64(ceiling) < sizeLimit/256 && ceiling < MaxSlots {
		ceiling <<= 1
	}
	s := MinSlots
	for int64(s) < keys*SlotsPerKey && s < ceiling {
		s <<= 1
	}
	return s
}

// NewAccessClock returns a clock with slots rounded up to a power of two.
func NewAccessClock(slots int) *AccessClock {
	a := &AccessClock{}
	a.tab.Store(newClockTable(slots))
	return a
}

func newClockTable(slots int) *clockTable {
	n := 1
	for n < slots {
		n <<= 1
	}
	t := &clockTable{shift: uint(64 - bits.TrailingZeros(uint(n)))}
	t.slots = offheap.Make[atomic.Uint32](t, n)
	return t
}

// Slots returns the table size.
func (a *AccessClock) Slots() int { return len(a.tab.Load().slots) }

func (t *clockTable) slot(h uint64) *atomic.Uint32 {
	if len(t.slots) == 1 {
		return &t.slots[0]
	}
	return &t.slots[h>>t.shift]
}

// Touch records an access of the key with hash h at now. It writes only
// when the slot holds another tick, so a hot key costs one store per tick,
// not one per access.
//
// No touch is lost to a Grow or an Install that races it: if the clock's
// table changed while it wrote, it writes the new table too (see replace).
// So a slot that a touch made non-zero stays non-zero, in every table the
// clock has from then on, which is what Seen relies on.
func (a *AccessClock) Touch(h uint64, now Tick) {
	if now == 0 {
		now = 1 // 0 means "never"
	}
	a.write(a.tab.Load(), h, uint32(now), false)
}

// Note records an access of the key with hash h at t unless its slot holds
// a later one: what a caller that learns of an old access (a record's write
// time) tells the clock without making a key look colder. Like Touch, it
// survives a racing Grow.
func (a *AccessClock) Note(h uint64, t Tick) {
	if t == 0 {
		t = 1
	}
	a.write(a.tab.Load(), h, uint32(t), true)
}

// write stores v in h's slot of t, the clock's table when the caller
// loaded it, perhaps some time ago (keepLater: unless the slot holds a
// later tick), and again in each table that replaced t meanwhile.
func (a *AccessClock) write(t *clockTable, h uint64, v uint32, keepLater bool) {
	for {
		s := t.slot(h)
		if keepLater {
			merge(s, v)
		} else if s.Load() != v {
			s.Store(v)
		}
		runtime.KeepAlive(t)
		next := a.tab.Load()
		if next == t {
			return
		}
		t = next
	}
}

// Seen reports whether any key whose hash shares h's slot was ever touched
// (Touch or Note) in this clock, or in the snapshot it was loaded from. A
// caller that touches every key it stores can take false as "not stored".
func (a *AccessClock) Seen(h uint64) bool { return a.load(h) != 0 }

// Last returns the last recorded access of the key with hash h and whether
// there is one.
func (a *AccessClock) Last(h uint64) (Tick, bool) {
	v := a.load(h)
	return Tick(v), v != 0
}

// load reads the slot of h, and when it is zero and a table is being
// replaced, the replaced table's: a touch that returned before the
// replacement's first pass read its slot, or after it, is in one of them.
func (a *AccessClock) load(h uint64) uint32 {
	t := a.tab.Load()
	v := t.slot(h).Load()
	if v == 0 {
		if p := t.prev.Load(); p != nil {
			v = p.slot(h).Load()
			runtime.KeepAlive(p)
		}
	}
	runtime.KeepAlive(t)
	return v
}

// Grow replaces the table with one of at least slots slots, each old slot
// copied to the new slots it covers, and reports whether it grew. Touches
// go on meanwhile: once the new table is in place, the old one is merged
// into it again (each slot keeping the newer tick), after a pause that
// lets most touches that read the old table finish writing it; a touch
// that finds the table changed once it wrote writes the new one as well
// (Touch). So no touch is lost. (Without the second pass, the reads of a
// hot set racing a growth left some of its keys looking cold:
// TestRecencySurvivesRestart kept 988 of 1000.) Grow must not run
// concurrently with itself or ReadFrom.
func (a *AccessClock) Grow(slots int) bool {
	if slots <= a.Slots() {
		return false
	}
	t := newClockTable(slots)
	if old := a.tab.Load(); mostlyTouched(old) {
		// The merge writes every page of t under a touched one: allocated
		// at once, not each by its first write (BenchmarkGrow, 2Mi slots
		// to 4Mi: 42-45 ms against 100-130).
		offheap.Populate(t.slots)
		runtime.KeepAlive(old)
	}
	a.replace(t)
	return true
}

// mostlyTouched reports whether half of t's pages or more were ever
// written, as those of a clock grown for the keys the store holds are: 8
// slots a key or fewer sets slots in every page.
func mostlyTouched(t *clockTable) bool {
	defer runtime.KeepAlive(t)
	n, pages, ok := offheap.CountTouched(t.slots)
	return ok && 2*n >= pages
}

// replace puts t, a table of at least the clock's size that no other
// goroutine reads yet, in place of the clock's: each slot of the clock's
// is merged into the slots of t it covers, t is swapped in, and after
// growPause, which lets a touch that read the old table finish writing
// it, the old table is merged in again (Grow, Install). A touch that wrote
// the old table and then still found it in place wrote it before the swap,
// so the second pass sees it, and until then readers find it in t.prev;
// one that found t in place writes t itself. The clock's pages
// that were never written hold only zeros and are skipped: reading them
// would fault each in (40 ms for a 16 MiB clock just made); each pass asks
// again, as touches go on.
func (a *AccessClock) replace(t *clockTable) {
	old := a.tab.Load()
	defer runtime.KeepAlive(old)
	defer runtime.KeepAlive(t)
	split := len(t.slots) / len(old.slots)
	perPage := offheap.PageSize / int(unsafe.Sizeof(old.slots[0]))
	mergeOld := func(into func(i int, v uint32)) {
		touched := offheap.Touched(old.slots)
		for p := 0; p*perPage < len(old.slots); p++ {
			if touched != nil && !touched[p] {
				continue
			}
			for i := p * perPage; i < min((p+1)*perPage, len(old.slots)); i++ {
				if v := old.slots[i].Load(); v != 0 {
					for j := i * split; j < (i+1)*split; j++ {
						into(j, v)
					}
				}
			}
		}
	}
	dst := plainSlots(t)
	mergeOld(func(j int, v uint32) { dst[j] = newer(dst[j], v) })
	t.prev.Store(old)
	a.tab.Store(t)
	time.Sleep(growPause)
	mergeOld(func(j int, v uint32) { merge(&t.slots[j], v) })
	t.prev.Store(nil)
}

// growPause is how long Grow waits before its second pass.
const growPause = time.Millisecond

// Sum returns a hash of the table's contents, so that a caller can tell
// whether a snapshot would differ from one it saved before without taking
// (and allocating) it. It reads the slots one by one while touches may go
// on: a touch that races it may or may not change the result.
func (a *AccessClock) Sum() uint64 { return a.tab.Load().sum() }

func (t *clockTable) sum() uint64 {
	defer runtime.KeepAlive(t)
	h := uint64(len(t.slots))
	for i := range t.slots {
		h = sumSlot(h, t.slots[i].Load())
	}
	return h
}

// sumSlot adds a slot to a Sum: FNV-1a's step, a slot at a time.
func sumSlot(h uint64, v uint32) uint64 { return (h ^ uint64(v)) * 0x100000001b3 }

// ErrBadSnapshot reports a snapshot that does not fit the clock.
var ErrBadSnapshot = errors.New("lru: access clock snapshot does not fit")

// SnapshotLen returns the length of the clock's Snapshot: a snapshot of
// that length restores as an exact copy, not split or folded.
func (a *AccessClock) SnapshotLen() int { return 8 + 4*a.Slots() }

// Snapshot encodes the table: the slot count, then the slots.
func (a *AccessClock) Snapshot() []byte {
	var b bytes.Buffer
	b.Grow(a.SnapshotLen())
	a.WriteTo(&b)
	return b.Bytes()
}

// SnapshotSize is the bytes WriteTo writes, unless the clock grows first.
func (a *AccessClock) SnapshotSize() int64 { return int64(8 + 4*a.Slots()) }

// WriteTo writes the clock's snapshot to w, streaming it: a 16 MiB table
// is not copied whole into memory first.
func (a *AccessClock) WriteTo(w io.Writer) (int64, error) {
	t := a.tab.Load()
	defer runtime.KeepAlive(t)
	buf := binary.LittleEndian.AppendUint64(make([]byte, 0, bufferFor(8+4*uint64(len(t.slots)))), uint64(len(t.slots)))
	for i := range t.slots {
		buf = binary.LittleEndian.AppendUint32(buf, t.slots[i].Load())
		if len(buf) == cap(buf) || i == len(t.slots)-1 {
			if _, err := w.Write(buf); err != nil {
				return 0, err
			}
			buf = buf[:0]
		}
	}
	return int64(8 + 4*len(t.slots)), nil
}

// bufferFor is the buffer that streams a snapshot of size bytes: 64 KiB,
// or the snapshot's size when smaller, so that a small cache's Open and
// Close (a process that sets a key and exits) do not allocate 64 KiB for a
// few slots.
func bufferFor(size uint64) int { return int(max(min(size, 64<<10), 8)) }

// Restore loads a snapshot; see ReadFrom.
func (a *AccessClock) Restore(b []byte) error {
	if len(b) >= 8 {
		n := binary.LittleEndian.Uint64(b)
		if n > 1<<40 || uint64(len(b)-8) != 4*n {
			return fmt.Errorf("%w: %d bytes for %d slots", ErrBadSnapshot, len(b), n)
		}
	}
	_, err := a.ReadFrom(bytes.NewReader(b))
	return err
}

// ReadFrom loads a snapshot written by WriteTo into the clock: Stage,
// then Install. It must not run concurrently with Grow.
func (a *AccessClock) ReadFrom(r io.Reader) (int64, error) {
	st, n, err := a.Stage(r)
	if err != nil {
		return n, err
	}
	return n, a.Install(st)
}

// Staged is a snapshot read into a table of the clock's size that nothing
// reads yet; Install puts it in place.
type Staged struct {
	t     *clockTable
	exact bool   // the snapshot had the table's size: slot for slot
	sum   uint64 // the snapshot's slots hashed as Sum hashes a table's
}

// Exact reports whether the snapshot had the clock's size, so that the
// clock, once it is installed and before any touch, would save the same
// snapshot.
func (st *Staged) Exact() bool { return st.exact }

// Sum is the Sum of the clock that saved the snapshot, whatever the size
// it was staged to.
func (st *Staged) Sum() uint64 { return st.sum }

// Stage reads a snapshot written by WriteTo into a new table of the
// clock's size, which may differ from the snapshot's (a cache that held
// another number of keys, or was reopened with another SizeLimit): slots
// are indexed by the top bits of the hash, so a smaller snapshot's slot
// covers several of ours and is copied to each, and several slots of a
// larger one fold into one of ours, which keeps the newest of their ticks
// (the rule for keys sharing a slot). The clock is not changed: a snapshot
// that does not fit gives ErrBadSnapshot, and one its caller finds
// damaged after reading it (a checksum at its end) is simply not
// installed.
//
// The table is private until Install, so it is written with plain
// stores: merging a 16 MiB snapshot slot by slot into the clock in use,
// with a compare-and-swap each, took 125 ms of CPU, beside the first
// reads of a reopened cache.
func (a *AccessClock) Stage(r io.Reader) (*Staged, int64, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	n := binary.LittleEndian.Uint64(hdr[:])
	if n == 0 || n&(n-1) != 0 || n > 1<<40 {
		return nil, 8, fmt.Errorf("%w: %d slots", ErrBadSnapshot, n)
	}
	t := newClockTable(a.Slots())
	defer runtime.KeepAlive(t)
	// Sized for the keys the cache holds, 16 slots a key: a snapshot of
	// them sets a slot or more in every page.
	offheap.Populate(t.slots)
	dst := plainSlots(t)
	m := uint64(len(dst))
	buf := make([]byte, bufferFor(4*n))
	read := int64(8)
	sum := n
	for i := uint64(0); i < n; {
		k := min(n-i, uint64(len(buf)/4))
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return nil, read, fmt.Errorf("%w: %d slots, cut short at byte %d: %w", ErrBadSnapshot, n, read, err)
		}
		read += int64(4 * k)
		for j := uint64(0); j < k; j, i = j+1, i+1 {
			v := binary.LittleEndian.Uint32(buf[4*j:])
			sum = sumSlot(sum, v)
			switch {
			case v == 0:
			case n == m:
				dst[i] = v
			case n < m:
				split := m / n
				for s := i * split; s < (i+1)*split; s++ {
					dst[s] = v
				}
			default:
				d := &dst[i/(n/m)]
				*d = newer(*d, v)
			}
		}
	}
	if k, _ := r.Read(buf[:1]); k != 0 {
		return nil, read, fmt.Errorf("%w: bytes past the %d slots", ErrBadSnapshot, n)
	}
	return &Staged{t: t, exact: n == m, sum: sum}, read, nil
}

// Install puts a staged snapshot in place. Each slot keeps the newer of
// the snapshot's tick and the clock's, so a clock may be touched while a
// snapshot stages (a cache serving calls while a large one loads in the
// background) and loses no touch (replace, as in Grow). It fails only if
// the clock grew since Stage; it must not run concurrently with Grow.
func (a *AccessClock) Install(st *Staged) error {
	if n := a.Slots(); n != len(st.t.slots) {
		return fmt.Errorf("%w: staged for %d slots, the clock has %d", ErrBadSnapshot, len(st.t.slots), n)
	}
	a.replace(st.t)
	return nil
}

// Clock returns a new clock holding the staged snapshot, for a caller
// that has no clock in use yet: nothing to merge, and no pause.
func (st *Staged) Clock() *AccessClock {
	a := &AccessClock{}
	a.tab.Store(st.t)
	return a
}

// plainSlots is t's slots as plain numbers, for a table no other goroutine
// reads yet: publishing it (tab.Store) orders these writes before any
// read of it.
func plainSlots(t *clockTable) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(t.slots))), len(t.slots))
}

// merge stores v in s unless s holds a newer tick, without losing a touch
// that races it.
func merge(s *atomic.Uint32, v uint32) {
	for {
		old := s.Load()
		if nv := newer(old, v); nv == old || s.CompareAndSwap(old, nv) {
			return
		}
	}
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
