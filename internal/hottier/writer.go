package hottier

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/diskcache-go/diskcache/internal/offheap"
)

// maxMoves bounds the records one Put moves to the main ring's head, so
// that a tier whose every record is hot still takes a write in bounded
// time: past it, tail records leave whether read or not.
const maxMoves = 8

// Writer is the one writer of a tier, in the owner process. Its methods
// are safe for concurrent use: they take one mutex, held for the time of
// a copy of one value (and of the few records a Put may move).
type Writer struct {
	t  *Tier
	mu sync.Mutex

	// gens counts the writes to each bucket (and clears, in the top 32
	// bits): a Put carries the count read before its value was read from
	// the store, and is dropped if a write came in between, whose
	// Invalidate may have run before the Put (Gen).
	gens  []atomic.Uint32
	clear atomic.Uint32
	// held counts the ways of each bucket that hold a key (live or not),
	// in the writer's own memory, and total all of them: an Invalidate of
	// a key whose bucket holds none touches no shared memory (measured:
	// scanning the ways took a tenth of a Set's CPU). With no way held and
	// no fill under way (fills), it touches nothing at all: a process that
	// only writes pays two loads a write.
	held  []uint8
	total atomic.Int64
	fills atomic.Int64

	head    [2]uint64 // next free position of each ring; tails are in the header
	ghost   []uint64  // hashes of keys that left the small ring unread
	moves   int       // what the current Put may still move
	scratch []byte
	hand    uint64 // rotates the choice of a way to evict
	crowded uint64 // values Warm found no free way for
	// faulted is the main ring's first position whose memory Warm has not
	// had allocated yet (Prefault); 0 when Warm does not allocate ahead.
	faulted uint64
	ahead   bool
	// indexFaulted is set once the index's pages were allocated, or are
	// being allocated (PrefaultIndex).
	indexFaulted atomic.Bool
}

// NewWriter returns the writer of t, which must be fresh from Create: a
// tier has one writer in its life, and its positions live in the Writer.
func NewWriter(t *Tier) *Writer {
	buckets := t.mask + 1
	return &Writer{
		t:     t,
		gens:  make([]atomic.Uint32, buckets),
		held:  make([]uint8, buckets),
		ghost: make([]uint64, ghostSize(buckets)),
	}
}

// Tier returns the tier w writes.
func (w *Writer) Tier() *Tier { return w.t }

// StartFill announces a fill: call it before Gen (or Gens) and before
// reading the store, and EndFill after the Put (or the Warms). While no
// fill is under way and the tier holds nothing, Invalidate has nothing to
// do: a fill that starts later reads the store after the write.
func (w *Writer) StartFill() { w.fills.Add(1) }

// Idle reports whether the tier holds no key and no fill is under way: an
// Invalidate now has nothing to do (StartFill).
func (w *Writer) Idle() bool { return w.fills.Load() == 0 && w.total.Load() == 0 }

// EndFill ends a fill StartFill announced.
func (w *Writer) EndFill() { w.fills.Add(-1) }

// Gen returns what a Put of hash's key checks: read it before reading the
// value from the store.
func (w *Writer) Gen(hash uint64) uint64 {
	return uint64(w.clear.Load())<<32 | uint64(w.gens[w.t.slot(hash)].Load())
}

// Put stores r's value with its expiry. r.Gen is Gen(r.Hash) read before
// the value was read from the store: if a write of a key in the bucket (or
// a Clear) came since, the value may be older than that write, and Put
// drops it. It reports whether it stored the value; one larger than an
// eighth of the main ring is not stored.
func (w *Writer) Put(r Record) bool { return w.put(&r, true) }

// TryPut is Put for a read that fills the tier: it never waits for the
// writer's lock, and drops its value when the lock is taken (the key's
// next read fills it). A read must not wait for a warm's batch (Warm) or
// another fill: while a warm ran beside one reader, fills that waited
// made that reader's misses cost 22 us instead of 8 (W2: 500,000 uniform
// Gets just after a reopen, 1.18 s and 1.04 s instead of 1.43 s and
// 1.18 s). A write's Put waits: the next read of what it wrote hits.
func (w *Writer) TryPut(r Record) bool { return w.put(&r, false) }

