package engine

import (
	"github.com/cespare/xxhash/v2"
	"github.com/maypok86/otter/v2"

	"github.com/diskcache-go/diskcache/ttl"
)

// nearEntryOverhead approximates what otter and a nearEntry spend per
// entry beyond the key and value bytes.
const nearEntryOverhead = 96

// nearCache is a forwarding process's bounded cache of the values it read
// from the owner, so that a hot key costs no round trip. The generation
// table (generations.go) keeps it coherent with every write in every
// process; otter (W-TinyLFU) keeps the hot keys within the byte budget.
type nearCache struct {
	gens  *generations
	clock ttl.Clock
	c     *otter.Cache[string, *nearEntry]
	// maxValue is the largest value kept: one value must not push out a
	// good part of the hot set.
	maxValue int
}

// nearEntry is a cached value with what makes it good: the stamp of its
// key's slot when it was fetched, and its expiry.
type nearEntry struct {
	value  []byte
	stamp  stamp
	expiry int64 // unix nanoseconds; 0 never
}

func newNearCache(gens *generations, clock ttl.Clock, size int64) *nearCache {
	return &nearCache{
		gens:     gens,
		clock:    clock,
		maxValue: int(size / 64),
		c: otter.Must(&otter.Options[string, *nearEntry]{
			MaximumWeight: uint64(size),
			Weigher: func(k string, e *nearEntry) uint32 {
				return uint32(len(k) + len(e.value) + nearEntryOverhead)
			},
		}),
	}
}

// lookup returns key's cached entry if it is still good. Otherwise it
// returns the stamp that a value fetched from now on is to be put with:
// read before the fetch, it is older than any write the fetch misses.
func (n *nearCache) lookup(key string) (*nearEntry, stamp, bool) {
	st := n.gens.read(xxhash.Sum64String(key))
	e, ok := n.c.GetIfPresent(key)
	if !ok || e.stamp != st || (e.expiry != 0 && n.clock.Now().UnixNano() >= e.expiry) {
		return nil, st, false
	}
	return e, st, true
}

// put caches value, fetched after st was read; ttl <= 0 means it does not
// expire. It keeps its own copy.
func (n *nearCache) put(key string, st stamp, value []byte, expiry int64) {
	if len(value) > n.maxValue {
		return
	}
	n.c.Set(key, &nearEntry{value: append([]byte{}, value...), stamp: st, expiry: expiry})
}

// drop forgets keys this process writes: their stamps are stale anyway,
// and the memory is better spent on other keys.
func (n *nearCache) drop(keys ...string) {
	for _, k := range keys {
		n.c.Invalidate(k)
	}
}

func (n *nearCache) clear() { n.c.InvalidateAll() }
