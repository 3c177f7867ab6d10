package engine

import (
	"sync/atomic"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/lru"
)

// writeMarks let the evictor delete an entry it sampled without reading it
// again. It samples through an iterator, which sees the store as it was
// when the iterator was made, so a key written since may hold another
// record than the one sampled; evictOne used to read every pick again
// under its stripe to find out, a Pebble Get of 5 us that was a quarter of
// an eviction's cost in a full cache of small values (one eviction a Set).
//
// Every commit that writes data keys takes the next sequence number and
// (store.published) stores it in each written key's mark, a slot chosen by the low bits of
// the key's hash, after the commit and under the key's stripe. The evictor
// reads the sequence number before it makes an iterator and keeps it with
// every candidate the iterator gives (lru.Candidate.Tag). Under the
// candidate's stripe, a mark no higher than that number means no write of
// its slot committed after the iterator was made: the record is the one
// sampled. A higher mark, including one the evictor's own deletes leave,
// means read it again, as before. With 16,384 slots and an iterator
// serving a few hundred evictions, few picks need the read.
//
// The marks are made by the first eviction: a cache that never reaches its
// limit pays nothing on its commits. Writes that committed before they
// existed committed before any iterator that relies on them was made.
type writeMarks struct {
	seq   atomic.Uint64
	slots [markSlots]atomic.Uint64
}

// markSlots is the number of marks: 128 KiB.
const markSlots = 1 << 14

// markSlot is the slot of the key of hash h. It takes the low bits: a seek
// of the evictor reads neighbouring buckets (the top bits), and their keys
// must not share slots, or each eviction would send its neighbours' picks
// to read their records again.
func markSlot(h uint64) int { return int(h & (markSlots - 1)) }

// marksForEviction returns the marks, made on first use.
func (c *store) marksForEviction() *writeMarks {
	if m := c.marks.Load(); m != nil {
		return m
	}
	c.marks.CompareAndSwap(nil, new(writeMarks))
	return c.marks.Load()
}

// markKey raises the mark of the key of hash h after a write of it alone,
// outside commit (whose writes store.published marks).
func (c *store) markKey(h uint64) {
	if m := c.marks.Load(); m != nil {
		m.raise(markSlot(h), m.seq.Add(1))
	}
}

// markAll marks every slot, after a write of a range of data keys (Clear).
// The caller holds every stripe.
func (c *store) markAll() {
	if m := c.marks.Load(); m != nil {
		s := m.seq.Add(1)
		for i := range m.slots {
			m.raise(i, s)
		}
	}
}

// raise sets slot i's mark to s unless it holds a higher one: writers of
// keys of other stripes share the slot, and one that took an older number
// must not store it over a newer one.
func (m *writeMarks) raise(i int, s uint64) {
	for {
		o := m.slots[i].Load()
		if o >= s || m.slots[i].CompareAndSwap(o, s) {
			return
		}
	}
}

// tagSampled describes a record of size bytes referring to ext bytes of
// the value log, read by an iterator made after the marks' sequence stood
// at seen, in cand.Tag: what evictOne needs to delete it without reading it
// again.
func tagSampled(cand *lru.Candidate, seen uint64, size, ext int, expiry int64) {
	cand.Tag = [3]uint64{seen + 1, uint64(size) | uint64(ext)<<32, uint64(expiry)}
}

// sampled returns the record cand describes if no write of its slot
// committed since it was read. The caller holds cand's stripe.
func (c *store) sampled(cand lru.Candidate) (oldRecord, bool) {
	m := c.marks.Load()
	if m == nil || cand.Tag[0] == 0 || m.slots[markSlot(cand.Hash)].Load() > cand.Tag[0]-1 {
		return oldRecord{}, false
	}
	return oldRecord{
		size:   int(uint32(cand.Tag[1])),
		ext:    int(cand.Tag[1] >> 32),
		header: codec.Header{Expiry: int64(cand.Tag[2])},
	}, true
}
