package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/ttl"
)

var ctx = context.Background()

// openTest opens a cache in a fresh directory with a manual clock.
func openTest(t testing.TB, o *Options) (*Cache, *ttl.ManualClock) {
	t.Helper()
	clock := ttl.NewManualClock(time.Unix(1_700_000_000, 0))
	if o == nil {
		o = &Options{}
	}
	if o.Clock == nil {
		o.Clock = clock
	}
	c, err := Open(filepath.Join(t.TempDir(), "cache"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, clock
}

func mustGet(t *testing.T, c *Cache, key string, want []byte) {
	t.Helper()
	got, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func mustMiss(t *testing.T, c *Cache, key string) {
	t.Helper()
	if v, err := c.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
	if ok, err := c.Exists(ctx, key); ok || err != nil {
		t.Fatalf("Exists(%q) = %v, %v; want false", key, ok, err)
	}
}

func mustLen(t *testing.T, c *Cache, want int64) {
	t.Helper()
	if n, err := c.Len(ctx); err != nil || n != want {
		t.Fatalf("Len = %d, %v; want %d", n, err, want)
	}
}

func TestSetGetDelete(t *testing.T) {
	c, _ := openTest(t, nil)
	big := bytes.Repeat([]byte("compressible text "), 10000)
	cases := []struct {
		key   string
		value []byte
	}{
		{"", []byte("the empty key")},
		{"k", nil},
		{"k2", []byte{}},
		{"binary\x00key\xff", []byte{0, 1, 2, 255}},
		{"big", big},
		{strings.Repeat("K", MaxKeySize), []byte("longest key")},
	}
	for _, tc := range cases {
		if err := c.Set(ctx, tc.key, tc.value, 0); err != nil {
			t.Fatalf("Set(%q): %v", truncKey(tc.key), err)
		}
	}
	for _, tc := range cases {
		want := tc.value
		if want == nil {
			want = []byte{}
		}
		mustGet(t, c, tc.key, want)
		if ok, err := c.Exists(ctx, tc.key); !ok || err != nil {
			t.Fatalf("Exists(%q) = %v, %v", truncKey(tc.key), ok, err)
		}
	}
	mustLen(t, c, int64(len(cases)))

	// Overwrite keeps the count.
	if err := c.Set(ctx, "k", []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "k", []byte("v2"))
	mustLen(t, c, int64(len(cases)))

	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, "k")
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	mustLen(t, c, int64(len(cases)-1))

	// The caller owns what Get returns, and Set copies.
	v := []byte("mutable")
	c.Set(ctx, "m", v, 0)
	v[0] = 'X'
	got, _ := c.Get(ctx, "m")
	mustGet(t, c, "m", []byte("mutable"))
	got[0] = 'Y'
	mustGet(t, c, "m", []byte("mutable"))

	s := c.Stats()
	if s.Sets != int64(len(cases))+2 || s.Deletes != 1 || s.Entries != int64(len(cases)) || s.Hits == 0 || s.Misses == 0 || s.DiskBytes <= 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestTTL(t *testing.T) {
	c, clock := openTest(t, nil)
	if err := c.Set(ctx, "short", []byte("s"), time.Second); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "long", []byte("l"), time.Hour)
	c.Set(ctx, "forever", []byte("f"), 0)
	c.Set(ctx, "negative", []byte("n"), -time.Second) // <= 0: never expires

	if d, err := c.TTL(ctx, "short"); err != nil || d != time.Second {
		t.Fatalf("TTL(short) = %v, %v", d, err)
	}
	if d, err := c.TTL(ctx, "forever"); err != nil || d != 0 {
		t.Fatalf("TTL(forever) = %v, %v", d, err)
	}
	clock.Advance(999 * time.Millisecond)
	mustGet(t, c, "short", []byte("s"))
	clock.Advance(time.Millisecond)
	mustMiss(t, c, "short")
	if _, err := c.TTL(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TTL of an expired key: %v", err)
	}
	// Expired entries count until they are swept.
	mustLen(t, c, 4)
	v, d, err := c.GetWithTTL(ctx, "long")
	if err != nil || string(v) != "l" || d != time.Hour-time.Second {
		t.Fatalf("GetWithTTL(long) = %q, %v, %v", v, d, err)
	}

	// Touch moves the expiry without touching the value.
	if err := c.Touch(ctx, "long", 10*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Touch(ctx, "forever", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.Touch(ctx, "short", time.Minute); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Touch of an expired key: %v", err)
	}
	clock.Advance(2 * time.Hour)
	mustGet(t, c, "long", []byte("l"))
	mustMiss(t, c, "forever")
	mustGet(t, c, "negative", []byte("n"))

	// One sweep deletes the two expired entries and the stale index
	// entries of the touched ones.
	r, err := c.local().sweeper.Tick()
	if err != nil {
		t.Fatal(err)
	}
	if r.Expired != 2 {
		t.Fatalf("sweep: %+v, want 2 expired", r)
	}
	mustLen(t, c, 2)
	if got := c.Stats().Expirations; got != 2 {
		t.Fatalf("Expirations = %d", got)
	}
	// Overwriting with a new TTL leaves no index entry behind that could
	// delete the new value.
	c.Set(ctx, "re", []byte("1"), time.Minute)
	c.Set(ctx, "re", []byte("2"), time.Hour)
	clock.Advance(2 * time.Minute)
	if r, _ := c.local().sweeper.Tick(); r.Expired != 0 {
		t.Fatalf("sweep after overwrite: %+v", r)
	}
	mustGet(t, c, "re", []byte("2"))
}

func TestSetManyGetMany(t *testing.T) {
	c, clock := openTest(t, nil)
	err := c.SetMany(ctx, []Entry{
		{Key: "a", Value: []byte("1")},
		{Key: "b", Value: []byte("2"), TTL: time.Second},
		{Key: "a", Value: []byte("3")}, // the last one wins
	})
	if err != nil {
		t.Fatal(err)
	}
	mustLen(t, c, 2)
	clock.Advance(time.Second)
	got, err := c.GetMany(ctx, []string{"a", "b", "c"})
	if err != nil || len(got) != 1 || string(got["a"]) != "3" {
		t.Fatalf("GetMany = %q, %v", got, err)
	}
	if err := c.SetMany(ctx, []Entry{{Key: "ok"}, {Key: strings.Repeat("x", MaxKeySize+1)}}); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("SetMany with a bad key: %v", err)
	}
	if _, err := c.Get(ctx, "ok"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a failed SetMany wrote part of its batch")
	}
}

func TestClear(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	os.MkdirAll(dir, 0o700)
	// Someone else's file in the cache directory survives Clear and Close.
	foreign := filepath.Join(dir, "notes.txt")
	os.WriteFile(foreign, []byte("mine"), 0o600)
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 1000; i++ {
		c.Set(ctx, fmt.Sprint(i), []byte("v"), time.Duration(i%2)*time.Hour)
	}
	if err := c.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	mustLen(t, c, 0)
	mustMiss(t, c, "7")
	c.Set(ctx, "after", []byte("x"), 0)
	mustLen(t, c, 1)
	c.Close()
	if b, err := os.ReadFile(foreign); err != nil || string(b) != "mine" {
		t.Fatalf("foreign file after Clear: %q, %v", b, err)
	}
	c, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustLen(t, c, 1)
	mustGet(t, c, "after", []byte("x"))
}

func TestReopenKeepsDataAndLen(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		c.Set(ctx, fmt.Sprintf("key-%d", i), []byte(fmt.Sprintf("value-%d", i)), 0)
	}
	for i := 0; i < 5000; i += 3 {
		c.Delete(ctx, fmt.Sprintf("key-%d", i))
	}
	want, _ := c.Len(ctx)
	bytesBefore := c.Stats().Bytes
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustLen(t, c, want)
	if got := c.Stats().Bytes; got != bytesBefore {
		t.Fatalf("Bytes after reopen = %d, want %d", got, bytesBefore)
	}
	mustGet(t, c, "key-1", []byte("value-1"))
	mustMiss(t, c, "key-3")
}

func TestClosed(t *testing.T) {
	c, _ := openTest(t, nil)
	c.Set(ctx, "k", []byte("v"), 0)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]error{}
	_, calls["Get"] = c.Get(ctx, "k")
	_, _, calls["GetWithTTL"] = c.GetWithTTL(ctx, "k")
	calls["Set"] = c.Set(ctx, "k", nil, 0)
	calls["Delete"] = c.Delete(ctx, "k")
	_, calls["Exists"] = c.Exists(ctx, "k")
	calls["Clear"] = c.Clear(ctx)
	_, calls["Len"] = c.Len(ctx)
	_, calls["TTL"] = c.TTL(ctx, "k")
	calls["Touch"] = c.Touch(ctx, "k", 0)
	calls["SetMany"] = c.SetMany(ctx, nil)
	_, calls["GetMany"] = c.GetMany(ctx, nil)
	_, calls["SetWithOptions"] = c.SetWithOptions(ctx, "k", nil, SetOptions{})
	_, calls["GetDelete"] = c.GetDelete(ctx, "k")
	_, calls["GetExpire"] = c.GetExpire(ctx, "k", Expiry{})
	_, calls["Expire"] = c.Expire(ctx, "k", Expiry{})
	_, calls["IncrBy"] = c.IncrBy(ctx, "k", 1)
	_, calls["Append"] = c.Append(ctx, "k", nil)
	_, calls["DeleteMany"] = c.DeleteMany(ctx, "k")
	_, calls["SetManyIfAbsent"] = c.SetManyIfAbsent(ctx, nil)
	_, _, calls["Scan"] = c.Scan(ctx, 0, 10)
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	_ = c.Stats() // does not panic
}

