package engine

import (
	"sync"
	"sync/atomic"
)

// Every call updates a few shared counters and passes the close gate. On a
// shared cache line each of those atomics costs a cross-core transfer, which
// measured here as a fifth of a Get's time with 4 goroutines on 2 cores. So
// they are spread over shards, one picked at random for each call (store.enter):
// concurrent calls mostly touch different lines.
const numShards = 16

// counter is an int64 spread over padded shards.
type counter struct {
	shards [numShards]struct {
		n atomic.Int64
		_ [56]byte // one shard per cache line
	}
}

func (c *counter) add(shard uint64, d int64) { c.shards[shard%numShards].n.Add(d) }

func (c *counter) load() int64 {
	var n int64
	for i := range c.shards {
		n += c.shards[i].n.Load()
	}
	return n
}

// store sets the counter to v. Concurrent adds may be lost, so callers
// store only when no writer runs.
func (c *counter) store(v int64) {
	for i := range c.shards {
		c.shards[i].n.Store(0)
	}
	c.shards[0].n.Store(v)
}

// gate lets calls in and Close wait for them: a call holds one shard's read
// lock, Close takes every shard's write lock.
type gate struct {
	shards [numShards]struct {
		mu sync.RWMutex
		_  [40]byte
	}
}

func (g *gate) enter(shard uint64) { g.shards[shard%numShards].mu.RLock() }
func (g *gate) leave(shard uint64) { g.shards[shard%numShards].mu.RUnlock() }

func (g *gate) lockAll() {
	for i := range g.shards {
		g.shards[i].mu.Lock()
	}
}

func (g *gate) unlockAll() {
	for i := range g.shards {
		g.shards[i].mu.Unlock()
	}
}
