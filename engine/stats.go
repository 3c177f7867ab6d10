package engine

import (
	"context"
	"errors"
	"sync/atomic"
)

// Stats is a snapshot of a cache's counters. Hits, Misses, LocalHits, Sets
// and Deletes count this process's calls since its Open (Cache.Stats);
// Expirations and Evictions count since the owner's Open; Entries and Bytes
// are what the store holds.
type Stats struct {
	Hits         int64 // Gets that found a value
	Misses       int64 // Gets of missing or expired keys
	LocalHits    int64 // Hits this process answered from the hot tier, in memory shared by the directory's processes
	Sets         int64 // entries written
	Deletes      int64 // entries deleted by Delete
	Expirations  int64 // expired entries deleted by the sweeper
	Evictions    int64 // entries evicted to hold the size limit
	EvictedBytes int64 // stored bytes of the evicted entries
	Entries      int64 // entries stored, expired ones included until swept
	Bytes        int64 // stored bytes of the entries (keys and records)
	DiskBytes    int64 // bytes the store takes on disk
}

type statCounters struct {
	hits, misses, sets, deletes counter
	tierHits                    counter // the hits answered from the hot tier
	expirations                 atomic.Int64
}

// countRead counts a read's hit (err == nil) or miss (ErrNotFound) in the
// given shard; other errors count as neither.
func (s *statCounters) countRead(shard uint64, err error) {
	switch {
	case err == nil:
		s.hits.add(shard, 1)
	case errors.Is(err, ErrNotFound):
		s.misses.add(shard, 1)
	}
}

// ownCounts is what the calls made in this process counted in the store
// (calls.go).
func (c *store) ownCounts() callCounts {
	return callCounts{hits: c.stats.hits.load(), misses: c.stats.misses.load(), localHits: c.stats.tierHits.load(),
		sets: c.stats.sets.load(), deletes: c.stats.deletes.load()}
}

// Stats returns the cache's counters. After Close it returns the counters
// as they were, with DiskBytes 0.
func (c *store) Stats() Stats {
	s := Stats{
		Hits:         c.stats.hits.load(),
		Misses:       c.stats.misses.load(),
		LocalHits:    c.stats.tierHits.load(),
		Sets:         c.stats.sets.load(),
		Deletes:      c.stats.deletes.load(),
		Expirations:  c.stats.expirations.Load(),
		Evictions:    c.lim.evictions.load(),
		EvictedBytes: c.lim.evictedBytes.load(),
		Entries:      c.keys.counts.entries.load(),
		Bytes:        c.keys.counts.bytes.load(),
	}
	sh, err := c.enter(context.Background())
	if err == nil {
		defer c.leave(sh)
		s.DiskBytes = int64(c.db.Metrics().DiskSpaceUsage()) + c.valuesSize()
	}
	return s
}
