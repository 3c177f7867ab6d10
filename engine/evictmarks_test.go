package engine

import (
	"sync"
	"testing"

	"github.com/diskcache-go/diskcache/lru"
)

// TestMarksKeepTheNewest: writers of keys of other stripes share a slot and
// may store their numbers out of order; the slot keeps the highest, or an
// evictor could trust a record a later write replaced.
func TestMarksKeepTheNewest(t *testing.T) {
	m := new(writeMarks)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10_000 {
				s := m.seq.Add(1)
				m.raise(w, s)
				m.raise(7, s)
			}
		}()
	}
	wg.Wait()
	if got, want := m.slots[7].Load(), m.seq.Load(); got != want {
		t.Fatalf("slot 7 holds %d after %d marks, want the last", got, want)
	}
	m.raise(7, 1)
	if m.slots[7].Load() != m.seq.Load() {
		t.Fatal("an older number replaced a newer one")
	}
	for w := range 4 {
		if m.slots[w].Load() == 0 {
			t.Fatalf("slot %d never marked", w)
		}
	}
}

// TestSampledTrustsOnlyUnmarkedSlots: a candidate read after the last mark
// of its slot is evicted as read; one whose slot was marked since, or one
// read before the marks existed or without a tag, is read again.
func TestSampledTrustsOnlyUnmarkedSlots(t *testing.T) {
	c := &store{}
	cand := func(h, seen uint64) bool {
		_, ok := c.sampled(candFor(h, seen))
		return ok
	}
	if cand(5, 0) {
		t.Fatal("trusted a candidate before the marks existed")
	}
	m := c.marksForEviction()
	seen := m.seq.Load()
	if !cand(5, seen) {
		t.Fatal("did not trust a candidate of an unmarked slot")
	}
	c.markKey(5 + markSlots) // another key of the same slot
	if cand(5, seen) {
		t.Fatal("trusted a candidate whose slot was marked since it was read")
	}
	if !cand(6, seen) {
		t.Fatal("a mark of one slot spoiled another")
	}
	if !cand(5, m.seq.Load()) {
		t.Fatal("did not trust a candidate read after the mark")
	}
	c.markAll()
	if cand(6, seen) {
		t.Fatal("trusted a candidate read before a Clear")
	}
	untagged := candFor(6, m.seq.Load())
	untagged.Tag = [3]uint64{}
	if _, ok := c.sampled(untagged); ok {
		t.Fatal("trusted a candidate without a tag")
	}
}

// candFor is a candidate of hash h read by an iterator made when the marks'
// sequence stood at seen: a record of 100 bytes, no expiry.
func candFor(h, seen uint64) lru.Candidate {
	k := lru.Candidate{Hash: h, Key: []byte("d..key")}
	tagSampled(&k, seen, 100, 0, 0)
	return k
}
