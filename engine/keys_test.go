package engine

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/diskcache-go/diskcache/lru"
)

// TestSamplesInHashOrder: the eviction sampler's source returns, from any
// position, the entries lru's simulation assumes, so its draws are as
// uniform as the simulation's: in a store of format 1 the next n in the
// order of their hash64; in a bucketed store whole buckets, pos's and the
// ones after it, until it has n and lru.CandidatesPerSeek, each entry once.
// Few keys leave most buckets empty, many put several in each.
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
		for j := range got {
			if uk := string(s.layout.userKey(got[j].Key)); xxhash.Sum64String(uk) != got[j].Hash {
				t.Fatalf("candidate %q does not have hash %x", uk, got[j].Hash)
			}
		}
		i, _ := slices.BinarySearch(hashes, pos)
		if !l.bucketed() {
			if len(got) != min(want, n) {
				t.Fatalf("At(%x, %d) = %d candidates, want %d", pos, want, len(got), min(want, n))
			}
			for j := range got {
				if h := hashes[(i+j)%n]; got[j].Hash != h {
					t.Fatalf("At(%x, %d) = %d candidates, want hash %x at %d", pos, want, len(got), h, j)
				}
			}
			continue
		}
		// The entries of whole buckets from pos's on, wrapping around,
		// until there are enough.
		var wantHashes []uint64
		if n > 0 {
			i, _ = slices.BinarySearch(hashes, pos>>48<<48)
			for j := 0; j < n && len(wantHashes) < max(want, lru.CandidatesPerSeek); {
				bucket := hashes[(i+j)%n] >> 48
				for ; j < n && hashes[(i+j)%n]>>48 == bucket; j++ {
					wantHashes = append(wantHashes, hashes[(i+j)%n])
				}
			}
		}
		gotHashes := make([]uint64, len(got))
		for j := range got {
			gotHashes[j] = got[j].Hash
		}
		slices.Sort(gotHashes)
		slices.Sort(wantHashes)
		if !slices.Equal(gotHashes, wantHashes) {
			t.Fatalf("At(%x, %d) = %d candidates, want the %d of whole buckets from %04x on", pos, want, len(got), len(wantHashes), pos>>48)
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
