// Package backendtest checks that a manager.Backend keeps the contract
// documented on manager.Backend, and that a manager on it works: typed
// values, GetOrSet, tags. Every backend in this module runs it; a backend
// written elsewhere can too:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) manager.Backend {
//			b, err := mybackend.New(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		})
//	}
//
// Expiry is checked against the real clock with TTLs of tens of
// milliseconds, so the suite works for a server it cannot give a fake
// clock to (Redis); it sleeps about half a second in all.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/manager"
)

// Run runs the conformance tests as subtests of t. newBackend must return
// a new, empty backend on each call; Run closes every backend it gets.
func Run(t *testing.T, newBackend func(t *testing.T) manager.Backend) {
	open := func(t *testing.T) manager.Backend {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, b manager.Backend)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"Overwrite", testOverwrite},
		{"Ownership", testOwnership},
		{"Delete", testDelete},
		{"Exists", testExists},
		{"Clear", testClear},
		{"TTL", testTTL},
		{"Context", testContext},
		{"Concurrent", testConcurrent},
		{"Batch", testBatch},
		{"GetWithTTL", testGetWithTTL},
		{"ManagerTyped", testManagerTyped},
		{"ManagerGetOrSet", testManagerGetOrSet},
		{"ManagerTags", testManagerTags},
		{"ManagerTagsRace", testManagerTagsRace},
		{"ManagerTTL", testManagerTTL},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
	// Close last, on a backend of its own: the cleanup's second Close
	// checks that Close is idempotent.
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
}

var ctx = context.Background()

func mustSet(t *testing.T, b manager.Backend, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := b.Set(ctx, key, value, ttl); err != nil {
		t.Fatalf("Set(%.40q): %v", key, err)
	}
}

func wantValue(t *testing.T, b manager.Backend, key string, want []byte) {
	t.Helper()
	got, err := b.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%.40q): %v, want %d bytes", key, err, len(want))
	}
	if got == nil || !bytes.Equal(got, want) {
		t.Fatalf("Get(%.40q) = %.40q (nil: %v), want %.40q", key, got, got == nil, want)
	}
}

func wantMissing(t *testing.T, b manager.Backend, key string) {
	t.Helper()
	got, err := b.Get(ctx, key)
	if !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Get(%.40q) = %.40q, %v; want ErrNotFound", key, got, err)
	}
}

func testGetMissing(t *testing.T, b manager.Backend) {
	wantMissing(t, b, "missing")
	wantMissing(t, b, "")
}

func testSetGet(t *testing.T, b manager.Backend) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, tc := range []struct {
		name, key string
		value     []byte
	}{
		{"plain", "k", []byte("v")},
		{"empty value", "empty", []byte{}},
		{"binary", "bin", []byte{0, 1, 0xff, 0, '\n', '\r'}},
		{"1 MiB", "big", big},
		{"empty key", "", []byte("empty key")},
		{"long key", strings.Repeat("k", 1000), []byte("long")},
		{"key with separators", "ns:kind:a b\n\x00\xff", []byte("sep")},
		{"unicode key", "ключ-鍵", []byte("uni")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustSet(t, b, tc.key, tc.value, 0)
			wantValue(t, b, tc.key, tc.value)
		})
	}
}

func testOverwrite(t *testing.T, b manager.Backend) {
	mustSet(t, b, "k", []byte("one"), 0)
	mustSet(t, b, "k", []byte("two, longer"), 0)
	wantValue(t, b, "k", []byte("two, longer"))
	mustSet(t, b, "k", []byte("3"), time.Hour)
	wantValue(t, b, "k", []byte("3"))
}

func testOwnership(t *testing.T, b manager.Backend) {
	in := []byte("original")
	mustSet(t, b, "k", in, 0)
	copy(in, "CHANGED!")
	wantValue(t, b, "k", []byte("original"))
	got, err := b.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "CHANGED!")
	wantValue(t, b, "k", []byte("original"))
}

