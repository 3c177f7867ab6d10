package engine

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// fillBlocks writes about 24 MiB of incompressible entries to c and
// settles its store into tables, for tests of the block cache.
func fillBlocks(t *testing.T, c *Cache) {
	t.Helper()
	value := make([]byte, 1000)
	rand.Read(value)
	const n = 24_000
	for i := 0; i < n; i += 1000 {
		var es []Entry
		for j := i; j < i+1000; j++ {
			es = append(es, Entry{Key: fmt.Sprint("k", j), Value: value})
		}
		if err := c.SetMany(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	if err := settleDB(c.local().db); err != nil {
		t.Fatal(err)
	}
}

// readBlocks reads every record of db through Pebble (not through the
// hot tier) and returns what its block cache then holds.
func readBlocks(t *testing.T, db *pebble.DB) int64 {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	// Point reads: a long scan reads ahead past the cache.
	for _, k := range keys {
		_, closer, err := db.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		closer.Close()
	}
	return db.Metrics().BlockCache.Size
}

// The memtables' reservations in Pebble's cache come on top of CacheSize:
// at a large limit (64 MiB memtables) the block cache still holds
// CacheSize of blocks (given CacheSize alone, it held none), and no more
// than an eighth over, also in a session that only reads, whose memtables
// are small (cacheRoom: it held CacheSize and the two memtables' room,
// 144 MiB for 16 at a 64 GiB limit).
func TestBlockCacheBesideMemtables(t *testing.T) {
	const cacheSize = 16 << 20
	for _, limit := range []int64{64 << 20, 64 << 30} {
		t.Run(fmt.Sprint(limit>>20, "MiB"), func(t *testing.T) {
			dir := t.TempDir()
			o := &Options{SizeLimit: limit, CacheSize: cacheSize, HotTierSize: -1}
			c := openDir(t, dir, o)
			fillBlocks(t, c)
			for session := range 2 {
				waitRounds(t, c.local(), 2)
				got := readBlocks(t, c.local().db)
				if got < cacheSize*7/8 || got > cacheSize*5/4 {
					t.Fatalf("session %d: after reading 24 MiB of blocks the block cache holds %d bytes, want about CacheSize %d (and an eighth it may borrow)", session, got, cacheSize)
				}
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				c = openDir(t, dir, o) // a session that only reads
			}
		})
	}
}
