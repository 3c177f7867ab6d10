package engine

import "sync/atomic"

// Stats is a snapshot of a cache's counters. Hits, Misses, Sets, Deletes and
// Expirations count since Open; Entries and Bytes are what the store holds.
type Stats struct {
	Hits        int64 // Gets that found a value
	Misses      int64 // Gets of missing or expired keys
	Sets        int64 // entries written
	Deletes     int64 // entries deleted by Delete
	Expirations int64 // expired entries deleted by the sweeper
	Entries     int64 // entries stored, expired ones included until swept
	Bytes       int64 // stored bytes of the entries (keys and records)
	DiskBytes   int64 // bytes the store takes on disk
}

type statCounters struct {
	hits, misses, sets, deletes, expirations atomic.Int64
}

// Stats returns the cache's counters. After Close it returns the counters
// as they were, with DiskBytes 0.
func (c *Cache) Stats() Stats {
	s := Stats{
		Hits:        c.stats.hits.Load(),
		Misses:      c.stats.misses.Load(),
		Sets:        c.stats.sets.Load(),
		Deletes:     c.stats.deletes.Load(),
		Expirations: c.stats.expirations.Load(),
		Entries:     c.keys.counts.entries.Load(),
		Bytes:       c.keys.counts.bytes.Load(),
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed {
		s.DiskBytes = int64(c.db.Metrics().DiskSpaceUsage())
	}
	return s
}