func (w *Writer) put(r *Record, wait bool) bool {
	n := align8(recHeader + uint64(len(r.Key)) + uint64(len(r.Value)))
	if n > w.t.ringSize[main]/8 || n > w.t.ringSize[small] {
		return false
	}
	w.loadWay(r.Hash)
	if wait {
		w.mu.Lock()
	} else if !w.mu.TryLock() {
		return false
	}
	defer w.mu.Unlock()
	if w.Gen(r.Hash) != r.Gen {
		return false
	}
	ring := small
	if w.ghost[r.Hash%uint64(len(w.ghost))] == r.Hash {
		ring = main
	}
	w.moves = maxMoves
	pos := w.reserve(ring, n)
	w.write(ring, pos, w.wayFor(r.Hash), r)
	return true
}

// write writes r's record at pos of ring and publishes it in way off.
func (w *Writer) write(ring int, pos, off uint64, r *Record) {
	rel := w.t.ringOff[ring] + pos%w.t.ringSize[ring]
	n := align8(recHeader + uint64(len(r.Key)) + uint64(len(r.Value)))
	rec := w.t.mem[rel : rel+n]
	binary.LittleEndian.PutUint64(rec, r.Hash)
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(r.Key)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(r.Value)))
	copy(rec[recHeader:], r.Key)
	copy(rec[recHeader+len(r.Key):], r.Value)
	d := xxhash.New()
	d.WriteString(r.Key)
	d.Write(r.Value)
	w.writeWay(off, r.Hash, way{
		pos: pos, expiry: uint64(r.Expiry), sum: d.Sum64(), ring: uint64(ring),
		epoch: atomic.LoadUint64(w.t.word(hEpoch)),
		klen:  uint64(len(r.Key)), vlen: uint64(len(r.Value)),
		stored: uint64(r.Stored),
	})
}

// Stored returns what Record.Stored and Record.Expiry said of the key of
// hash, whose key is klen bytes long, when the tier holds it and its
// record's size was given. Only the owner calls it, for a key no other
// write can change meanwhile (it holds the key's lock): then the tier holds
// what the last write or read of the key stored, or nothing, since every
// write invalidates the key. It reads no record from the rings, so a value
// whose space is being reused still answers; only the key's length is
// compared, and the 64-bit hash trusted, as the engine's own table of
// known records does.
func (w *Writer) Stored(hash uint64, klen int) (size uint32, expiry int64, ok bool) {
	epoch := atomic.LoadUint64(w.t.word(hEpoch))
	b := w.t.bucket(hash)
	for i := range uint64(ways) {
		if atomic.LoadUint64(w.t.word(b+8*i)) != hash {
			continue
		}
		v, ok := w.t.readWay(wayAt(b, i), hash)
		if ok && v.epoch == epoch && v.klen == uint64(klen) && v.stored != 0 {
			return uint32(v.stored), int64(v.expiry), true
		}
	}
	return 0, 0, false
}

// Gens is a copy of a writer's counts of writes, for a fill from a
// snapshot of the store (an iterator): taken before the snapshot, it holds
// for every key the snapshot holds.
type Gens struct {
	clear uint32
	shift uint
	gens  []uint32
}

// Of is what Gen(hash) was when g was taken.
func (g *Gens) Of(hash uint64) uint64 {
	return uint64(g.clear)<<32 | uint64(g.gens[hash>>g.shift])
}

// Gens copies the counts of writes into g (reusing its memory).
func (w *Writer) Gens(g *Gens) {
	g.clear = w.clear.Load()
	g.shift = w.t.shift
	if len(g.gens) != len(w.gens) {
		g.gens = make([]uint32, len(w.gens))
	}
	for i := range w.gens {
		g.gens[i] = w.gens[i].Load()
	}
}

// Prefault tells the writer that about n records are to be warmed. The
// kernel then allocates at once the index's pages (PrefaultIndex), and
// the main ring's pages ahead of Warm, a chunk at a time, outside the
// writer's lock. Measured on a 2-core VM: a page allocated by its first
// write cost 11-15 us of system time, MADV_POPULATE_WRITE about 2 us a
// page; warming 500,000 records into a 256 MiB tier touches 36,000 pages.
// A kernel without it (before 5.14) faults the pages in as they are
// written, as without Prefault. stop is PrefaultIndex's.
func (w *Writer) Prefault(n int64, stop func() bool) {
	w.PrefaultIndex(n, stop)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ahead = true
	if w.faulted == 0 && w.head[main] == 0 {
		w.faulted = min(faultChunk, w.t.ringSize[main])
		populate(w.t.mem, w.t.ringOff[main], w.t.ringOff[main]+w.faulted)
	}
}