func testDelete(t *testing.T, b manager.Backend) {
	mustSet(t, b, "k", []byte("v"), 0)
	mustSet(t, b, "other", []byte("o"), 0)
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMissing(t, b, "k")
	wantValue(t, b, "other", []byte("o"))
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if err := b.Delete(ctx, "never"); err != nil {
		t.Fatalf("Delete of a key never set: %v", err)
	}
}

func testExists(t *testing.T, b manager.Backend) {
	mustSet(t, b, "k", []byte{}, 0)
	for _, tc := range []struct {
		key  string
		want bool
	}{{"k", true}, {"missing", false}} {
		got, err := b.Exists(ctx, tc.key)
		if err != nil || got != tc.want {
			t.Errorf("Exists(%q) = %v, %v; want %v", tc.key, got, err, tc.want)
		}
	}
}

func testClear(t *testing.T, b manager.Backend) {
	for i := range 50 {
		mustSet(t, b, fmt.Sprint("k", i), []byte("v"), 0)
	}
	if err := b.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for i := range 50 {
		wantMissing(t, b, fmt.Sprint("k", i))
	}
	mustSet(t, b, "after", []byte("v"), 0)
	wantValue(t, b, "after", []byte("v"))
}

// shortTTL is long enough for Set to return before it ends on a loaded
// machine, and expiryWait is sure to be past it.
const (
	shortTTL   = 30 * time.Millisecond
	expiryWait = 80 * time.Millisecond
)

func testTTL(t *testing.T, b manager.Backend) {
	cases := []struct {
		key   string
		ttls  []time.Duration // Set in order
		alive bool            // after expiryWait
	}{
		{"zero never expires", []time.Duration{0}, true},
		{"negative never expires", []time.Duration{-time.Second}, true},
		{"long", []time.Duration{time.Hour}, true},
		{"short", []time.Duration{shortTTL}, false},
		{"sub-millisecond", []time.Duration{time.Microsecond}, false},
		{"overwrite removes expiry", []time.Duration{shortTTL, 0}, true},
		{"overwrite sets expiry", []time.Duration{0, shortTTL}, false},
	}
	for _, tc := range cases {
		for _, d := range tc.ttls {
			mustSet(t, b, tc.key, []byte(tc.key), d)
		}
	}
	time.Sleep(expiryWait)
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			if tc.alive {
				wantValue(t, b, tc.key, []byte(tc.key))
			} else {
				wantMissing(t, b, tc.key)
				if ok, err := b.Exists(ctx, tc.key); ok || err != nil {
					t.Errorf("Exists of an expired key = %v, %v", ok, err)
				}
			}
		})
	}
}

func testContext(t *testing.T, b manager.Backend) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Get(cctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: %v, want context.Canceled", err)
	}
	if err := b.Set(cctx, "k", []byte("v"), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Set with a canceled context: %v, want context.Canceled", err)
	}
}

