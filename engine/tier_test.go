package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/internal/hottier"
	"github.com/diskcache-go/diskcache/ttl"
)

// openTrio opens one directory three times in this process: flock locks
// are per open file, so the first Cache owns the directory and the other
// two forward to it, all reading its hot tier, all on one manual clock.
func openTrio(t *testing.T) (owner, a, b *Cache, clock *ttl.ManualClock) {
	t.Helper()
	clock = ttl.NewManualClock(time.Unix(1_700_000_000, 0))
	dir := filepath.Join(t.TempDir(), "cache")
	var cs [3]*Cache
	for i := range cs {
		cs[i] = openDir(t, dir, &Options{SizeLimit: 64 << 20, Clock: clock})
	}
	if !cs[0].IsOwner() || cs[1].IsOwner() || cs[2].IsOwner() {
		t.Fatal("want the first Cache to own the directory")
	}
	return cs[0], cs[1], cs[2], clock
}

// openDir opens dir, and closes it when the test ends.
func openDir(t *testing.T, dir string, o *Options) *Cache {
	t.Helper()
	c, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// storeOneKey opens a cache on dir, sets "k" to "v" and closes it.
func storeOneKey(t *testing.T, dir string) {
	t.Helper()
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func localHits(c *Cache) int64 { return c.Stats().LocalHits }

// wakeTier wakes a lone owner's dormant tier as a judge's verdict of
// nothing but hits would.
func wakeTier(c *Cache) { c.local().tier.follow(1) }

// A hot key read in a forwarder is soon answered from the tier, and then
// always, without asking the owner.
func TestHotTierAnswersHotKeys(t *testing.T) {
	owner, a, _, _ := openTrio(t)
	owner.Set(ctx, "k", []byte("v"), 0)
	// The first read may find the key already there (the owner warms the
	// tier when a forwarder connects), or fill it; a fill may be dropped
	// while the warming runs, but not for long.
	for i := 0; localHits(a) == 0; i++ {
		if i == 100 {
			t.Fatal("100 reads of a key and the tier never answered one")
		}
		mustGet(t, a, "k", []byte("v"))
	}
	answered := func() int64 { s := a.Stats(); return s.Hits - s.LocalHits } // by the owner
	before, local := answered(), localHits(a)
	for range 10 {
		mustGet(t, a, "k", []byte("v"))
	}
	if got := localHits(a) - local; got != 10 {
		t.Fatalf("the tier answered %d of 10 reads of a cached key, want 10", got)
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
func TestHotTierIsCoherent(t *testing.T) {
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
				mustGet(t, a, "k", []byte("v1")) // now from the tier
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

// An entry expires on time: the tier never serves a value past the expiry
// the owner has for it.
func TestHotTierExpiresOnTime(t *testing.T) {
	owner, a, _, clock := openTrio(t)
	owner.Set(ctx, "k", []byte("v"), 10*time.Second)
	// The first read may find the key already there (the owner warms the
	// tier when a forwarder connects), or fill it; a fill may be dropped
	// while the warming runs (it holds the tier's writer), but not for long.
	for i := 0; localHits(a) == 0; i++ {
		if i == 100 {
			t.Fatal("100 reads of a key and the tier never answered one")
		}
		mustGet(t, a, "k", []byte("v"))
	}
	clock.Advance(9 * time.Second)
	before := localHits(a)
	mustGet(t, a, "k", []byte("v"))
	if localHits(a) != before+1 {
		t.Fatalf("LocalHits went from %d to %d, want the second read from the tier", before, localHits(a))
	}
	_, left, err := a.GetWithTTL(ctx, "k")
	if err != nil || left <= 0 || left > time.Second {
		t.Fatalf("GetWithTTL left %v, %v; want at most the 1s the owner has", left, err)
	}
	clock.Advance(time.Second)
	mustMiss(t, a, "k")
}

// A new owner invalidates the old owner's tier, which forwarders still map:
// the old owner may have applied writes it never acknowledged.
func TestHotTierDroppedOnNewOwner(t *testing.T) {
	owner, a, b, _ := openTrio(t)
	owner.Set(ctx, "k", []byte("v"), 0)
	mustGet(t, b, "k", []byte("v"))
	e, err := mapEpoch(epochPath(owner.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	before := e.load()
	owner.Close()
	// The old owner's tier still answers reads, which is right until a
	// new owner serves a write: a write makes a take over.
	if err := a.Set(ctx, "other", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if !a.IsOwner() && !b.IsOwner() {
		t.Fatal("nobody took over")
	}
	if e.load() == before {
		t.Fatal("the new owner kept the epoch")
	}
	hits := localHits(b)
	mustGet(t, b, "k", []byte("v"))
	if !b.IsOwner() && localHits(b) != hits {
		t.Fatal("b answered from the old owner's tier")
	}
}

// Readers in one forwarder never see a value older than the last write
// acknowledged in another forwarder before the read began (run it with
// -race).
func TestHotTierLinearizable(t *testing.T) {
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

// A damaged epoch file is replaced by the owner and refused by
// forwarders, which then ask the owner for every read.
func TestEpochFileDamaged(t *testing.T) {
	dir := t.TempDir()
	if _, err := createEpoch(dir); err != nil {
		t.Fatal(err)
	}
	path := epochPath(dir)
	for _, damage := range []func() error{
		func() error { return os.WriteFile(path, []byte("garbage"), 0o600) },
		func() error { return os.Truncate(path, epochSize+100) },
	} {
		if err := damage(); err != nil {
			t.Fatal(err)
		}
		if _, err := mapEpoch(path); !errors.Is(err, errBadEpoch) {
			t.Fatalf("a damaged epoch file was mapped: %v", err)
		}
		e, err := createEpoch(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := e.bump()
		if f, err := mapEpoch(path); err != nil || f.load() != n {
			t.Fatalf("the replaced epoch file does not work: %v", err)
		}
	}
}

// A cache used by one process reads its hot keys from the tier too (once
// awake), and writes no epoch file; from the first connection on,
// forwarders read the same tier, and a write in the owner is seen by them
// at once.
func TestEpochFileOnlyWhenShared(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	owner := openDir(t, dir, &Options{SizeLimit: 64 << 20})
	wakeTier(owner)
	for i := range 100 {
		owner.Set(ctx, fmt.Sprint("k", i), []byte("before"), 0)
	}
	mustGet(t, owner, "k0", []byte("before"))
	mustGet(t, owner, "k0", []byte("before"))
	if localHits(owner) != 1 {
		t.Fatalf("LocalHits = %d in the owner, want the second read from the tier", localHits(owner))
	}
	if _, err := os.Stat(filepath.Join(dir, epochName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists before any forwarder connected: %v", epochName, err)
	}
	fwd := openDir(t, dir, &Options{SizeLimit: 64 << 20})
	// The owner made a tier of the full size for the forwarder, and warms
	// it from the store: the forwarder's reads are soon answered there.
	// Soon, on a loaded machine, is not within 100 reads (a CI run, 30 ms
	// of them, 2026-12-06): the warm and the fills may not have run yet.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; localHits(fwd) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("LocalHits = 0 after %d reads in 10 s: the forwarder reads nothing from the owner's tier", i)
		}
		mustGet(t, fwd, "k0", []byte("before"))
		if i >= 100 {
			time.Sleep(time.Millisecond)
		}
	}
	owner.Set(ctx, "k0", []byte("after"), 0)
	mustGet(t, fwd, "k0", []byte("after"))
}

// With the tier off, every process reads the store (through the owner).
func TestHotTierOff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	owner := openDir(t, dir, &Options{SizeLimit: 64 << 20, HotTierSize: -1})
	fwd := openDir(t, dir, nil)
	owner.Set(ctx, "k", []byte("v"), 0)
	for range 3 {
		mustGet(t, owner, "k", []byte("v"))
		mustGet(t, fwd, "k", []byte("v"))
	}
	if localHits(owner) != 0 || localHits(fwd) != 0 {
		t.Fatalf("LocalHits = %d, %d with the tier off", localHits(owner), localHits(fwd))
	}
}

// A forwarder opened with LocalCacheSize < 0 (the option the tier
// replaced) reads nothing from the tier: every read asks the owner, and
// sees every write.
func TestLocalCacheSizeOffAsksTheOwner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	owner := openDir(t, dir, &Options{SizeLimit: 64 << 20})
	fwd := openDir(t, dir, &Options{LocalCacheSize: -1})
	owner.Set(ctx, "k", []byte("v"), 0)
	for range 3 {
		mustGet(t, owner, "k", []byte("v"))
		mustGet(t, fwd, "k", []byte("v"))
	}
	if localHits(fwd) != 0 {
		t.Fatalf("LocalHits = %d in a forwarder with LocalCacheSize -1", localHits(fwd))
	}
	owner.Set(ctx, "k", []byte("w"), 0)
	mustGet(t, fwd, "k", []byte("w"))
}

// A process that reads warmAfter keys the tier does not hold gets the
// store's records filled into the tier in the background; a key written
// meanwhile is never filled with the value the write replaced.
func TestHotTierWarms(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c := openDir(t, dir, &Options{SizeLimit: 64 << 20})
	wakeTier(c)
	const n = 3 * warmAfter
	var entries []Entry
	for i := range n {
		entries = append(entries, Entry{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("v", i))})
	}
	if err := c.SetMany(ctx, entries); err != nil {
		t.Fatal(err)
	}
	for i := range warmAfter {
		mustGet(t, c, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)))
	}
	c.Set(ctx, fmt.Sprint("k", n-1), []byte("new"), 0)
	s := c.local()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, ok := s.tier.get(fmt.Sprint("k", n-2), hottier.Hash(fmt.Sprint("k", n-2))); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tier was not warmed")
		}
		time.Sleep(time.Millisecond)
	}
	before := localHits(c)
	for i := warmAfter; i < n-1; i++ {
		mustGet(t, c, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)))
	}
	mustGet(t, c, fmt.Sprint("k", n-1), []byte("new"))
	if got := localHits(c) - before; got < (n-warmAfter)/2 {
		t.Fatalf("%d of %d reads of keys never read before hit the warmed tier", got, n-warmAfter)
	}
}

