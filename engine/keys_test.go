package engine

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// TestSamplesInHashOrder: the eviction sampler's source returns, from any
// position, the next entries in the order of their hash64, in a bucketed
// store as in a store of format 1, so its draws are as uniform as lru's
// simulation assumes. Few keys leave most buckets empty, many put several
// in each.
func TestSamplesInHashOrder(t *testing.T) {
	for _, l := range []keyLayout{hashedKeys, bucketedKeys} {
		for _, n := range []int{0, 1, 5, 3000, 200_000} {
			t.Run(fmt.Sprintf("format%d/%d", l.format, n), func(t *testing.T) {
				if n > 10_000 && testing.Short() {
					t.Skip("short")
				}
				testSamplesInHashOrder(t, l, n)
			})
		}
	}
}

func testSamplesInHashOrder(t *testing.T, l keyLayout, n int) {
	dir := filepath.Join(t.TempDir(), "cache")
	if err := createStoreOfFormat(dir, l.format); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, &Options{SizeLimit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.local()
	if s.layout != l {
		t.Fatalf("the store has format %d, want %d", s.layout.format, l.format)
	}
	hashes := make([]uint64, 0, n)
	var kvs []Entry
	for i := range n {
		k := fmt.Sprintf("sample-%d", i)
		hashes = append(hashes, xxhash.Sum64String(k))
		kvs = append(kvs, Entry{Key: k, Value: []byte("v")})
		if len(kvs) == 1000 || i == n-1 {
			if err := c.SetMany(ctx, kvs); err != nil {
				t.Fatal(err)
			}
			kvs = kvs[:0]
		}
	}
	slices.Sort(hashes)
	src := &evictSource{c: s}
	defer src.close()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		pos, want := rng.Uint64(), 1+rng.IntN(4)
		got, err := src.At(nil, pos, want)
		if err != nil {
			t.Fatal(err)
		}
		i, _ := slices.BinarySearch(hashes, pos)
		// Format 2 gives all of pos's bucket from pos on, when that is
		// more: the seek has read them.
		wantLen := min(want, n)
		if l.bucketed() {
			inBucket := 0
			for j := i; j < n && hashes[j]>>48 == pos>>48; j++ {
				inBucket++
			}
			wantLen = max(wantLen, inBucket)
		}
		if len(got) != wantLen {
			t.Fatalf("At(%x, %d) = %d candidates, want %d", pos, want, len(got), wantLen)
		}
		for j := range got {
			h := hashes[(i+j)%n]
			if got[j].Hash != h {
				t.Fatalf("At(%x, %d) = %d candidates, want hash %x at %d", pos, want, len(got), h, j)
			}
			if uk := string(s.layout.userKey(got[j].Key)); xxhash.Sum64String(uk) != h {
				t.Fatalf("candidate %q does not have hash %x", uk, h)
			}
		}
	}
}

// createStoreOfFormat creates an empty store of format f in the cache
// directory dir, as a version that wrote f would have.
func createStoreOfFormat(dir string, f byte) error {
	po, _ := PebbleOptions(&Options{SizeLimit: 64 << 20})
	db, err := pebble.Open(filepath.Join(dir, storeDir), po)
	if err != nil {
		return err
	}
	if err := db.Set(metaFormat, []byte{f}, pebble.Sync); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}