func testConcurrent(t *testing.T, b manager.Backend) {
	const workers, ops = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ops {
				own := fmt.Sprintf("w%d-%d", w, i%10)
				val := []byte(fmt.Sprintf("%d-%d", w, i))
				if err := b.Set(ctx, own, val, 0); err != nil {
					errs <- err
					return
				}
				got, err := b.Get(ctx, own)
				if err != nil || !bytes.Equal(got, val) {
					errs <- fmt.Errorf("worker %d: Get(%s) = %q, %v; want %q", w, own, got, err, val)
					return
				}
				// A shared key: any worker's value, or a miss after a Delete.
				switch i % 3 {
				case 0:
					err = b.Set(ctx, "shared", val, 0)
				case 1:
					_, err = b.Get(ctx, "shared")
				case 2:
					err = b.Delete(ctx, "shared")
				}
				if err != nil && !errors.Is(err, manager.ErrNotFound) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testBatch(t *testing.T, b manager.Backend) {
	bs, okSet := b.(manager.BatchSetter)
	bg, okGet := b.(manager.BatchGetter)
	if !okSet && !okGet {
		t.Skip("neither BatchGetter nor BatchSetter")
	}
	if okSet {
		err := bs.SetMany(ctx, []manager.Entry{
			{Key: "a", Value: []byte("first")},
			{Key: "b", Value: []byte{}, TTL: time.Hour},
			{Key: "c", Value: []byte("short"), TTL: shortTTL},
			{Key: "a", Value: []byte("last wins")},
		})
		if err != nil {
			t.Fatalf("SetMany: %v", err)
		}
		if err := bs.SetMany(ctx, nil); err != nil {
			t.Fatalf("SetMany(nil): %v", err)
		}
	} else {
		mustSet(t, b, "a", []byte("last wins"), 0)
		mustSet(t, b, "b", []byte{}, 0)
		mustSet(t, b, "c", []byte("short"), shortTTL)
	}
	wantValue(t, b, "a", []byte("last wins"))
	wantValue(t, b, "b", []byte{})
	time.Sleep(expiryWait)
	wantMissing(t, b, "c")
	if okGet {
		got, err := bg.GetMany(ctx, []string{"a", "b", "c", "missing", "a"})
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		if len(got) != 2 || string(got["a"]) != "last wins" || got["b"] == nil || len(got["b"]) != 0 {
			t.Fatalf("GetMany = %q, want a and an empty b", got)
		}
		if got, err := bg.GetMany(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("GetMany(nil) = %v, %v", got, err)
		}
	}
}

func testGetWithTTL(t *testing.T, b manager.Backend) {
	tg, ok := b.(manager.TTLGetter)
	if !ok {
		t.Skip("not a TTLGetter")
	}
	mustSet(t, b, "forever", []byte("f"), 0)
	mustSet(t, b, "hour", []byte("h"), time.Hour)
	if v, left, err := tg.GetWithTTL(ctx, "forever"); err != nil || string(v) != "f" || left != 0 {
		t.Errorf("GetWithTTL(forever) = %q, %v, %v; want f, 0", v, left, err)
	}
	if v, left, err := tg.GetWithTTL(ctx, "hour"); err != nil || string(v) != "h" || left <= 59*time.Minute || left > time.Hour {
		t.Errorf("GetWithTTL(hour) = %q, %v, %v; want h, about an hour", v, left, err)
	}
	if _, _, err := tg.GetWithTTL(ctx, "missing"); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("GetWithTTL(missing): %v, want ErrNotFound", err)
	}
}

func testClose(t *testing.T, b manager.Backend) {
	mustSet(t, b, "k", []byte("v"), 0)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, manager.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := b.Set(ctx, "k", []byte("v"), 0); !errors.Is(err, manager.ErrClosed) {
		t.Errorf("Set after Close: %v, want ErrClosed", err)
	}
}

// Manager tests: the manager's features on top of this backend.

type doc struct {
	Title string
	Tags  []string
	Score float64
	When  time.Time
}

func newManager(t *testing.T, b manager.Backend) *manager.Manager {
	t.Helper()
	m, err := manager.New(b, &manager.Options{Namespace: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testManagerTyped(t *testing.T, b manager.Backend) {
	m := newManager(t, b)
	kb := m.Keys()
	when := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	want := doc{Title: "t", Tags: []string{"x", "y"}, Score: 0.5, When: when}
	k := kb.MustKey(manager.KindRetrieval, "query", 1)
	if err := manager.Set(ctx, m, k, want); err != nil {
		t.Fatal(err)
	}
	got, err := manager.Get[doc](ctx, m, k)
	if err != nil || got.Title != want.Title || !got.When.Equal(when) || len(got.Tags) != 2 || got.Score != 0.5 {
		t.Fatalf("Get[doc] = %+v, %v; want %+v", got, err, want)
	}
	if _, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrWrongType) {
		t.Fatalf("Get[string] of a doc: %v, want ErrWrongType", err)
	}
	emb := []float32{0.25, -1, 3.5}
	ek := kb.MustKey(manager.KindEmbedding, "text")
	if err := manager.Set(ctx, m, ek, emb); err != nil {
		t.Fatal(err)
	}
	if got, err := manager.Get[[]float32](ctx, m, ek); err != nil || len(got) != 3 || got[2] != 3.5 {
		t.Fatalf("Get[[]float32] = %v, %v", got, err)
	}
	if _, err := manager.Get[doc](ctx, m, kb.MustKey(manager.KindRetrieval, "missing")); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	got2, err := manager.GetMany[[]float32](ctx, m, []manager.Key{ek, kb.MustKey(manager.KindEmbedding, "none")})
	if err != nil || len(got2) != 1 || len(got2[ek.Name]) != 3 {
		t.Fatalf("GetMany = %v, %v", got2, err)
	}
	s := m.Stats()
	if r := s.Kinds[manager.KindRetrieval]; r.Hits != 1 || r.Misses != 1 || r.Sets != 1 || r.Errors != 1 {
		t.Errorf("retrieval stats = %+v, want 1 hit, 1 miss, 1 set, 1 error (the wrong type)", r)
	}
}

func testManagerGetOrSet(t *testing.T, b manager.Backend) {
	m := newManager(t, b)
	k := m.Keys().MustKey(manager.KindResponse, "prompt")
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (string, error) {
		calls.Add(1)
		<-release
		return "answer", nil
	}
	const callers = 16
	var wg sync.WaitGroup
	results := make(chan string, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := manager.GetOrSet(ctx, m, k, fn)
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	time.Sleep(10 * time.Millisecond) // let the callers pile up; correctness does not depend on it
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != "answer" {
			t.Errorf("GetOrSet = %q, want answer", v)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("fn ran %d times for %d callers, want 1", n, callers)
	}

	// Errors are not cached.
	ek := m.Keys().MustKey(manager.KindResponse, "failing")
	boom := errors.New("boom")
	fails := 0
	for i := range 2 {
		_, err := manager.GetOrSet(ctx, m, ek, func(context.Context) (int, error) { fails++; return 0, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("call %d: %v, want boom", i, err)
		}
	}
	if fails != 2 {
		t.Errorf("a failing fn ran %d times in 2 calls, want 2", fails)
	}
	v, err := manager.GetOrSet(ctx, m, ek, func(context.Context) (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Errorf("GetOrSet after failures = %v, %v", v, err)
	}
}

func testManagerTags(t *testing.T, b manager.Backend) {
	m := newManager(t, b)
	kb := m.Keys()
	k1 := kb.MustKey(manager.KindContext, 1)
	k2 := kb.MustKey(manager.KindContext, 2)
	k3 := kb.MustKey(manager.KindContext, 3)
	for _, c := range []struct {
		k    manager.Key
		tags []string
	}{{k1, []string{"user:1", "doc:9"}}, {k2, []string{"user:2"}}, {k3, nil}} {
		if err := manager.Set(ctx, m, c.k, c.k.Name, manager.WithTags(c.tags...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.InvalidateTag(ctx, "doc:9"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		k     manager.Key
		alive bool
	}{{k1, false}, {k2, true}, {k3, true}} {
		_, err := manager.Get[string](ctx, m, c.k)
		if c.alive != (err == nil) {
			t.Errorf("Get(%s) after InvalidateTag(doc:9): %v, want alive=%v", c.k, err, c.alive)
		}
		if ok, err := m.Exists(ctx, c.k); err != nil || ok != c.alive {
			t.Errorf("Exists(%s) = %v, %v; want %v", c.k, ok, err, c.alive)
		}
	}
	// A Set after the invalidation is visible, tagged again.
	if err := manager.Set(ctx, m, k1, "again", manager.WithTags("doc:9")); err != nil {
		t.Fatal(err)
	}
	if v, err := manager.Get[string](ctx, m, k1); err != nil || v != "again" {
		t.Errorf("Get after re-Set = %q, %v", v, err)
	}
	if err := m.InvalidateTag(ctx, "user:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := manager.Get[string](ctx, m, k2); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("Get(k2) after InvalidateTag(user:2): %v", err)
	}
	// A second manager on the same backend sees the same tags.
	m2 := newManager(t, b)
	if v, err := manager.Get[string](ctx, m2, k1); err != nil || v != "again" {
		t.Errorf("second manager: Get = %q, %v", v, err)
	}
	if err := m2.InvalidateTag(ctx, "doc:9"); err != nil {
		t.Fatal(err)
	}
	if _, err := manager.Get[string](ctx, m, k1); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("Get after another manager's InvalidateTag: %v", err)
	}
}

// testManagerTagsRace checks the two promises tags make under
// concurrency: a value GetOrSet computes while its tag is invalidated is
// stored already invalid (it may have been computed from what the
// invalidation was about), and once InvalidateTag returns no entry tagged
// before it is found, whatever Sets and invalidations raced with it.
func testManagerTagsRace(t *testing.T, b manager.Backend) {
	m := newManager(t, b)
	kb := m.Keys()

	k := kb.MustKey(manager.KindResponse, "computing")
	computing, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		v, err := manager.GetOrSet(ctx, m, k, func(context.Context) (string, error) {
			close(computing)
			<-release
			return "stale", nil
		}, manager.WithTags("doc:1"))
		if err == nil && v != "stale" {
			err = fmt.Errorf("GetOrSet = %q, want its own value", v)
		}
		done <- err
	}()
	<-computing
	if err := m.InvalidateTag(ctx, "doc:1"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("a value computed during InvalidateTag of its tag: Get = %q, %v; want ErrNotFound", v, err)
	}

	const writers, keys = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				if err := manager.Set(ctx, m, kb.MustKey(manager.KindContext, w, i), "v", manager.WithTags("shared", fmt.Sprint("own:", w))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 10 {
			if err := m.InvalidateTag(ctx, "shared"); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := m.InvalidateTag(ctx, "shared"); err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		for i := range keys {
			k := kb.MustKey(manager.KindContext, w, i)
			if v, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrNotFound) {
				t.Fatalf("writer %d key %d after the last InvalidateTag: %q, %v; want ErrNotFound", w, i, v, err)
			}
		}
	}
}

func testManagerTTL(t *testing.T, b manager.Backend) {
	m, err := manager.New(b, &manager.Options{
		Namespace: "test",
		TTLs:      map[manager.Kind]time.Duration{"short": shortTTL, manager.KindResponse: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	kb := m.Keys()
	cases := []struct {
		k     manager.Key
		opts  []manager.SetOption
		alive bool
	}{
		{kb.MustKey("short", 1), nil, false},
		{kb.MustKey("short", 2), []manager.SetOption{manager.WithTTL(0)}, true},
		{kb.MustKey(manager.KindResponse, 3), nil, true}, // overridden to 0: never expires
		{kb.MustKey(manager.KindResponse, 4), []manager.SetOption{manager.WithTTL(shortTTL)}, false},
		{kb.Raw("", "raw"), nil, true}, // DefaultTTL 0
	}
	for _, c := range cases {
		if err := manager.Set(ctx, m, c.k, "v", c.opts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := manager.Set(ctx, m, kb.MustKey("short", 5), "v", manager.WithTTL(-time.Second)); err == nil {
		t.Error("Set with a negative TTL did not fail")
	}
	time.Sleep(expiryWait)
	for _, c := range cases {
		_, err := manager.Get[string](ctx, m, c.k)
		if c.alive != (err == nil) {
			t.Errorf("Get(%s) after %v: %v, want alive=%v", c.k, expiryWait, err, c.alive)
		}
	}
}
