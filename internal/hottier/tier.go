// Package hottier is a cache of hot values in memory shared by every process
// of a cache directory. One process (the directory's owner) writes it; every
// process reads it with plain loads from its own mapping, without a system
// call or a round trip.
//
// A tier is one memory file (memfd): a header, an index and an arena.
//
//	[0, 4096)              header: magic, geometry, epochs, the rings' tails
//	[4096, 4096+index)     index: buckets of 8 ways, 512 bytes a bucket
//	[4096+index, size)     arena: two rings of records, small then main
//
// A way says which key's record it holds (its hash), where the record is
// (ring, position), how long its key and value are, when it expires, the
// xxhash64 of key and value and, for the owner alone, how many bytes the
// value's record takes in the store (Writer.Stored). A bucket keeps its 8 ways' hashes in its
// first cache line and their other fields (56 bytes a way) after it, so a
// lookup reads one line to find its way, or to find there is none. A way
// is written under a sequence number (a seqlock: odd while the writer
// changes it, the hash included), and every field is read and written
// atomically, so a reader sees a way whole or sees its sequence number
// move. Records are written to ring
// space no way points to, then published by writing the way.
//
// A reader never waits: a way being written, a sequence number that moved,
// a record whose ring space was reused, bytes that do not hash to the
// way's sum are all misses. So a writer killed in the middle of a write
// leaves, at worst, a way that reads as a miss forever, never a torn value
// and never a reader spinning. The sum is what makes a value whole: a
// record's bytes are copied from shared memory and hashed in private
// memory, and a copy that raced with the writer reusing the space does not
// match (the chance that one does is 2^-64).
//
// Eviction follows S3-FIFO: a new key's record goes to the small ring (a
// tenth of the arena); when the small ring's tail comes round, a record
// read since it was written moves to the main ring and the others leave,
// their hashes kept in a ghost list so that a key read again soon goes
// straight to main. At the main ring's tail a record read since it was
// written or moved is moved to the head once more (CLOCK), the others
// leave. A scan reads each key once, so its records leave from the small
// ring without pushing the hot set out of main. Readers mark a way read
// by setting its ref word, the only word they write.
package hottier

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"
)

const (
	magic      = "dchot\x00\x00\x04" // 4: a key's bucket is its hash's top bits (slot)
	headerSize = 4096
	ways       = 8
	hashesSize = ways * 8 // a bucket's first line: its ways' hashes
	waySize    = 56
	bucketSize = hashesSize + ways*waySize // 512
	recHeader  = 16                        // hash, key length, value length
	// MinSize is the smallest tier: smaller sizes are raised to it.
	MinSize = 1 << 20
	// MaxSize bounds a tier (and what a reader accepts in a header).
	MaxSize = 1 << 40
)

// Header offsets. Each word a process writes often has a cache line of its
// own.
const (
	hMagic      = 0
	hSize       = 8
	hBuckets    = 16 // log2 of the number of buckets
	hRingOff    = 24 // [2]uint64: offsets of the small and the main ring
	hRingSize   = 40 // [2]uint64: their sizes
	hID         = 56
	hEpoch      = 64  // entries written under another epoch are gone (Clear)
	hOwnerEpoch = 128 // set by the owner engine: see OwnerEpoch
	hTail       = 192 // [2]uint64 at 192 and 256: the rings' tails
)

// Way offsets; the way's hash (0: empty) is in its bucket's first line
// (hashOf).
const (
	wSeq    = 0 // uint32, odd while the writer changes the way
	wRef    = 4 // uint32, set by readers when they hit
	wPos    = 8
	wLens   = 16 // key length (low 32 bits), value length (high 32 bits)
	wExpiry = 24
	wSum    = 32
	wEpoch  = 40
	wRing   = 48 // the ring (low 32 bits) and the stored record's size (high 32)
)

const (
	small = 0
	main  = 1
)

// ErrBadTier is returned by Map for memory that does not hold a tier.
var ErrBadTier = errors.New("hottier: not a hot tier")

// Tier is one process's mapping of a tier.
type Tier struct {
	mem      []byte
	mask     uint64 // buckets - 1
	shift    uint   // 64 - log2(buckets): a hash's bucket is its top bits (slot)
	ringOff  [2]uint64
	ringSize [2]uint64
	id       uint64
}

