package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/diskcache-go/diskcache/internal/offheap"
)

// presence is an in-memory Bloom filter over the hashes of the keys in the
// store. A write must know whether its key is new, to keep Len exact, and
// asking Pebble costs a Get (measured: about 40% of a Set's CPU). The
// filter answers "certainly absent" for almost every new key, so only
// overwrites (and a few percent of false positives) pay for the read; a
// Get of a key the filter has never seen is a miss without touching Pebble.
//
// It is a blocked filter: the probes of one key fall in one 64-byte block,
// one cache line. At 8 bits per key and 6 probes its false positive rate
// is about 2.5% when full. Deleted keys stay in it, so it is rebuilt from
// a scan of the store when the keys added since it was built pass its
// capacity, for twice the keys the store then holds (presenceCapacity).
//
// A false positive costs a Pebble Get of a missing key, and in a store
// being filled that Get is no cheap miss: it asks the bloom filter of
// every L0 table, and L0 is deep while compactions lag the writes. In a
// fill of 1,000,000 keys the 13,000-19,000 false positives took 29-38 us
// each, a tenth of the fill's time.
type presence struct {
	// blocks live outside the Go heap (internal/offheap): every method that
	// uses them keeps p alive past its last use.
	blocks   []presenceBlock
	capacity int64   // keys it was sized for
	added    counter // keys added since it was built
}

const (
	presenceBitsPerKey = 8
	presenceProbes     = 6 // filters saved with 7 (before 2026-12-05) check the same bits and more
	// presenceMinKeys is the smallest capacity: 4 KB of filter. The filter
	// grows with the keys (a rebuild when the keys added pass its capacity),
	// not with the limit: a cache of a few keys keeps and saves kilobytes.
	presenceMinKeys = 1 << 12
)

type presenceBlock [8]atomic.Uint64

// presenceCapacity is the capacity a rebuild gives the filter of a store
// that holds n keys: twice n, so a filter goes from 16 bits per key just
// after a rebuild to 8 when full.
//
// Three times n was tried (2026-12-05): from 24 bits to 8, a fill of
// 1,000,000 keys met half the false positives and scanned the store a
// third less often, and ran 4-5% faster (BenchmarkCompare). But the filter
// is memory the lifecycle issue bounds with the rest (peak RSS at most raw
// Pebble's + 32 MiB at 5,000,000 keys, where the store stood at +28-30
// MiB): tripled all the way, the W9 fill peaked 3.6 MB higher and its
// reopen 5.3 MB; tripled only up to 1 MiB of filter and doubled beyond, the
// fill still peaked 5-7 MB higher (two harness runs against three, each
// beside raw Pebble), its last rebuild then falling near the fill's end.
func presenceCapacity(n int64) int64 {
	return max(2*n, presenceMinKeys)
}

// newPresence returns an empty filter for capacity keys (at least one).
func newPresence(capacity int64) *presence {
	capacity = max(capacity, 1)
	return newPresenceBlocks(capacity, presenceBlocks(capacity))
}

// newPresenceBlocks returns an empty filter of n blocks for capacity keys.
// Every filter is made to be filled at once, from a scan or from its file,
// which writes all its pages (a scan of n keys into a filter for 2n sets
// bits in every page): they are allocated in one call, not each at its
// first write. A 10 MiB filter (5,000,000 keys) read from its file at
// Open: 14-15 ms against 26-27.
func newPresenceBlocks(capacity, n int64) *presence {
	p := &presence{capacity: capacity}
	p.blocks = offheap.Make[presenceBlock](p, int(n))
	offheap.Populate(p.blocks)
	return p
}

// presenceBlocks is the number of blocks of a filter for capacity keys.
func presenceBlocks(capacity int64) int64 {
	return (capacity*presenceBitsPerKey + 511) / 512
}

// probes yields the block and the bit positions of hash h. The block comes
// from the high bits, the probes from the low 32 by double hashing.
func (p *presence) block(h uint64) *presenceBlock {
	hi, _ := bits.Mul64(h, uint64(len(p.blocks)))
	return &p.blocks[hi]
}

func (p *presence) add(h uint64) {
	b := p.block(h) // p stays alive to the end: p.added below
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := 0; i < presenceProbes; i++ {
		bit := (h1 + uint32(i)*h2) & 511
		b[bit>>6].Or(1 << (bit & 63))
	}
	p.added.add(h>>32, 1)
}