func TestContextCanceled(t *testing.T) {
	c, _ := openTest(t, nil)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Set(cctx, "k", nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a canceled context: %v", err)
	}
}

func TestLimits(t *testing.T) {
	c, _ := openTest(t, &Options{SizeLimit: 64 << 20})
	if err := c.Set(ctx, strings.Repeat("k", MaxKeySize+1), nil, 0); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("oversized key: %v", err)
	}
	if _, err := c.Get(ctx, strings.Repeat("k", MaxKeySize+1)); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("Get of an oversized key: %v", err)
	}
	max := (64 << 20) / maxValueFraction
	if err := c.Set(ctx, "v", make([]byte, max+1), 0); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("oversized value: %v", err)
	}
	if err := c.Set(ctx, "v", make([]byte, max), 0); err != nil {
		t.Fatalf("largest value: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := Open(file, nil); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("Open on a regular file: %v", err)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		if _, err := Open(filepath.Join(ro, "cache"), nil); err == nil || !strings.Contains(err.Error(), ro) {
			t.Fatalf("Open under a read-only directory: %v", err)
		}
	}
	// A damaged store names the directory and the cause.
	damaged := filepath.Join(dir, "damaged")
	c, err := Open(damaged, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "k", []byte("v"), 0)
	c.Close()
	manifests, _ := filepath.Glob(filepath.Join(damaged, storeDir, "MANIFEST-*"))
	for _, m := range manifests {
		os.WriteFile(m, []byte("garbage that is not a manifest"), 0o600)
	}
	if _, err := Open(damaged, nil); err == nil || !strings.Contains(err.Error(), damaged) {
		t.Fatalf("Open of a damaged store: %v", err)
	}
}

