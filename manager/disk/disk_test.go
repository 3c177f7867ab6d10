package disk_test

import (
	"context"
	"errors"
	"testing"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/backendtest"
	"github.com/diskcache-go/diskcache/manager/disk"
)

// *engine.Cache has the Backend method set; disk.Cache adds only the
// error translation (see the package comment).
var _ manager.Backend = (*engine.Cache)(nil)

var ctx = context.Background()

// testOptions keep Pebble small: tests open many stores on a 2-core box.
func testOptions() *engine.Options {
	return &engine.Options{SizeLimit: 64 << 20, CacheSize: 1 << 20}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		c, err := disk.Open(t.TempDir(), testOptions())
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func TestErrorsMatchBothPackages(t *testing.T) {
	c, err := disk.Open(t.TempDir(), &engine.Options{SizeLimit: 64 << 20, MaxValueSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	_, getErr := c.Get(ctx, "missing")
	setErr := c.Set(ctx, "k", make([]byte, 17), 0)
	c.Close()
	_, closedErr := c.Get(ctx, "k")
	for _, tc := range []struct {
		name        string
		err         error
		engine, mgr error
	}{
		{"miss", getErr, engine.ErrNotFound, manager.ErrNotFound},
		{"too large", setErr, engine.ErrValueTooLarge, manager.ErrValueTooLarge},
		{"closed", closedErr, engine.ErrClosed, manager.ErrClosed},
	} {
		if !errors.Is(tc.err, tc.engine) || !errors.Is(tc.err, tc.mgr) {
			t.Errorf("%s: %v matches engine's sentinel: %v, manager's: %v",
				tc.name, tc.err, errors.Is(tc.err, tc.engine), errors.Is(tc.err, tc.mgr))
		}
	}
}

// Values and tags persist: a manager on a reopened directory reads what
// the last one wrote, and an invalidation made before the restart holds.
func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	open := func() *manager.Manager {
		c, err := disk.Open(dir, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		m, err := manager.New(c, &manager.Options{Namespace: "app"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := open()
	kb := m.Keys()
	keep, drop := kb.MustKey(manager.KindEmbedding, "keep"), kb.MustKey(manager.KindEmbedding, "drop")
	if err := manager.Set(ctx, m, keep, []float32{1, 2}, manager.WithTags("model:a")); err != nil {
		t.Fatal(err)
	}
	if err := manager.Set(ctx, m, drop, []float32{3}, manager.WithTags("model:b")); err != nil {
		t.Fatal(err)
	}
	if err := m.InvalidateTag(ctx, "model:b"); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m = open()
	defer m.Close()
	if v, err := manager.Get[[]float32](ctx, m, keep); err != nil || len(v) != 2 {
		t.Errorf("after reopen: Get(keep) = %v, %v", v, err)
	}
	if _, err := manager.Get[[]float32](ctx, m, drop); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("after reopen: Get(drop) = %v, want ErrNotFound", err)
	}
}

// TestBareEngineIsABackend: a manager on an *engine.Cache itself, without
// this package's wrapper, sees misses as misses.
func TestBareEngineIsABackend(t *testing.T) {
	c, err := engine.Open(t.TempDir(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(c, &manager.Options{Namespace: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	k := m.Keys().MustKey(manager.KindResponse, "q")
	if _, err := manager.Get[string](ctx, m, k); !errors.Is(err, manager.ErrNotFound) {
		t.Fatalf("Get of a missing key through a bare engine: %v", err)
	}
	if err := manager.Set(ctx, m, k, "answer"); err != nil {
		t.Fatal(err)
	}
	if v, err := manager.Get[string](ctx, m, k); err != nil || v != "answer" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	got, err := manager.GetOrSet(ctx, m, m.Keys().MustKey(manager.KindResponse, "other"), func(context.Context) (string, error) { return "computed", nil })
	if err != nil || got != "computed" {
		t.Fatalf("GetOrSet = %q, %v", got, err)
	}
}