// Create makes a tier of size bytes (at least MinSize) in a new memory file
// and maps it. The file goes away with the last process that maps or holds
// it. The caller owns f and may close it once every process that needs it
// opened it (through /proc/PID/fd of this process, or a passed descriptor).
func Create(size int64, id uint64) (*Tier, *os.File, error) {
	size = max(size, MinSize)
	size = min(size, MaxSize)
	fd, err := unix.MemfdCreate("diskcache-hottier", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("hottier: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "diskcache-hottier")
	g := layoutOf(size)
	logBuckets, index, arena, smallSize := g.logBuckets, g.index, g.arena, g.small
	total := headerSize + index + arena
	if err := f.Truncate(int64(total)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("hottier: size the tier to %d bytes: %w", total, err)
	}
	hdr := make([]byte, 64)
	copy(hdr, magic)
	binary.LittleEndian.PutUint64(hdr[hSize:], total)
	binary.LittleEndian.PutUint64(hdr[hBuckets:], uint64(logBuckets))
	binary.LittleEndian.PutUint64(hdr[hRingOff:], headerSize+index)
	binary.LittleEndian.PutUint64(hdr[hRingOff+8:], headerSize+index+smallSize)
	binary.LittleEndian.PutUint64(hdr[hRingSize:], smallSize)
	binary.LittleEndian.PutUint64(hdr[hRingSize+8:], arena-smallSize)
	binary.LittleEndian.PutUint64(hdr[hID:], id)
	if _, err := f.WriteAt(hdr, 0); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("hottier: write the header: %w", err)
	}
	t, err := Map(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return t, f, nil
}

// layout is how Create divides a tier of a given size.
type layout struct {
	logBuckets          int
	index, arena, small uint64 // bytes; the main ring is arena - small
}

// layoutOf is the layout of a tier of size bytes. The index takes a
// quarter: 64 bytes of a way for every 192 bytes of arena, about a record
// of a 128-byte value and its key; the small ring a tenth of the arena.
func layoutOf(size int64) layout {
	size = min(max(size, MinSize), MaxSize)
	logBuckets := 0
	for uint64(bucketSize)<<(logBuckets+1) <= uint64(size)/4 {
		logBuckets++
	}
	index := uint64(bucketSize) << logBuckets
	arena := (uint64(size) - headerSize - index) &^ 7
	return layout{logBuckets: logBuckets, index: index, arena: arena, small: (arena / 10) &^ 7}
}

// GeometryOf is the Geometry of the tier Create would make of size bytes,
// without making it.
func GeometryOf(size int64) (small, main uint64, ghosts int) {
	g := layoutOf(size)
	return g.small, g.arena - g.small, ghostSize(uint64(1) << g.logBuckets)
}

// Map maps the tier in f, checking that its header describes memory of
// f's size. A reader trusts nothing else of the tier's contents.
func Map(f *os.File) (*Tier, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("hottier: %w", err)
	}
	size := fi.Size()
	if size < headerSize || size > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadTier, size)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("hottier: map %d bytes: %w", size, err)
	}
	t, err := parse(mem)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return t, nil
}

func parse(mem []byte) (*Tier, error) {
	le := binary.LittleEndian
	size := uint64(len(mem))
	if string(mem[:8]) != magic || le.Uint64(mem[hSize:]) != size {
		return nil, fmt.Errorf("%w: bad magic or size", ErrBadTier)
	}
	logBuckets := le.Uint64(mem[hBuckets:])
	if logBuckets > 40 {
		return nil, fmt.Errorf("%w: 2^%d buckets", ErrBadTier, logBuckets)
	}
	t := &Tier{mem: mem, mask: 1<<logBuckets - 1, shift: uint(64 - logBuckets), id: le.Uint64(mem[hID:])}
	index := uint64(bucketSize) << logBuckets
	end := headerSize + index
	for r := range 2 {
		t.ringOff[r] = le.Uint64(mem[hRingOff+8*r:])
		t.ringSize[r] = le.Uint64(mem[hRingSize+8*r:])
		if t.ringOff[r] != end || t.ringSize[r] < recHeader || t.ringSize[r]%8 != 0 || t.ringSize[r] > size-end {
			return nil, fmt.Errorf("%w: ring %d at %d, %d bytes", ErrBadTier, r, t.ringOff[r], t.ringSize[r])
		}
		end += t.ringSize[r]
	}
	return t, nil
}

// Unmap releases the mapping. No call on t may be in flight or follow.
func (t *Tier) Unmap() error { return unix.Munmap(t.mem) }

// ID is the identifier the tier was created with.
func (t *Tier) ID() uint64 { return t.id }

// Size is the tier's size in bytes.
func (t *Tier) Size() int { return len(t.mem) }

// Geometry returns the sizes in bytes of the small and the main ring, and
// the number of hashes the writer's ghost list keeps: what a simulation of
// the tier's eviction needs.
func (t *Tier) Geometry() (small, main uint64, ghosts int) {
	return t.ringSize[0], t.ringSize[1], ghostSize(t.mask + 1)
}

// ghostSize is the length of the ghost list of a tier of so many buckets.
func ghostSize(buckets uint64) int { return int(max(buckets, 1024)) }

// RecordSize is the bytes a record of a key and a value of so many bytes
// together takes in a ring.
func RecordSize(keyValue int) uint64 { return align8(recHeader + uint64(keyValue)) }

// OwnerEpoch is a number the owner engine stores in the tier and readers
// compare with one it keeps elsewhere: the engine's way of telling its
// readers that a tier was left by an owner that is gone.
func (t *Tier) OwnerEpoch() uint64 { return atomic.LoadUint64(t.word(hOwnerEpoch)) }

// SetOwnerEpoch stores the owner's epoch; only the writer calls it.
func (t *Tier) SetOwnerEpoch(e uint64) { atomic.StoreUint64(t.word(hOwnerEpoch), e) }