// warm loads h's block, for a mayContain or add soon after (warmKey).
func (p *presence) warm(h uint64) {
	p.block(h)[0].Load()
	runtime.KeepAlive(p)
}

func (p *presence) mayContain(h uint64) bool {
	b := p.block(h)
	h1, h2 := uint32(h), uint32(h>>32)|1
	in := true
	for i := 0; i < presenceProbes && in; i++ {
		bit := (h1 + uint32(i)*h2) & 511
		in = b[bit>>6].Load()&(1<<(bit&63)) != 0
	}
	runtime.KeepAlive(p)
	return in
}

// full reports whether enough keys were added that the false positive rate
// has doubled or worse; time to rebuild.
func (p *presence) full() bool { return p.added.load() > p.capacity }

// nativeLittleEndian: the filter's words are laid out in memory as in its
// file, so they are read and written as they are (a 6 MB filter of 5M keys
// loads in a few milliseconds instead of a word at a time).
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// words returns the filter's memory as bytes. Only for a filter no one else
// can reach yet, or when no writer runs.
func (p *presence) words() []byte {
	if len(p.blocks) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&p.blocks[0])), len(p.blocks)*int(unsafe.Sizeof(p.blocks[0])))
}

// fileSize is the bytes writeTo writes.
func (p *presence) fileSize() int64 { return 16 + 64*int64(len(p.blocks)) }

// writeTo streams the filter out (presenceFile): capacity, added, then the
// words, little-endian. It is only called when no writer runs (Close).
func (p *presence) writeTo(w io.Writer) error {
	defer runtime.KeepAlive(p)
	// Room for the header and, off little-endian machines, 64 KiB of
	// words at a time.
	buf := make([]byte, 0, min(64<<10, p.fileSize()))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(p.capacity))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(p.added.load()))
	if nativeLittleEndian {
		if _, err := w.Write(buf); err != nil {
			return err
		}
		_, err := w.Write(p.words())
		return err
	}
	for i := range p.blocks {
		if len(buf)+64 > cap(buf) {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		for j := range p.blocks[i] {
			buf = binary.LittleEndian.AppendUint64(buf, p.blocks[i][j].Load())
		}
	}
	_, err := w.Write(buf)
	return err
}

// readPresence reads a filter written by writeTo from r, which holds size
// bytes: the header and the blocks. The number of blocks comes from size,
// not from the capacity, so that filters built at another number of bits
// a key (10, before 2026-12-05) read as they were built; a damaged header
// cannot make it allocate more than the file could fill.
func readPresence(r io.Reader, size int64) (*presence, error) {
	buf := make([]byte, min(64<<10, max(size, 16)))
	if _, err := io.ReadFull(r, buf[:16]); err != nil {
		return nil, err
	}
	capacity := binary.LittleEndian.Uint64(buf)
	added := binary.LittleEndian.Uint64(buf[8:])
	n := (size - 16) / 64
	if capacity == 0 || capacity > 1<<40 || added > 1<<62 || (size-16)%64 != 0 || n < 1 || n > int64(capacity) {
		return nil, fmt.Errorf("%w: presence filter for %d keys, %d added, in %d bytes", ErrCorrupt, capacity, added, size)
	}
	p := newPresenceBlocks(int64(capacity), n)
	if nativeLittleEndian {
		if _, err := io.ReadFull(r, p.words()); err != nil {
			return nil, fmt.Errorf("%w: presence filter for %d keys cut short: %w", ErrCorrupt, capacity, err)
		}
		p.added.store(int64(added))
		return p, nil
	}
	for i := 0; i < len(p.blocks); {
		k := min(len(p.blocks)-i, len(buf)/64)
		if _, err := io.ReadFull(r, buf[:64*k]); err != nil {
			return nil, fmt.Errorf("%w: presence filter for %d keys cut short: %w", ErrCorrupt, capacity, err)
		}
		for b := buf[:64*k]; len(b) > 0; i++ {
			for j := range p.blocks[i] {
				p.blocks[i][j].Store(binary.LittleEndian.Uint64(b))
				b = b[8:]
			}
		}
	}
	p.added.store(int64(added))
	return p, nil
}

// decodePresence decodes a filter that an earlier version kept in the store
// under metaPresence, in writeTo's layout.
func decodePresence(b []byte) (*presence, error) {
	p, err := readPresence(bytes.NewReader(b), int64(len(b)))
	if err == nil && len(b) != 16+len(p.blocks)*64 {
		err = fmt.Errorf("%w: presence filter of %d bytes for %d keys", ErrCorrupt, len(b), p.capacity)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}