// PrefaultIndex has the kernel allocate the index's pages now, when n
// keys will touch most of them anyway (at least a key a page), a chunk at
// a time until stop reports true; once in the tier's life. A page of the
// index that no one has written is not there yet, and shared memory has
// no page of zeros to map for a read: the first read of each page
// allocates it, 11-15 us. Measured, the first 4,000 Gets of a process
// that had just opened a store of 500,000 keys: 249-252 ms with a new 256
// MiB tier (each a miss that faulted in a page of the 64 MiB index), 163-172
// ms with the index allocated first, 169-174 ms with no tier. It holds no
// lock: allocating a page leaves its bytes as they are.
func (w *Writer) PrefaultIndex(n int64, stop func() bool) {
	index := (w.t.mask + 1) * bucketSize
	if uint64(n) < index/pageSize || !w.indexFaulted.CompareAndSwap(false, true) {
		return
	}
	for lo := uint64(headerSize); lo < headerSize+index && !stop(); lo += faultChunk {
		populate(w.t.mem, lo, min(lo+faultChunk, headerSize+index))
	}
}

const (
	pageSize = offheap.PageSize
	// faultChunk is how much of the main ring Warm has allocated at once
	// (Prefault): 256 pages, about half a millisecond of system time.
	// A batch of Warm writes less than half of it.
	faultChunk = 1 << 20
)

// populate has the kernel allocate the pages of mem[lo:hi] without
// writing them: a tier's content stays as it is.
func populate(mem []byte, lo, hi uint64) { offheap.PopulateRange(mem, int(lo), int(hi)) }

// A Record is a value for the tier, from a read or a write of the store.
type Record struct {
	Key    string
	Hash   uint64 // Hash(Key)
	Value  []byte
	Expiry int64  // unix nanoseconds, 0 for none
	Gen    uint64 // Gens.Of(Hash), taken before the value was read
	// Stored is the size in bytes of the record the store holds for the
	// value, which the owner reads back with Stored; 0 for unknown.
	Stored uint32
}

// Warm stores values read from the store before any read asked for them:
// straight into the main ring while its first lap lasts, and only into
// free ways, so that they never push out what reads brought in. A record
// whose bucket was written since its Gen was taken is dropped, as by Put.
// Warm reports false once the main ring is full, or values found no free
// way in their bucket a quarter of the index's ways times: warming is
// over. Several goroutines may warm at once: a batch takes the writer's
// lock once, and its records' index lines are read before, so that the
// misses on them are not paid under the lock.
func (w *Writer) Warm(recs []Record) bool {
	for i := range recs {
		atomic.LoadUint64(w.t.word(w.t.bucket(recs[i].Hash)))
	}
	for i := range recs {
		w.loadWay(recs[i].Hash)
	}
	w.mu.Lock()
	lo, hi := w.faultAhead()
	ok := true
	for i := range recs {
		if ok = w.warm(&recs[i]); !ok {
			break
		}
	}
	w.mu.Unlock()
	if hi > lo {
		off := w.t.ringOff[main]
		populate(w.t.mem, off+lo, off+hi)
	}
	return ok
}

// faultAhead returns what the caller is to allocate of the main ring,
// [lo, hi), when Warm comes within half a chunk of what is allocated
// (Prefault). The caller holds the writer's lock.
func (w *Writer) faultAhead() (lo, hi uint64) {
	if w.ahead && w.head[main]+faultChunk/2 >= w.faulted && w.faulted < w.t.ringSize[main] {
		// In the first lap, positions are offsets in the ring.
		lo, hi = w.faulted, min(max(w.faulted, w.head[main])+faultChunk, w.t.ringSize[main])
		w.faulted = hi
	}
	return lo, hi
}

// warm is Warm of one record, under the writer's lock.
func (w *Writer) warm(r *Record) bool {
	n := align8(recHeader + uint64(len(r.Key)) + uint64(len(r.Value)))
	if w.head[main]+n > w.t.ringSize[main] {
		return false
	}
	if w.Gen(r.Hash) != r.Gen || n > w.t.ringSize[main]/8 {
		return true
	}
	off, held, free := w.lookWay(r.Hash)
	if held {
		return true
	} else if !free {
		w.crowded++
		return w.crowded < (w.t.mask+1)*ways/4
	}
	// In the first lap, reserve takes nothing from the tail: the way stays
	// free.
	pos := w.reserve(main, n)
	w.write(main, pos, off, r)
	return true
}