// word returns the 8-byte word at off. The mapping is page aligned and off
// a multiple of 8, so atomic access is sound.
func (t *Tier) word(off uint64) *uint64 { return (*uint64)(unsafe.Pointer(&t.mem[off])) }

func (t *Tier) word32(off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&t.mem[off])) }

func (t *Tier) tail(r int) uint64 { return atomic.LoadUint64(t.word(hTail + 64*uint64(r))) }

// bucket returns the offset of hash's bucket in the index.
func (t *Tier) bucket(hash uint64) uint64 { return headerSize + t.slot(hash)*bucketSize }

// slot returns the number of hash's bucket: the hash's top bits. The
// engine's store keeps its records in the order of the same bits (a
// bucketed key starts with the hash's top 16), so a warm, which reads the
// store in order, writes the index (and the writer's counts a bucket) from
// start to end instead of a cache line and a page anywhere in it for each
// record. Warming 500,000 records of 128 B into 256 MiB, the writer's part
// took 0.32 s of CPU instead of 0.62 (a profile), the whole warm 0.79-1.00
// s instead of 0.98-1.09 (alternated, four runs each). Reads are random
// either way.
func (t *Tier) slot(hash uint64) uint64 { return hash >> t.shift }

// wayAt returns the offset of way i of the bucket at b.
func wayAt(b, i uint64) uint64 { return b + hashesSize + i*waySize }

// hashOf returns the offset of the hash of the way at off.
func hashOf(off uint64) uint64 {
	b := headerSize + (off-headerSize)/bucketSize*bucketSize
	return b + (off-b-hashesSize)/waySize*8
}

// Hash is the hash a tier files key under; 0 is kept for empty ways.
func Hash(key string) uint64 { return HashOf(xxhash.Sum64String(key)) }

// HashOf is Hash of a key whose xxhash64 the caller has already computed
// (the engine indexes everything by it): a key is not hashed twice.
func HashOf(xxh uint64) uint64 {
	if xxh == 0 {
		return 1
	}
	return xxh
}

// way is what a reader read of a way, consistent under its sequence number.
type way struct {
	pos, expiry, sum, epoch, ring uint64
	klen, vlen                    uint64
	stored                        uint64 // Record.Stored
}

// readWay reads the way at off if it holds hash and was not being changed.
func (t *Tier) readWay(off, hash uint64) (way, bool) {
	s := atomic.LoadUint32(t.word32(off + wSeq))
	if s&1 != 0 || atomic.LoadUint64(t.word(hashOf(off))) != hash {
		return way{}, false
	}
	lens := atomic.LoadUint64(t.word(off + wLens))
	ring := atomic.LoadUint64(t.word(off + wRing))
	w := way{
		pos:    atomic.LoadUint64(t.word(off + wPos)),
		expiry: atomic.LoadUint64(t.word(off + wExpiry)),
		sum:    atomic.LoadUint64(t.word(off + wSum)),
		epoch:  atomic.LoadUint64(t.word(off + wEpoch)),
		ring:   ring & 0xffffffff,
		stored: ring >> 32,
		klen:   lens & 0xffffffff,
		vlen:   lens >> 32,
	}
	return w, atomic.LoadUint32(t.word32(off+wSeq)) == s
}

// Get returns a copy of key's value and its expiry (unix nanoseconds, 0 for
// none), if the tier holds it. hash is Hash(key). The caller checks the
// expiry: the tier does not read the clock.
func (t *Tier) Get(key string, hash uint64) ([]byte, int64, bool) {
	epoch := atomic.LoadUint64(t.word(hEpoch))
	b := t.bucket(hash)
	for i := range uint64(ways) {
		if atomic.LoadUint64(t.word(b+8*i)) != hash {
			continue
		}
		off := wayAt(b, i)
		w, ok := t.readWay(off, hash)
		if !ok {
			continue
		}
		if w.epoch != epoch || w.klen != uint64(len(key)) || w.ring > main {
			return nil, 0, false
		}
		v, ok := t.copyRecord(w)
		if !ok || string(v[:w.klen]) != key {
			return nil, 0, false
		}
		if atomic.LoadUint32(t.word32(off+wRef)) == 0 {
			atomic.StoreUint32(t.word32(off+wRef), 1)
		}
		return v[w.klen:], int64(w.expiry), true
	}
	return nil, 0, false
}

// copyRecord copies w's key and value out of the arena, or fails if the
// space was reused or the bytes do not hash to w's sum.
func (t *Tier) copyRecord(w way) ([]byte, bool) {
	size := t.ringSize[w.ring]
	n := recHeader + w.klen + w.vlen
	rel := w.pos % size
	if w.klen > size || w.vlen > size || rel+n > size || w.pos < t.tail(int(w.ring)) {
		return nil, false
	}
	start := t.ringOff[w.ring] + rel + recHeader
	buf := make([]byte, w.klen+w.vlen)
	copy(buf, t.mem[start:start+w.klen+w.vlen])
	// The writer moves a ring's tail before it reuses the space behind it.
	if w.pos < t.tail(int(w.ring)) || xxhash.Sum64(buf) != w.sum {
		return nil, false
	}
	return buf, true
}
