package manager_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/memory"
)

var ctx = context.Background()

func newMemory(t *testing.T) *memory.Cache {
	t.Helper()
	c, err := memory.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newManager returns a manager on b that logs nowhere unless o says.
func newManager(t *testing.T, b manager.Backend, o *manager.Options) *manager.Manager {
	t.Helper()
	var oo manager.Options
	if o != nil {
		oo = *o
	}
	if oo.Logger == nil {
		oo.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := manager.New(b, &oo)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// recorder is a Backend that remembers the TTL of each Set and can be told
// to fail.
type recorder struct {
	manager.Backend
	mu       sync.Mutex
	ttls     map[string]time.Duration
	failGet  error
	failSet  error
	getCalls atomic.Int32
}

func (r *recorder) Get(ctx context.Context, key string) ([]byte, error) {
	r.getCalls.Add(1)
	if r.failGet != nil {
		return nil, r.failGet
	}
	return r.Backend.Get(ctx, key)
}

func (r *recorder) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if r.failSet != nil {
		return r.failSet
	}
	r.mu.Lock()
	if r.ttls == nil {
		r.ttls = map[string]time.Duration{}
	}
	r.ttls[key] = ttl
	r.mu.Unlock()
	return r.Backend.Set(ctx, key, v, ttl)
}

func (r *recorder) ttl(key string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ttls[key]
}

func TestTTLs(t *testing.T) {
	rec := &recorder{Backend: newMemory(t)}
	m := newManager(t, rec, &manager.Options{
		Namespace:  "app",
		TTLs:       map[manager.Kind]time.Duration{manager.KindContext: time.Minute, "page": 5 * time.Minute, manager.KindResponse: 0},
		DefaultTTL: 7 * time.Second,
	})
	kb := m.Keys()
	for _, tc := range []struct {
		name string
		key  manager.Key
		opts []manager.SetOption
		want time.Duration
	}{
		{"embedding default", kb.MustKey(manager.KindEmbedding, 1), nil, 24 * time.Hour},
		{"retrieval default", kb.MustKey(manager.KindRetrieval, 1), nil, time.Hour},
		{"context overridden", kb.MustKey(manager.KindContext, 1), nil, time.Minute},
		{"response overridden to never", kb.MustKey(manager.KindResponse, 1), nil, 0},
		{"kind of the caller's", kb.MustKey("page", 1), nil, 5 * time.Minute},
		{"unknown kind", kb.MustKey("other", 1), nil, 7 * time.Second},
		{"raw key without kind", kb.Raw("", "raw"), nil, 7 * time.Second},
		{"per call", kb.MustKey(manager.KindEmbedding, 2), []manager.SetOption{manager.WithTTL(time.Second)}, time.Second},
		{"per call zero is never", kb.MustKey(manager.KindEmbedding, 3), []manager.SetOption{manager.WithTTL(0)}, 0},
		{"last option wins", kb.MustKey(manager.KindEmbedding, 4), []manager.SetOption{manager.WithTTL(time.Second), manager.WithTTL(2 * time.Second)}, 2 * time.Second},
	} {
		if err := manager.Set(ctx, m, tc.key, "v", tc.opts...); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := rec.ttl(tc.key.Name); got != tc.want {
			t.Errorf("%s: backend got TTL %v, want %v", tc.name, got, tc.want)
		}
		if _, err := manager.GetOrSet(ctx, m, manager.Key{Kind: tc.key.Kind, Name: tc.key.Name + "/gos"},
			func(context.Context) (string, error) { return "v", nil }, tc.opts...); err != nil {
			t.Fatal(err)
		}
		if got := rec.ttl(tc.key.Name + "/gos"); got != tc.want {
			t.Errorf("%s: GetOrSet stored TTL %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := m.TTL(manager.KindEmbedding); got != 24*time.Hour {
		t.Errorf("TTL(embedding) = %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	b := newMemory(t)
	for _, tc := range []struct {
		name string
		b    manager.Backend
		o    manager.Options
	}{
		{"nil backend", nil, manager.Options{}},
		{"negative kind TTL", b, manager.Options{TTLs: map[manager.Kind]time.Duration{"k": -1}}},
		{"bad kind", b, manager.Options{TTLs: map[manager.Kind]time.Duration{"a:b": 1}}},
		{"negative DefaultTTL", b, manager.Options{DefaultTTL: -1}},
		{"negative MaxValueSize", b, manager.Options{MaxValueSize: -1}},
		{"unknown compression", b, manager.Options{Compress: true, Compression: codec.Compression(99)}},
	} {
		if _, err := manager.New(tc.b, &tc.o); err == nil {
			t.Errorf("%s: New did not fail", tc.name)
		}
	}
	if _, err := manager.New(b, nil); err != nil {
		t.Errorf("New with nil options: %v", err)
	}
}

func TestSetErrors(t *testing.T) {
	m := newManager(t, newMemory(t), nil)
	k := m.Keys().MustKey("k", 1)
	for _, tc := range []struct {
		name string
		v    any
		opts []manager.SetOption
	}{
		{"negative TTL", "v", []manager.SetOption{manager.WithTTL(-time.Second)}},
		{"empty tag", "v", []manager.SetOption{manager.WithTags("ok", "")}},
		{"unencodable value", make(chan int), nil},
	} {
		if err := manager.Set(ctx, m, k, tc.v, tc.opts...); err == nil {
			t.Errorf("%s: Set did not fail", tc.name)
		}
	}
	if err := m.InvalidateTag(ctx, ""); err == nil {
		t.Error("InvalidateTag of the empty tag did not fail")
	}
}

func TestCompressOption(t *testing.T) {
	b := newMemory(t)
	m := newManager(t, b, &manager.Options{Compress: true, Compression: codec.CompressionZstd})
	k := m.Keys().MustKey(manager.KindResponse, "long")
	long := strings.Repeat("the same sentence again. ", 400)
	if err := manager.Set(ctx, m, k, long); err != nil {
		t.Fatal(err)
	}
	raw, err := b.Get(ctx, k.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) >= len(long)/4 {
		t.Errorf("stored %d bytes for %d of repetitive text", len(raw), len(long))
	}
	// A manager without compression reads it all the same.
	plain := newManager(t, b, nil)
	if got, err := manager.Get[string](ctx, plain, k); err != nil || got != long {
		t.Errorf("Get through a manager without compression: %d bytes, %v", len(got), err)
	}
}

func TestCorruptStoredValue(t *testing.T) {
	b := newMemory(t)
	m := newManager(t, b, nil)
	k := m.Keys().Raw("", "foreign")
	if err := b.Set(ctx, k.Name, []byte("written by someone else"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrCorrupt) {
		t.Errorf("Get of a foreign value: %v, want ErrCorrupt", err)
	}
	// GetOrSet heals it.
	v, err := manager.GetOrSet(ctx, m, k, func(context.Context) (string, error) { return "mine", nil })
	if err != nil || v != "mine" {
		t.Fatalf("GetOrSet over a foreign value = %q, %v", v, err)
	}
	if v, err := manager.Get[string](ctx, m, k); err != nil || v != "mine" {
		t.Errorf("after GetOrSet: %q, %v", v, err)
	}
}

func TestGetOrSetWrongTypeRecomputes(t *testing.T) {
	m := newManager(t, newMemory(t), nil)
	k := m.Keys().MustKey("k", 1)
	if err := manager.Set(ctx, m, k, "a string"); err != nil {
		t.Fatal(err)
	}
	v, err := manager.GetOrSet(ctx, m, k, func(context.Context) (int, error) { return 42, nil })
	if err != nil || v != 42 {
		t.Fatalf("GetOrSet[int] over a string = %v, %v", v, err)
	}
	if v, err := manager.Get[int](ctx, m, k); err != nil || v != 42 {
		t.Errorf("after: %v, %v", v, err)
	}
}

// The cache fails open: a backend that is down costs the cache, not the
// caller's value.
func TestGetOrSetFailsOpen(t *testing.T) {
	down := errors.New("backend down")
	rec := &recorder{Backend: newMemory(t), failGet: down, failSet: down}
	var logs bytes.Buffer
	m := newManager(t, rec, &manager.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	k := m.Keys().MustKey("k", 1)
	v, err := manager.GetOrSet(ctx, m, k, func(context.Context) (string, error) { return "computed", nil })
	if err != nil || v != "computed" {
		t.Fatalf("GetOrSet with the backend down = %q, %v", v, err)
	}
	if !strings.Contains(logs.String(), "could not store") {
		t.Errorf("the failed store was not logged: %q", logs.String())
	}
	if s := m.Stats(); s.Errors < 2 {
		t.Errorf("stats after a failed read and a failed store: %+v", s.Counters)
	}
	if _, err := manager.Get[string](ctx, m, k); !errors.Is(err, down) {
		t.Errorf("Get with the backend down: %v", err)
	}
}

// One caller giving up must not fail the others, nor stop the computation.
func TestGetOrSetLeaderCancel(t *testing.T) {
	m := newManager(t, newMemory(t), nil)
	k := m.Keys().MustKey("k", 1)
	started, release := make(chan struct{}), make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		close(started)
		<-release
		return "v", ctx.Err()
	}
	lctx, cancel := context.WithCancel(ctx)
	leaderErr := make(chan error)
	go func() {
		_, err := manager.GetOrSet(lctx, m, k, fn)
		leaderErr <- err
	}()
	<-started
	waiter := make(chan string)
	go func() {
		v, err := manager.GetOrSet(ctx, m, k, func(context.Context) (string, error) {
			return "", errors.New("the waiter's fn ran")
		})
		if err != nil {
			t.Error(err)
		}
		waiter <- v
	}()
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v, want context.Canceled", err)
	}
	close(release)
	if v := <-waiter; v != "v" {
		t.Errorf("waiter got %q", v)
	}
}

func TestGetOrSetPanic(t *testing.T) {
	m := newManager(t, newMemory(t), nil)
	k := m.Keys().MustKey("k", 1)
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want boom", r)
		}
		// The panic was not cached.
		v, err := manager.GetOrSet(ctx, m, k, func(context.Context) (int, error) { return 1, nil })
		if err != nil || v != 1 {
			t.Errorf("after a panic: %v, %v", v, err)
		}
	}()
	manager.GetOrSet(ctx, m, k, func(context.Context) (int, error) { panic("boom") })
}

func TestStatsByKind(t *testing.T) {
	m := newManager(t, newMemory(t), nil)
	kb := m.Keys()
	e, r := kb.MustKey(manager.KindEmbedding, 1), kb.MustKey(manager.KindResponse, 1)
	manager.Set(ctx, m, e, []float32{1})
	manager.Get[[]float32](ctx, m, e)
	manager.Get[[]float32](ctx, m, e)
	manager.Get[string](ctx, m, r)
	manager.GetOrSet(ctx, m, r, func(context.Context) (string, error) { return "x", nil })
	manager.Get[int](ctx, m, r) // wrong type
	m.Delete(ctx, r)
	s := m.Stats()
	want := map[manager.Kind]manager.Counters{
		manager.KindEmbedding: {Hits: 2, Sets: 1},
		manager.KindResponse:  {Misses: 2, Sets: 1, Deletes: 1, Errors: 1},
	}
	for k, w := range want {
		if s.Kinds[k] != w {
			t.Errorf("%s: %+v, want %+v", k, s.Kinds[k], w)
		}
	}
	if s.Hits != 2 || s.Misses != 2 || s.Sets != 2 {
		t.Errorf("total: %+v", s.Counters)
	}
	if r := s.Kinds[manager.KindEmbedding].HitRatio(); r != 1 {
		t.Errorf("hit ratio %v", r)
	}
}

// A tag version key that is lost (evicted, deleted) invalidates its
// entries rather than reviving them.
func TestLostTagVersionInvalidates(t *testing.T) {
	b := newMemory(t)
	m := newManager(t, b, &manager.Options{Namespace: "app"})
	k := m.Keys().MustKey("k", 1)
	if err := manager.Set(ctx, m, k, "v", manager.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "app:#tag:t"); err != nil {
		t.Fatal(err)
	}
	if _, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("Get after the tag's version was lost: %v", err)
	}
	if err := manager.Set(ctx, m, k, "v2", manager.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	if v, err := manager.Get[string](ctx, m, k); err != nil || v != "v2" {
		t.Errorf("Get after re-Set: %q, %v", v, err)
	}
}

// pausingSet blocks the Set of one key until released: the window between
// a tagged Set reading its tags' versions and storing the entry.
type pausingSet struct {
	manager.Backend
	key              string
	reached, release chan struct{}
}

func (p *pausingSet) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if key == p.key {
		close(p.reached)
		<-p.release
	}
	return p.Backend.Set(ctx, key, v, ttl)
}

// A value computed or stored across an invalidation of one of its tags
// never survives it: it carries the version from before.
func TestWriteRacingInvalidationMisses(t *testing.T) {
	for _, tc := range []struct {
		name string
		// write stores "stale" under k tagged t; it calls mid() at the
		// point where the invalidation races it.
		write func(m *manager.Manager, k manager.Key, mid func()) error
		pause bool // mid is the backend's pause in Set
	}{
		{"Set stores after the invalidation", func(m *manager.Manager, k manager.Key, _ func()) error {
			return manager.Set(ctx, m, k, "stale", manager.WithTags("t"))
		}, true},
		{"GetOrSet computes during the invalidation", func(m *manager.Manager, k manager.Key, mid func()) error {
			_, err := manager.GetOrSet(ctx, m, k, func(context.Context) (string, error) {
				mid()
				return "stale", nil
			}, manager.WithTags("t"))
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := &pausingSet{Backend: newMemory(t), reached: make(chan struct{}), release: make(chan struct{})}
			m := newManager(t, ps, nil)
			k := m.Keys().MustKey("k", 1)
			if tc.pause {
				ps.key = k.Name
			}
			if err := m.InvalidateTag(ctx, "t"); err != nil { // the tag exists
				t.Fatal(err)
			}
			mid := func() {
				close(ps.reached)
				<-ps.release
			}
			done := make(chan error)
			go func() { done <- tc.write(m, k, mid) }()
			<-ps.reached
			if err := m.InvalidateTag(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			close(ps.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if v, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrNotFound) {
				t.Errorf("Get after the racing invalidation = %q, %v; want ErrNotFound", v, err)
			}
		})
	}
}

func TestManagerExistsAndDelete(t *testing.T) {
	m := newManager(t, newMemory(t), nil)
	k := m.Keys().MustKey("k", 1)
	for _, step := range []struct {
		do   func() error
		want bool
	}{
		{func() error { return nil }, false},
		{func() error { return manager.Set(ctx, m, k, 1) }, true},
		{func() error { return m.Delete(ctx, k) }, false},
		{func() error { return m.Delete(ctx, k) }, false},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		if ok, err := m.Exists(ctx, k); err != nil || ok != step.want {
			t.Errorf("Exists = %v, %v; want %v", ok, err, step.want)
		}
	}
}