// Invalidate forgets hash's key. The owner calls it after a write of the
// key reached the store and before the write returns.
func (w *Writer) Invalidate(hash uint64) {
	if w.Idle() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gens[w.t.slot(hash)].Add(1)
	if w.held[w.t.slot(hash)] == 0 {
		return
	}
	b := w.t.bucket(hash)
	for i := range uint64(ways) {
		if atomic.LoadUint64(w.t.word(b+8*i)) == hash {
			w.emptyWay(wayAt(b, i))
		}
	}
}

// Clear forgets every key: ways written before it belong to an older epoch.
func (w *Writer) Clear() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clear.Add(1)
	atomic.AddUint64(w.t.word(hEpoch), 1)
	clear(w.ghost)
}

// lookWay returns the way of hash's bucket that holds hash's key (held),
// or else an empty or dead one (free), if there is one. The hashes are
// one cache line; only a bucket with no empty way has its ways read.
func (w *Writer) lookWay(hash uint64) (off uint64, held, free bool) {
	b := w.t.bucket(hash)
	for i := range uint64(ways) {
		h := atomic.LoadUint64(w.t.word(b + 8*i))
		if h == hash {
			return wayAt(b, i), true, false
		}
		if h == 0 && !free {
			off, free = wayAt(b, i), true
		}
	}
	if free {
		return off, false, true
	}
	epoch := atomic.LoadUint64(w.t.word(hEpoch))
	for i := range uint64(ways) {
		o := wayAt(b, i)
		r := atomic.LoadUint64(w.t.word(o+wRing)) & 0xffffffff
		if atomic.LoadUint64(w.t.word(o+wEpoch)) != epoch || r > main ||
			atomic.LoadUint64(w.t.word(o+wPos)) < w.t.tail(int(r)) {
			return o, false, true
		}
	}
	return 0, false, false
}

// wayFor returns the way to write hash's key to: the one that holds it, an
// empty or dead one, one not read since written, or the next in turn.
func (w *Writer) wayFor(hash uint64) uint64 {
	if off, held, free := w.lookWay(hash); held || free {
		return off
	}
	b := w.t.bucket(hash)
	w.hand++
	for i := range uint64(ways) {
		off := wayAt(b, (w.hand+i)%ways)
		if atomic.LoadUint32(w.t.word32(off+wRef)) == 0 {
			return off
		}
	}
	return wayAt(b, w.hand%ways)
}

// loadWay loads the lines of the way a Put or Warm of hash would write
// (lookWay), so that their misses are not paid under the writer's lock:
// its atomic stores wait for the line. Called without the lock, it may
// load the wrong way, which costs nothing but the load.
func (w *Writer) loadWay(hash uint64) {
	if off, held, free := w.lookWay(hash); held || free {
		atomic.LoadUint32(w.t.word32(off + wSeq))
		atomic.LoadUint64(w.t.word(off + wRing))
	}
}

// writeWay writes way off under its sequence number; its ref starts unset.
func (w *Writer) writeWay(off, hash uint64, v way) {
	seq := w.t.word32(off + wSeq)
	s := atomic.LoadUint32(seq)
	atomic.StoreUint32(seq, s+1)
	if atomic.LoadUint64(w.t.word(hashOf(off))) == 0 {
		w.held[w.t.slot(hash)]++
		w.total.Add(1)
	}
	atomic.StoreUint64(w.t.word(hashOf(off)), hash)
	atomic.StoreUint64(w.t.word(off+wPos), v.pos)
	atomic.StoreUint64(w.t.word(off+wLens), v.klen|v.vlen<<32)
	atomic.StoreUint64(w.t.word(off+wExpiry), v.expiry)
	atomic.StoreUint64(w.t.word(off+wSum), v.sum)
	atomic.StoreUint64(w.t.word(off+wEpoch), v.epoch)
	atomic.StoreUint64(w.t.word(off+wRing), v.ring|v.stored<<32)
	atomic.StoreUint32(w.t.word32(off+wRef), 0)
	atomic.StoreUint32(seq, s+2)
}