// TestSecondOpenForwards: a second Open of a directory that is open
// already forwards to the owner (here in the same process, through the
// owner's socket) and sees its writes, and the other way round.
func TestSecondOpenForwards(t *testing.T) {
	dir := t.TempDir()
	// A small limit keeps the oversized value below small too: 64 MiB
	// through the socket takes longer than the handoff window under the
	// race detector on a loaded machine.
	opts := &Options{SizeLimit: 64 << 20}
	owner, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	fwd, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	if !owner.IsOwner() || fwd.IsOwner() {
		t.Fatalf("roles: owner %v, second %v", owner.IsOwner(), fwd.IsOwner())
	}
	owner.Set(ctx, "from-owner", []byte("1"), 0)
	mustGet(t, fwd, "from-owner", []byte("1"))
	if err := fwd.Set(ctx, "from-fwd", []byte("2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	mustGet(t, owner, "from-fwd", []byte("2"))
	if d, err := fwd.TTL(ctx, "from-fwd"); err != nil || d <= 0 || d > time.Minute {
		t.Fatalf("TTL through the forwarder = %v, %v", d, err)
	}
	mustMiss(t, fwd, "nope")
	if n, err := fwd.Len(ctx); err != nil || n != 2 {
		t.Fatalf("Len through the forwarder = %d, %v", n, err)
	}
	if n, err := fwd.IncrBy(ctx, "n", 5); err != nil || n != 5 {
		t.Fatalf("IncrBy through the forwarder = %d, %v", n, err)
	}
	fwd.Set(ctx, "s", []byte("x"), 0)
	if _, err := fwd.IncrBy(ctx, "s", 1); !errors.Is(err, ErrNotInteger) {
		t.Fatalf("IncrBy of a string through the forwarder: %v", err)
	}
	if err := fwd.Set(ctx, "big", make([]byte, owner.opts.MaxValueSize+1), 0); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("oversized value through the forwarder: %v", err)
	}
	if st := fwd.Stats(); st.Entries != 4 || st.Hits == 0 || st.Misses == 0 {
		t.Fatalf("forwarder Stats = %+v", st)
	}
}

// TestConcurrentModel runs random operations from many goroutines on
// disjoint key sets and checks each against a map.
func TestConcurrentModel(t *testing.T) {
	c, clock := openTest(t, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			model := map[string]string{}
			for i := 0; i < 2000; i++ {
				k := fmt.Sprintf("g%d-k%d", g, rng.IntN(100))
				switch rng.IntN(4) {
				case 0, 1:
					v := fmt.Sprint(rng.Int())
					if err := c.Set(ctx, k, []byte(v), 0); err != nil {
						t.Error(err)
						return
					}
					model[k] = v
				case 2:
					c.Delete(ctx, k)
					delete(model, k)
				case 3:
					got, err := c.Get(ctx, k)
					want, ok := model[k]
					if ok != (err == nil) || (ok && string(got) != want) {
						t.Errorf("Get(%q) = %q, %v; model %q, %v", k, got, err, want, ok)
						return
					}
				}
			}
		}(g)
	}
	// A sweeper and a clock that moves run alongside.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			clock.Advance(time.Second)
			c.local().sweeper.Tick()
		}
	}()
	wg.Wait()
	n, _ := c.Len(ctx)
	scanned := countScan(t, c)
	if n != scanned {
		t.Fatalf("Len = %d, a scan finds %d", n, scanned)
	}
}

