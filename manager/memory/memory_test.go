package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/backendtest"
	"github.com/diskcache-go/diskcache/manager/memory"
	"github.com/diskcache-go/diskcache/ttl"
)

var ctx = context.Background()

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		c, err := memory.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func TestExpiryWithManualClock(t *testing.T) {
	clock := ttl.NewManualClock(time.Unix(1_700_000_000, 0))
	c, err := memory.New(&memory.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		key string
		ttl time.Duration
	}{{"a", time.Minute}, {"b", time.Hour}, {"never", 0}} {
		if err := c.Set(ctx, tc.key, []byte(tc.key), tc.ttl); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		advance time.Duration
		alive   map[string]bool
		leftB   time.Duration
	}{
		{0, map[string]bool{"a": true, "b": true, "never": true}, time.Hour},
		{time.Minute - time.Nanosecond, map[string]bool{"a": true, "b": true, "never": true}, 59*time.Minute + time.Nanosecond},
		{time.Nanosecond, map[string]bool{"a": false, "b": true, "never": true}, 59 * time.Minute},
		{59 * time.Minute, map[string]bool{"a": false, "b": false, "never": true}, 0},
		{1000 * time.Hour, map[string]bool{"a": false, "b": false, "never": true}, 0},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		for key, alive := range s.alive {
			_, left, err := c.GetWithTTL(ctx, key)
			if alive != (err == nil) {
				t.Errorf("step %d: Get(%s): %v, want alive=%v", i, key, err, alive)
			}
			if ok, _ := c.Exists(ctx, key); ok != alive {
				t.Errorf("step %d: Exists(%s) = %v", i, key, ok)
			}
			if key == "b" && alive && left != s.leftB {
				t.Errorf("step %d: b has %v left, want %v", i, left, s.leftB)
			}
		}
	}
}

func TestBounded(t *testing.T) {
	const maxBytes = 1 << 20
	c, err := memory.New(&memory.Options{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	value := make([]byte, 1000)
	for i := range 10_000 { // ~10 MiB written into 1 MiB
		if err := c.Set(ctx, fmt.Sprint("k", i), value, 0); err != nil {
			t.Fatal(err)
		}
	}
	// otter evicts in a maintenance pass that reads and writes schedule
	// in the background: wait for it, without assuming how long it takes.
	for deadline := time.Now().Add(10 * time.Second); c.Bytes() > maxBytes && time.Now().Before(deadline); {
		c.Get(ctx, "k0")
		time.Sleep(time.Millisecond)
	}
	// Len is otter's estimate and may count entries it is still evicting;
	// the weight is what the bound is on.
	if b := c.Bytes(); b > maxBytes || b < maxBytes/2 {
		t.Errorf("entries weigh %d bytes in a cache of %d", b, maxBytes)
	}
}

func TestValueTooLarge(t *testing.T) {
	c, err := memory.New(&memory.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		size int
		ok   bool
	}{{64 << 10, true}, {64<<10 + 1, false}} {
		err := c.Set(ctx, "k", make([]byte, tc.size), 0)
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, manager.ErrValueTooLarge)) {
			t.Errorf("Set of %d bytes in a 1 MiB cache: %v, want ok=%v", tc.size, err, tc.ok)
		}
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []memory.Options{{MaxBytes: -1}, {MaxValueSize: -1}} {
		if _, err := memory.New(&o); err == nil {
			t.Errorf("New(%+v) did not fail", o)
		}
	}
}
