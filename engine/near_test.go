package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/ttl"
)

// openTrio opens one directory three times in this process: flock locks
// are per open file, so the first Cache owns the directory and the other
// two forward to it, each with a local cache, all on one manual clock.
func openTrio(t *testing.T) (owner, a, b *Cache, clock *ttl.ManualClock) {
	t.Helper()
	clock = ttl.NewManualClock(time.Unix(1_700_000_000, 0))
	dir := filepath.Join(t.TempDir(), "cache")
	var cs [3]*Cache
	for i := range cs {
		c, err := Open(dir, &Options{SizeLimit: 64 << 20, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	if !cs[0].IsOwner() || cs[1].IsOwner() || cs[2].IsOwner() {
		t.Fatal("want the first Cache to own the directory")
	}
	return cs[0], cs[1], cs[2], clock
}

func localHits(c *Cache) int64 { return c.Stats().LocalHits }

// A hot key read twice in a forwarder is answered the second time without
// asking the owner.
func TestLocalCacheAnswersHotKeys(t *testing.T) {
	owner, a, _, _ := openTrio(t)
	owner.Set(ctx, "k", []byte("v"), 0)
	mustGet(t, a, "k", []byte("v"))
	answered := func() int64 { s := a.Stats(); return s.Hits - s.LocalHits } // by the owner
	before := answered()
	for range 10 {
		mustGet(t, a, "k", []byte("v"))
	}
	if got := localHits(a); got != 10 {
		t.Fatalf("LocalHits = %d after 10 reads of a cached key, want 10", got)
	}
	if after := answered(); after != before {
		t.Fatalf("the owner answered %d reads of a cached key", after-before)
	}
	// The caller owns what Get returns: changing it changes nothing.
	v, _ := a.Get(ctx, "k")
	v[0] = 'x'
	mustGet(t, a, "k", []byte("v"))
}

// Once a write has returned in any process, no forwarder returns the value
// it replaced, whatever the write.
func TestLocalCacheIsCoherent(t *testing.T) {
	owner, a, b, clock := openTrio(t)
	writes := []struct {
		name  string
		write func(c *Cache) error
		want  string // "" means missing
	}{
		{"Set", func(c *Cache) error { return c.Set(ctx, "k", []byte("v2"), 0) }, "v2"},
		{"Delete", func(c *Cache) error { return c.Delete(ctx, "k") }, ""},
		{"DeleteMany", func(c *Cache) error { _, err := c.DeleteMany(ctx, "k", "other"); return err }, ""},
		{"SetMany", func(c *Cache) error { return c.SetMany(ctx, []Entry{{Key: "k", Value: []byte("m")}}) }, "m"},
		{"SetWithOptions", func(c *Cache) error {
			_, err := c.SetWithOptions(ctx, "k", []byte("xx"), SetOptions{XX: true})
			return err
		}, "xx"},
		{"Append", func(c *Cache) error { _, err := c.Append(ctx, "k", []byte("+")); return err }, "v1+"},
		{"GetDelete", func(c *Cache) error { _, err := c.GetDelete(ctx, "k"); return err }, ""},
		{"Clear", func(c *Cache) error { return c.Clear(ctx) }, ""},
		{"GetExpire", func(c *Cache) error { _, err := c.GetExpire(ctx, "k", Expiry{At: time.Unix(0, 1)}); return err }, ""},
		{"Touch", func(c *Cache) error { return c.Touch(ctx, "k", time.Hour) }, "v1"},
		{"SetManyIfAbsent", func(c *Cache) error {
			if err := c.Delete(ctx, "k"); err != nil {
				return err
			}
			_, err := c.SetManyIfAbsent(ctx, []Entry{{Key: "k", Value: []byte("abs")}})
			return err
		}, "abs"},
	}
	// Every write of the contract is here or in a subtest below; reads
	// cannot make a cached value stale.
	covered := map[string]bool{"IncrBy": true, "Expire": true}
	for _, w := range writes {
		covered[w.name] = true
	}
	reads := map[string]bool{"Get": true, "GetWithTTL": true, "Exists": true, "TTL": true, "GetMany": true,
		"Len": true, "Scan": true, "Stats": true}
	for _, m := range methods {
		if !covered[m.name] && !reads[m.name] {
			t.Errorf("%s is not among the writes this test checks", m.name)
		}
	}
	for _, w := range writes {
		for _, writer := range []struct {
			name string
			c    *Cache
		}{{"owner", owner}, {"other forwarder", b}} {
			t.Run(w.name+" by "+writer.name, func(t *testing.T) {
				if err := owner.Set(ctx, "k", []byte("v1"), 0); err != nil {
					t.Fatal(err)
				}
				mustGet(t, a, "k", []byte("v1"))
				mustGet(t, a, "k", []byte("v1")) // now from a's local cache
				if err := w.write(writer.c); err != nil {
					t.Fatal(err)
				}
				if w.want == "" {
					mustMiss(t, a, "k")
				} else {
					mustGet(t, a, "k", []byte(w.want))
				}
			})
		}
	}
	t.Run("IncrBy", func(t *testing.T) {
		owner.Set(ctx, "n", []byte("1"), 0)
		mustGet(t, a, "n", []byte("1"))
		b.IncrBy(ctx, "n", 41)
		mustGet(t, a, "n", []byte("42"))
	})
	t.Run("Expire", func(t *testing.T) {
		owner.Set(ctx, "e", []byte("v"), 0)
		mustGet(t, a, "e", []byte("v"))
		if ok, err := b.Expire(ctx, "e", Expiry{TTL: time.Second}); !ok || err != nil {
			t.Fatal(ok, err)
		}
		clock.Advance(time.Second)
		mustMiss(t, a, "e")
	})
	t.Run("GetMany", func(t *testing.T) {
		owner.SetMany(ctx, []Entry{{Key: "g1", Value: []byte("1")}, {Key: "g2", Value: []byte("2")}})
		mustGet(t, a, "g1", []byte("1"))
		owner.Set(ctx, "g1", []byte("one"), 0)
		got, err := a.GetMany(ctx, []string{"g1", "g2", "g3"})
		if err != nil || len(got) != 2 || string(got["g1"]) != "one" || string(got["g2"]) != "2" {
			t.Fatalf("GetMany = %q, %v", got, err)
		}
	})
}

// A cached entry expires on time: the local cache never serves a value
// past the expiry the owner has for it.
func TestLocalCacheExpiresOnTime(t *testing.T) {
	owner, a, _, clock := openTrio(t)
	owner.Set(ctx, "k", []byte("v"), 10*time.Second)
	mustGet(t, a, "k", []byte("v"))
	clock.Advance(9 * time.Second)
	mustGet(t, a, "k", []byte("v"))
	if localHits(a) != 1 {
		t.Fatalf("LocalHits = %d, want the second read from the local cache", localHits(a))
	}
	_, left, err := a.GetWithTTL(ctx, "k")
	if err != nil || left <= 0 || left > time.Second {
		t.Fatalf("GetWithTTL left %v, %v; want at most the 1s the owner has", left, err)
	}
	clock.Advance(time.Second)
	mustMiss(t, a, "k")
}

// A new owner invalidates everything forwarders cached: the old owner may
// have applied writes it never acknowledged.
func TestLocalCacheDroppedOnNewOwner(t *testing.T) {
	owner, a, b, _ := openTrio(t)
	owner.Set(ctx, "k", []byte("v"), 0)
	mustGet(t, b, "k", []byte("v"))
	g, err := openGenerations(owner.Dir())
	if err != nil {
		t.Fatal(err)
	}
	before := g.read(0).epoch
	owner.Close()
	mustGet(t, a, "k", []byte("v")) // a takes over
	if !a.IsOwner() && !b.IsOwner() {
		t.Fatal("nobody took over")
	}
	if g.read(0).epoch == before {
		t.Fatal("the new owner kept the epoch")
	}
	hits := localHits(b)
	mustGet(t, b, "k", []byte("v"))
	if !b.IsOwner() && localHits(b) != hits {
		t.Fatal("b answered from what it cached under the old owner")
	}
}

// Readers in one forwarder never see a value older than the last write
// acknowledged in another forwarder before the read began (run it with
// -race).
func TestLocalCacheLinearizable(t *testing.T) {
	_, a, b, _ := openTrio(t)
	const writes = 2000
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(1); i <= writes; i++ {
			if err := b.Set(ctx, "k", []byte(strconv.FormatInt(i, 10)), 0); err != nil {
				errs <- err
				return
			}
			acked.Store(i)
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for acked.Load() < writes {
				floor := acked.Load()
				v, err := a.Get(ctx, "k")
				if errors.Is(err, ErrNotFound) && floor == 0 {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if n, _ := strconv.ParseInt(string(v), 10, 64); n < floor {
					errs <- fmt.Errorf("read %d after write %d was acknowledged", n, floor)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustGet(t, a, "k", []byte(strconv.Itoa(writes)))
}

// A damaged generation table is replaced by the owner and refused by
// forwarders, which then ask the owner for every read.
func TestGenerationTableDamaged(t *testing.T) {
	dir := t.TempDir()
	if _, err := createGenerations(dir, genMinLog); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, genName)
	for _, damage := range []func() error{
		func() error { return os.WriteFile(path, []byte("garbage"), 0o600) },
		func() error { return os.Truncate(path, genHeader+100) },
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		if _, err := openGenerations(dir); !errors.Is(err, errBadGenerations) {
			t.Fatalf("forwarder mapped a damaged table: %v", err)
		}
		g, err := createGenerations(dir, genMinLog)
		if err != nil {
			t.Fatal(err)
		}
		atomic.AddUint32(g.slot(7), 1)
		if h, err := openGenerations(dir); err != nil || h.read(7).gen != 1 {
			t.Fatalf("the replaced table does not work: %v", err)
		}
	}
}

// An owner that no forwarder has connected to skips the generation bumps
// (generations.watched); from the first connection on, writes bump, and a
// forwarder that connected late still never serves a replaced value.
func TestGenerationsBumpOnceWatched(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	owner, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	slot := func(key string) uint32 {
		var kb [64]byte
		return owner.local().gens.read(bucketedKeys.hash(bucketedKeys.dataKey(kb[:0], key))).gen
	}
	for i := range 100 {
		owner.Set(ctx, fmt.Sprint("k", i), []byte("before"), 0)
	}
	owner.Delete(ctx, "k1")
	if owner.local().gens.m.Load() != nil {
		t.Fatal("the owner mapped a generation table before any forwarder connected")
	}
	if _, err := os.Stat(filepath.Join(dir, genName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists before any forwarder connected: %v", genName, err)
	}
	fwd, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	if g := slot("k0"); g != 0 {
		t.Fatalf("generation of k0 = %d in a new table, want 0", g)
	}
	mustGet(t, fwd, "k0", []byte("before"))
	mustGet(t, fwd, "k0", []byte("before"))
	if localHits(fwd) != 1 {
		t.Fatalf("LocalHits = %d, want the second read answered locally", localHits(fwd))
	}
	owner.Set(ctx, "k0", []byte("after"), 0)
	if g := slot("k0"); g == 0 {
		t.Fatal("a write after a forwarder connected did not bump its generation")
	}
	mustGet(t, fwd, "k0", []byte("after"))
}