// countScan counts the data keys in the store.
func countScan(t testing.TB, c *Cache) int64 {
	lo, hi := dataSpan()
	it, err := c.local().db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var n int64
	for valid := it.SeekGE(lo); valid && bytes.Compare(it.Key(), hi) < 0; valid = it.Next() {
		n++
	}
	return n
}

func TestScan(t *testing.T) {
	c, clock := openTest(t, nil)
	want := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("key-%d", i)
		want[k] = true
		c.Set(ctx, k, []byte("v"), 0)
	}
	c.Set(ctx, "expiring", []byte("v"), time.Second)
	clock.Advance(time.Second)
	for _, count := range []int{1, 7, 100, 5000} {
		seen := map[string]int{}
		cursor, calls := uint64(0), 0
		for {
			keys, next, err := c.Scan(ctx, cursor, count)
			if err != nil {
				t.Fatal(err)
			}
			calls++
			for _, k := range keys {
				seen[k]++
			}
			if next == 0 {
				break
			}
			cursor = next
		}
		if len(seen) != len(want) {
			t.Fatalf("count %d: scan saw %d keys, want %d", count, len(seen), len(want))
		}
		for k, n := range seen {
			if !want[k] || n != 1 {
				t.Fatalf("count %d: key %q seen %d times", count, k, n)
			}
		}
		if count == 7 && calls < 1000/7 {
			t.Fatalf("count 7 took only %d calls", calls)
		}
	}
}