// A warm reads the whole store through the block cache, but does not grow
// it: the tier keeps the values, and a block cache just opened would take
// each block read into memory it never had (holdCache). Reads after the
// warm have the whole cache again.
func TestWarmLeavesBlockCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	o := &Options{SizeLimit: 64 << 20, CacheSize: 16 << 20, HotTierSize: 64 << 20}
	c := openDir(t, dir, o)
	r := rand.New(rand.NewPCG(1, 1))
	const n = 100_000 // 13 MB of values no compression shrinks
	var entries []Entry
	for i := range n {
		v := make([]byte, 128)
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		entries = append(entries, Entry{Key: fmt.Sprint("k", i), Value: v})
		if len(entries) == 1000 || i == n-1 {
			if err := c.SetMany(ctx, entries); err != nil {
				t.Fatal(err)
			}
			entries = entries[:0]
		}
	}
	c.Close()
	c = openDir(t, dir, o)
	s := c.local()
	cache := s.tier.cache
	before := cache.Size()
	// Blocks may also take what the memtables leave of their room.
	bound := before + warmCacheRoom + s.room.room
	s.warmTier(s.tier.cur.Load().w)
	if got := cache.Size(); got > bound {
		t.Fatalf("the warm grew the block cache from %d to %d bytes, want at most %d", before, got, bound)
	}
	if _, _, ok := s.tier.get("k7", hottier.Hash("k7")); !ok {
		t.Fatal("the warm left k7 out of the tier")
	}
	for i := range n {
		if _, _, _, err := s.readRecord(s.layout.dataKey(nil, fmt.Sprint("k", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	if got := cache.Size(); got <= bound {
		t.Fatalf("reads after the warm left the block cache at %d bytes: the warm's hold was not released", got)
	}
}

// Once the tier is in use, a Set puts the value it wrote in the tier: the
// next read of the key hits, in every process.
func TestHotTierTakesWrites(t *testing.T) {
	owner, a, _, _ := openTrio(t)
	owner.Set(ctx, "read", []byte("r"), 0)
	mustGet(t, a, "read", []byte("r")) // the tier holds a key now
	for i := range 5 {
		v := []byte(fmt.Sprint("v", i))
		if err := a.Set(ctx, "k", v, 0); err != nil {
			t.Fatal(err)
		}
		before := localHits(a)
		mustGet(t, a, "k", v)
		if localHits(a) != before+1 {
			t.Fatalf("write %d: the read after the Set did not hit the tier", i)
		}
	}
}

// tierSize returns the size of the tier c's owner writes now (0: none).
func tierSize(c *Cache) int {
	m := c.local().tier.cur.Load()
	if m == nil {
		return 0
	}
	return m.w.Tier().Size()
}

// A process alone on its directory writes a small tier, made when its
// reads first earn it; the first forwarder to connect gets one of the full
// size, and what the owner wrote before and after the swap reads the same
// in both processes. A size set in Options is made from the start.
func TestLoneOwnerTierGrowsWhenShared(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	owner := openDir(t, dir, &Options{SizeLimit: 64 << 20})
	if got := tierSize(owner); got != 0 {
		t.Fatalf("a lone owner's dormant tier is %d bytes, want none made yet", got)
	}
	wakeTier(owner)
	if got := tierSize(owner); got != defaultLoneTierSize {
		t.Fatalf("a lone owner's tier is %d bytes once awake, want %d", got, defaultLoneTierSize)
	}
	for i := range 100 {
		owner.Set(ctx, fmt.Sprint("k", i), []byte("v1"), 0)
	}
	for i := range 100 {
		mustGet(t, owner, fmt.Sprint("k", i), []byte("v1"))
		mustGet(t, owner, fmt.Sprint("k", i), []byte("v1"))
	}
	if localHits(owner) == 0 {
		t.Fatal("the lone owner's tier answered none of its second reads")
	}

	// Reads in flight across the swap, and the old tier's release.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprint("k", i%100)
				if v, err := owner.Get(ctx, k); err != nil || string(v) != "v1" {
					t.Errorf("Get(%s) = %q, %v during the swap", k, v, err)
					return
				}
				if i%1000 == 0 {
					runtime.GC()
				}
			}
		})
	}
	fwd, err := Open(dir, &Options{SizeLimit: 64 << 20})
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	runtime.GC()
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	if fwd.IsOwner() {
		t.Fatal("want the second Cache to forward")
	}
	if got := tierSize(owner); got != defaultHotTierSize {
		t.Fatalf("the owner's tier is %d bytes once shared, want %d", got, defaultHotTierSize)
	}
	for i := range 50 {
		owner.Set(ctx, fmt.Sprint("k", i), []byte("v2"), 0)
	}
	for range 2 {
		for i := range 100 {
			want := "v1"
			if i < 50 {
				want = "v2"
			}
			mustGet(t, owner, fmt.Sprint("k", i), []byte(want))
			mustGet(t, fwd, fmt.Sprint("k", i), []byte(want))
		}
	}
	if localHits(fwd) == 0 {
		t.Fatal("the forwarder read nothing from the shared tier")
	}

	set := filepath.Join(t.TempDir(), "set")
	c := openDir(t, set, &Options{SizeLimit: 64 << 20, HotTierSize: 8 << 20})
	if got := tierSize(c); got != 8<<20 {
		t.Fatalf("with HotTierSize 8 MiB a lone owner's tier is %d bytes", got)
	}
	off := openDir(t, filepath.Join(t.TempDir(), "off"), &Options{SizeLimit: 64 << 20, HotTierSize: -1})
	if got := tierSize(off); got != 0 {
		t.Fatalf("with HotTierSize -1 the tier is %d bytes", got)
	}
}

