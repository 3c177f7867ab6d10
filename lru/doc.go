// Package lru holds the size limit's eviction machinery: an access clock
// that remembers when each key was last used without writing to the store,
// and a sampler that approximates least-recently-used eviction the way
// Redis does, from a few random samples and a small pool of the idlest
// candidates seen so far.
//
// It knows nothing of Pebble: the store hands it a Source that finds the
// entry at a position of the hash-ordered keyspace.
package lru