func (w *Writer) emptyWay(off uint64) {
	seq := w.t.word32(off + wSeq)
	s := atomic.LoadUint32(seq)
	atomic.StoreUint32(seq, s+1)
	if atomic.LoadUint64(w.t.word(hashOf(off))) != 0 {
		w.held[(off-headerSize)/bucketSize]--
		w.total.Add(-1)
	}
	atomic.StoreUint64(w.t.word(hashOf(off)), 0)
	atomic.StoreUint32(seq, s+2)
}

// reserve returns the position of n free bytes at ring r's head, moving
// its tail (evict) until they fit. A record never wraps: the space left
// at the end of the ring is skipped, marked by a zero hash.
func (w *Writer) reserve(r int, n uint64) uint64 {
	size := w.t.ringSize[r]
	for {
		head, tail := w.head[r], w.t.tail(r)
		rel := head % size
		need := n
		if rel+n > size {
			need = size - rel
		}
		if head+need-tail > size {
			w.evict(r)
			continue
		}
		if need != n { // skip to the start of the ring
			binary.LittleEndian.PutUint64(w.t.mem[w.t.ringOff[r]+rel:], 0)
			w.head[r] += need
			continue
		}
		w.head[r] += n
		return head
	}
}

// evict frees the record at ring r's tail: it moves it to the main ring's
// head if it was read since it was written there (and the Put may still
// move), and lets it go otherwise.
func (w *Writer) evict(r int) {
	size := w.t.ringSize[r]
	tail := w.t.tail(r)
	rel := tail % size
	at := w.t.ringOff[r] + rel
	hash := binary.LittleEndian.Uint64(w.t.mem[at:])
	if hash == 0 || rel+recHeader > size {
		w.setTail(r, min(tail+size-rel, w.head[r]))
		return
	}
	klen := uint64(binary.LittleEndian.Uint32(w.t.mem[at+8:]))
	vlen := uint64(binary.LittleEndian.Uint32(w.t.mem[at+12:]))
	n := align8(recHeader + klen + vlen)
	if rel+n > size || tail+n > w.head[r] {
		// Only a bug could get here: the ring's records do not add up.
		// Dropping them all keeps the tier correct.
		w.setTail(r, w.head[r])
		return
	}
	off, live := w.live(hash, r, tail)
	if live && atomic.LoadUint32(w.t.word32(off+wRef)) != 0 && w.moves > 0 {
		w.moves--
		// The move below may evict (and move) again: this record's copy
		// must be its own.
		rec := append(w.scratch[:0], w.t.mem[at:at+n]...)
		w.scratch = nil
		w.setTail(r, tail+n)
		pos := w.reserve(main, n)
		dst := w.t.ringOff[main] + pos%w.t.ringSize[main]
		copy(w.t.mem[dst:dst+n], rec)
		w.scratch = rec
		// The record is the same bytes: only where it is changes.
		v, _ := w.t.readWay(off, hash)
		v.pos, v.ring = pos, main
		w.writeWay(off, hash, v)
		return
	}
	if live {
		if r == small {
			w.ghost[hash%uint64(len(w.ghost))] = hash
		}
		w.emptyWay(off)
	}
	w.setTail(r, tail+n)
}

// live finds the way that points to the record of hash at ring r's
// position pos: a record whose way went elsewhere is garbage.
func (w *Writer) live(hash uint64, r int, pos uint64) (uint64, bool) {
	b := w.t.bucket(hash)
	epoch := atomic.LoadUint64(w.t.word(hEpoch))
	for i := range uint64(ways) {
		off := wayAt(b, i)
		if atomic.LoadUint64(w.t.word(b+8*i)) == hash &&
			atomic.LoadUint64(w.t.word(off+wPos)) == pos &&
			atomic.LoadUint64(w.t.word(off+wRing))&0xffffffff == uint64(r) &&
			atomic.LoadUint64(w.t.word(off+wEpoch)) == epoch {
			return off, true
		}
	}
	return 0, false
}

// setTail publishes ring r's new tail before the space behind it is
// reused, so that a reader that copied reused bytes sees the tail passed
// its record (and the sum catches the rest).
func (w *Writer) setTail(r int, tail uint64) {
	atomic.StoreUint64(w.t.word(hTail+64*uint64(r)), tail)
}

func align8(n uint64) uint64 { return (n + 7) &^ 7 }
