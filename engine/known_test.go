package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/ttl"
)

// Sets that find their key's record among the known ones (known.go), or
// its size in the hot tier (ownerTier.stored), skip the Pebble Get; every
// other kind of write in between must make them read it again. Random
// writes of every kind and reads over a few keys, with expiries that pass
// and Clears, leave Len and Stats' bytes equal to what a scan of the store
// counts, and no expiry index entry without its record. With the tier
// awake (a size set) the reads fill it with what they find.
func TestKnownRecordsKeepCountsExact(t *testing.T) {
	for _, tier := range []int64{0, 1 << 20} {
		t.Run(fmt.Sprint("tier=", tier), func(t *testing.T) { testKnownRecords(t, tier) })
	}
}

func testKnownRecords(t *testing.T, tier int64) {
	clock := ttl.NewManualClock(time.Unix(1_700_000_000, 0))
	dir := filepath.Join(t.TempDir(), "cache")
	c := openDir(t, dir, &Options{SizeLimit: 64 << 20, Clock: clock, SweepInterval: time.Hour, HotTierSize: tier})
	rng := rand.New(rand.NewPCG(7, 8))
	value := func() []byte { return make([]byte, rng.IntN(300)) }
	for i := range 20_000 {
		k := fmt.Sprint("k", rng.IntN(40))
		var err error
		switch op := rng.IntN(130); {
		case op < 50:
			ttl := time.Duration(0)
			if rng.IntN(3) == 0 {
				ttl = time.Duration(1+rng.IntN(5)) * time.Second
			}
			err = c.Set(ctx, k, value(), ttl)
		case op < 60:
			err = c.Delete(ctx, k)
		case op < 68:
			err = c.SetMany(ctx, []Entry{{Key: k, Value: value()}, {Key: fmt.Sprint("k", rng.IntN(40)), Value: value()}})
		case op < 76:
			_, err = c.SetWithOptions(ctx, k, value(), SetOptions{KeepTTL: rng.IntN(2) == 0, XX: rng.IntN(3) == 0})
		case op < 84:
			_, err = c.Expire(ctx, k, Expiry{TTL: time.Duration(1+rng.IntN(3)) * time.Second, Persist: rng.IntN(4) == 0})
		case op < 90:
			_, err = c.IncrBy(ctx, fmt.Sprint("n", rng.IntN(5)), 1)
		case op < 97:
			clock.Advance(time.Second)
			if rng.IntN(4) == 0 {
				_, err = c.local().Sweep(clock.Now().UnixNano(), 1000)
			}
		case op >= 100:
			if _, err = c.Get(ctx, k); errors.Is(err, ErrNotFound) {
				err = nil
			}
		}
		if err == nil && i%2500 == 1000 {
			err = c.Clear(ctx)
		}
		if err != nil && !errors.Is(err, ErrNotInteger) {
			t.Fatalf("op %d on %s: %v", i, k, err)
		}
	}
	n, err := c.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bytes := c.Stats().Bytes
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Damaged() || r.Entries != n || r.Bytes != bytes {
		t.Fatalf("Len %d and bytes %d; a scan counts %d entries and %d bytes; problems %v", n, bytes, r.Entries, r.Bytes, r.Problems)
	}
}