// BenchmarkWarmTier measures warmTier alone: a store of n 128-byte values
// warmed into a fresh tier large enough for all of them. Run it as
//
//	go test ./engine -run XXX -bench WarmTier -benchtime 3x
func BenchmarkWarmTier(b *testing.B) {
	const n = 500_000
	kv := newBenchKV(n)
	c, err := Open(b.TempDir(), &Options{SizeLimit: 1 << 30, HotTierSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < n; i += 1000 {
		var es []Entry
		for j := i; j < min(i+1000, n); j++ {
			es = append(es, Entry{Key: kv.keys[j], Value: kv.values[j]})
		}
		if err := c.SetMany(ctx, es); err != nil {
			b.Fatal(err)
		}
	}
	s := c.local()
	if err := settleDB(s.db); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		t, f, err := hottier.Create(256<<20, 1)
		if err != nil {
			b.Fatal(err)
		}
		w := hottier.NewWriter(t)
		b.StartTimer()
		s.warmTier(w)
		b.StopTimer()
		held := 0
		for _, k := range kv.keys[:1000] {
			if _, _, ok := t.Get(k, hottier.Hash(k)); ok {
				held++
			}
		}
		b.ReportMetric(float64(held)/10, "%held")
		t.Unmap()
		f.Close()
		b.StartTimer()
	}
}

// A lone owner's default tier, once awake, takes its share out of the
// block cache, so that reads which fill both leave the process where the
// block cache alone would; dormant, it takes nothing; once a second
// process connects, the shared tier comes on top and the block cache has
// all of CacheSize back.
func TestLoneTierTakesItsShareOfBlockCache(t *testing.T) {
	const cacheSize = 8 << 20 // a 2 MiB tier, the rest for blocks
	dir := filepath.Join(t.TempDir(), "cache")
	owner := openDir(t, dir, &Options{SizeLimit: 1 << 30, CacheSize: cacheSize})
	fillBlocks(t, owner)
	db := owner.local().db
	readAll := func() int64 { return readBlocks(t, db) }
	// A shard of the cache may go over its share by a block or two.
	const slack = 64 << 10
	if got := readAll(); got < cacheSize-slack {
		t.Fatalf("with the lone tier dormant the block cache holds %d bytes, want CacheSize %d", got, cacheSize)
	}
	wakeTier(owner)
	if got := tierSize(owner); got != cacheSize/4 {
		t.Fatalf("a lone owner's tier is %d bytes with CacheSize %d, want a quarter", got, cacheSize)
	}
	if got := readAll(); got > cacheSize-cacheSize/4+slack {
		t.Fatalf("the lone owner's block cache holds %d bytes, more than CacheSize %d less the tier's %d",
			got, cacheSize, cacheSize/4)
	}
	openDir(t, dir, &Options{SizeLimit: 1 << 30, CacheSize: cacheSize})
	if got := readAll(); got < cacheSize-slack {
		t.Fatalf("with the directory shared the block cache holds %d bytes, want CacheSize %d: the lone tier's share is not back",
			got, cacheSize)
	}
}

// The default shared tier holds what the store holds: a way at half load
// a key, or the records of large values, within its bounds.
func TestSharedTierSize(t *testing.T) {
	for _, tc := range []struct {
		entries, bytes, want int64
	}{
		{0, 0, defaultHotTierSize},
		{100, 10 << 10, defaultHotTierSize},
		{131072, 131072 * 150, 64 << 20},                 // 512 bytes a key: 64 MiB
		{131073, 131073 * 150, 128 << 20},                // one more key
		{500_000, 500_000 * 170, 256 << 20},              // W7's store
		{20_000, 20_000 * 4100, 128 << 20},               // 4 KiB values: 82 MB stored
		{10_000_000, 10_000_000 * 150, 256 << 20},        // capped
		{1000, 1000 * (64 << 20), maxDefaultHotTierSize}, // capped by bytes
	} {
		if got := sharedTierSize(tc.entries, tc.bytes); got != tc.want {
			t.Errorf("sharedTierSize(%d, %d) = %d MiB, want %d MiB", tc.entries, tc.bytes, got>>20, tc.want>>20)
		}
	}
}
