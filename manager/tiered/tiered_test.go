package tiered_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/backendtest"
	"github.com/diskcache-go/diskcache/manager/disk"
	"github.com/diskcache-go/diskcache/manager/memory"
	"github.com/diskcache-go/diskcache/manager/tiered"
	"github.com/diskcache-go/diskcache/ttl"
)

var ctx = context.Background()

func newMemory(t *testing.T, clock ttl.Clock) *memory.Cache {
	t.Helper()
	m, err := memory.New(&memory.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConformance(t *testing.T) {
	t.Run("memory over disk", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) manager.Backend {
			back, err := disk.Open(t.TempDir(), &engine.Options{SizeLimit: 64 << 20, CacheSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return tiered.New(newMemory(t, nil), back, nil)
		})
	})
	t.Run("memory over memory without TTLGetter", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) manager.Backend {
			return tiered.New(newMemory(t, nil), plain{newMemory(t, nil)}, nil)
		})
	})
}

// plain hides every optional interface of its Backend.
type plain struct{ manager.Backend }

func TestFrontTTL(t *testing.T) {
	clock := ttl.NewManualClock(time.Unix(1_700_000_000, 0))
	for _, tc := range []struct {
		name     string
		frontTTL time.Duration
		backTTL  time.Duration
		want     time.Duration // front copy's time to live after a fill
	}{
		{"back's remaining TTL", time.Hour, 10 * time.Second, 10 * time.Second},
		{"front cap", time.Minute, time.Hour, time.Minute},
		{"front cap on a key that never expires", time.Minute, 0, time.Minute},
		{"default cap", 0, 0, tiered.DefaultFrontTTL},
		{"no cap", -1, 0, 0},
		{"no cap, back's TTL", -1, time.Hour, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front, back := newMemory(t, clock), newMemory(t, clock)
			c := tiered.New(front, back, &tiered.Options{FrontTTL: tc.frontTTL})
			defer c.Close()
			if err := back.Set(ctx, "k", []byte("v"), tc.backTTL); err != nil {
				t.Fatal(err)
			}
			if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
				t.Fatalf("Get = %q, %v", v, err)
			}
			_, left, err := front.GetWithTTL(ctx, "k")
			if err != nil || left != tc.want {
				t.Errorf("front copy: %v left, %v; want %v", left, err, tc.want)
			}
			// Through Set as well.
			if err := c.Set(ctx, "s", []byte("v"), tc.backTTL); err != nil {
				t.Fatal(err)
			}
			if _, left, err := front.GetWithTTL(ctx, "s"); err != nil || left != tc.want {
				t.Errorf("front copy after Set: %v left, %v; want %v", left, err, tc.want)
			}
		})
	}
}

// Two caches over one back stand for two processes: a write in one shows
// in the other once the other's front copy expires, and no later.
func TestOtherProcessWritesShowAfterFrontTTL(t *testing.T) {
	clock := ttl.NewManualClock(time.Unix(1_700_000_000, 0))
	back := newMemory(t, clock)
	a := tiered.New(newMemory(t, clock), back, &tiered.Options{FrontTTL: time.Minute})
	b := tiered.New(newMemory(t, clock), back, &tiered.Options{FrontTTL: time.Minute})
	defer a.Front().Close()
	defer b.Close()
	if err := a.Set(ctx, "k", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ctx, "k", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		advance time.Duration
		want    string
	}{{0, "old"}, {time.Minute - time.Nanosecond, "old"}, {time.Nanosecond, "new"}} {
		clock.Advance(s.advance)
		if v, err := a.Get(ctx, "k"); err != nil || string(v) != s.want {
			t.Errorf("after %v: a sees %q, %v; want %q", s.advance, v, err, s.want)
		}
	}
}

// gated is a back whose Get reads the value, then waits for a signal
// before returning it: the window in which a write can overtake a fill.
type gated struct {
	manager.Backend
	read, release chan struct{}
}

func (g *gated) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := g.Backend.Get(ctx, key)
	g.read <- struct{}{}
	<-g.release
	return v, err
}

func TestWriteDuringFillLeavesNoStaleCopy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(c *tiered.Cache) error
		want  string // what Get returns after the write; "" for a miss
	}{
		{"Delete", func(c *tiered.Cache) error { return c.Delete(ctx, "k") }, ""},
		{"Set", func(c *tiered.Cache) error { return c.Set(ctx, "k", []byte("new"), 0) }, "new"},
		{"Clear", func(c *tiered.Cache) error { return c.Clear(ctx) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front, mem := newMemory(t, nil), newMemory(t, nil)
			back := &gated{Backend: plain{mem}, read: make(chan struct{}), release: make(chan struct{})}
			c := tiered.New(front, back, nil)
			defer c.Close()
			if err := mem.Set(ctx, "k", []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			done := make(chan []byte)
			go func() {
				v, _ := c.Get(ctx, "k")
				done <- v
			}()
			<-back.read // the reader holds "old"
			if err := tc.write(c); err != nil {
				t.Fatal(err)
			}
			close(back.release)
			if v := <-done; string(v) != "old" {
				t.Fatalf("the racing Get returned %q, want old", v)
			}
			if v, err := front.Get(ctx, "k"); err == nil && string(v) == "old" {
				t.Fatalf("the front kept the stale copy %q after %s", v, tc.name)
			}
			// gated blocks every Get now released; the next read hits the
			// front (Set) or passes through the closed gate.
			go func() {
				for range back.read {
				}
			}()
			v, err := c.Get(ctx, "k")
			close(back.read) // no Get follows: ends the drain
			if string(v) != tc.want || (tc.want == "" && !errors.Is(err, manager.ErrNotFound)) {
				t.Errorf("Get after %s = %q, %v; want %q", tc.name, v, err, tc.want)
			}
		})
	}
}

// failing is a back whose writes fail.
type failing struct{ manager.Backend }

var errBack = errors.New("back is down")

func (failing) Set(context.Context, string, []byte, time.Duration) error { return errBack }

func TestFailedBackWriteLeavesNoFrontCopy(t *testing.T) {
	front := newMemory(t, nil)
	c := tiered.New(front, failing{newMemory(t, nil)}, nil)
	defer c.Close()
	if err := front.Set(ctx, "k", []byte("old"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", []byte("new"), 0); !errors.Is(err, errBack) {
		t.Fatalf("Set: %v, want the back's error", err)
	}
	if _, err := front.Get(ctx, "k"); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("front after a failed write: %v, want no copy", err)
	}
}