func TestReadModifyWrite(t *testing.T) {
	c, clock := openTest(t, nil)
	// SET NX / XX / GET / KEEPTTL
	r, err := c.SetWithOptions(ctx, "k", []byte("1"), SetOptions{NX: true, Expiry: Expiry{TTL: time.Minute}})
	if err != nil || !r.Written || r.HadOld {
		t.Fatalf("SET NX on a missing key: %+v, %v", r, err)
	}
	if r, _ := c.SetWithOptions(ctx, "k", []byte("2"), SetOptions{NX: true}); r.Written || !r.HadOld {
		t.Fatalf("SET NX on a present key: %+v", r)
	}
	if r, _ := c.SetWithOptions(ctx, "missing", []byte("2"), SetOptions{XX: true}); r.Written {
		t.Fatalf("SET XX on a missing key: %+v", r)
	}
	r, _ = c.SetWithOptions(ctx, "k", []byte("3"), SetOptions{KeepTTL: true, Get: true})
	if !r.Written || string(r.Old) != "1" {
		t.Fatalf("SET KEEPTTL GET: %+v", r)
	}
	if d, _ := c.TTL(ctx, "k"); d != time.Minute {
		t.Fatalf("KEEPTTL kept %v", d)
	}
	// INCRBY keeps the TTL, rejects what Redis rejects.
	c.Set(ctx, "n", []byte("41"), time.Hour)
	if n, err := c.IncrBy(ctx, "n", 1); n != 42 || err != nil {
		t.Fatalf("IncrBy = %d, %v", n, err)
	}
	if d, _ := c.TTL(ctx, "n"); d != time.Hour {
		t.Fatalf("IncrBy lost the TTL: %v", d)
	}
	if n, err := c.IncrBy(ctx, "fresh", -5); n != -5 || err != nil {
		t.Fatalf("IncrBy on a missing key = %d, %v", n, err)
	}
	for _, bad := range []string{"", "x", " 1", "01", "+1", "1.5", "-0", "99999999999999999999"} {
		c.Set(ctx, "bad", []byte(bad), 0)
		if _, err := c.IncrBy(ctx, "bad", 1); !errors.Is(err, ErrNotInteger) {
			t.Fatalf("IncrBy on %q: %v", bad, err)
		}
	}
	c.Set(ctx, "max", []byte("9223372036854775807"), 0)
	if _, err := c.IncrBy(ctx, "max", 1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("IncrBy past MaxInt64: %v", err)
	}
	// APPEND
	if n, _ := c.Append(ctx, "s", []byte("ab")); n != 2 {
		t.Fatalf("Append = %d", n)
	}
	if n, _ := c.Append(ctx, "s", []byte("cd")); n != 4 {
		t.Fatalf("Append = %d", n)
	}
	mustGet(t, c, "s", []byte("abcd"))
	// GETDEL, GETEX, EXPIRE, PERSIST
	if v, err := c.GetDelete(ctx, "s"); string(v) != "abcd" || err != nil {
		t.Fatalf("GetDelete = %q, %v", v, err)
	}
	if _, err := c.GetDelete(ctx, "s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetDelete of a deleted key: %v", err)
	}
	if v, err := c.GetExpire(ctx, "k", Expiry{TTL: time.Second}); string(v) != "3" || err != nil {
		t.Fatalf("GetExpire = %q, %v", v, err)
	}
	if ok, _ := c.Expire(ctx, "k", Expiry{Persist: true}); !ok {
		t.Fatal("Persist on an expiring key did nothing")
	}
	if ok, _ := c.Expire(ctx, "k", Expiry{Persist: true}); ok {
		t.Fatal("Persist on a key without expiry reported a change")
	}
	if ok, _ := c.Expire(ctx, "nope", Expiry{TTL: time.Second}); ok {
		t.Fatal("Expire on a missing key reported a change")
	}
	if ok, _ := c.Expire(ctx, "k", Expiry{At: clock.Now().Add(-time.Second)}); !ok {
		t.Fatal("Expire in the past did not report a change")
	}
	mustMiss(t, c, "k")
	// MSETNX, DEL count
	if ok, _ := c.SetManyIfAbsent(ctx, []Entry{{Key: "a", Value: []byte("1")}, {Key: "n", Value: []byte("1")}}); ok {
		t.Fatal("SetManyIfAbsent wrote over an existing key")
	}
	mustMiss(t, c, "a")
	if ok, _ := c.SetManyIfAbsent(ctx, []Entry{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}); !ok {
		t.Fatal("SetManyIfAbsent did not write")
	}
	if n, _ := c.DeleteMany(ctx, "a", "b", "zzz"); n != 2 {
		t.Fatalf("DeleteMany = %d", n)
	}
	n, _ := c.Len(ctx)
	if scanned := countScan(t, c); n != scanned {
		t.Fatalf("Len = %d, scan %d", n, scanned)
	}
}

// TestIncrIsAtomic has goroutines increment one counter concurrently.
func TestIncrIsAtomic(t *testing.T) {
	c, _ := openTest(t, nil)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				if _, err := c.IncrBy(ctx, "counter", 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mustGet(t, c, "counter", []byte("2000"))
}
