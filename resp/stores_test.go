package resp_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/resp"
	"github.com/diskcache-go/diskcache/resp/storetest"
)

// storeKind names a Store the command tests serve. This file is in the
// external test package because engine imports resp: resp itself cannot
// import engine, its tests can.
type storeKind string

const (
	// memoryStore is resp's own in-memory store (storetest.Memory).
	memoryStore storeKind = "memory"
	// ownerStore is an engine Cache that owns its directory, served with
	// Cache.Serve as `diskcache serve` serves it.
	ownerStore storeKind = "owner"
	// forwarderStore is an engine Cache that forwards every call to
	// another Cache of the directory (a second Open in this process: flock
	// locks are per open file), served the same way.
	forwarderStore storeKind = "forwarder"
)

// storeKinds are the stores every case of commandCases runs against.
var storeKinds = []storeKind{memoryStore, ownerStore, forwarderStore}

// testClock is the clock of a served store: the system clock until a test
// sets another. Memory and engine both read it, so a case moves time the
// same way on every store.
type testClock struct {
	mu  sync.Mutex
	now func() time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now()
}

func (c *testClock) set(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// serveStore starts a server of a fresh store of kind with cfg on a
// loopback port; it stops, and the store closes, when the test ends.
func serveStore(t testing.TB, kind storeKind, cfg resp.Config) *testServer {
	t.Helper()
	clock := &testClock{now: time.Now}
	if kind == memoryStore {
		st := storetest.New()
		st.Now = clock.Now
		ts := startServerOn(t, st, cfg)
		ts.clock = clock
		ts.elsewhere = func(ctx context.Context, key string, value []byte) error {
			_, err := st.Set(ctx, key, value, resp.SetOptions{})
			return err
		}
		return ts
	}
	dir := filepath.Join(t.TempDir(), "cache")
	opts := &engine.Options{SizeLimit: 256 << 20, Clock: clock}
	open := func() *engine.Cache {
		t.Helper()
		c, err := engine.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The owner is opened first and closed last (cleanups run in reverse);
	// the second Cache forwards to it.
	owner := open()
	t.Cleanup(func() {
		if err := owner.Close(); err != nil {
			t.Errorf("Close of the owner of %s: %v", dir, err)
		}
	})
	fwd := open()
	t.Cleanup(func() {
		if err := fwd.Close(); err != nil {
			t.Errorf("Close of a forwarder of %s: %v", dir, err)
		}
	})
	if !owner.IsOwner() || fwd.IsOwner() {
		t.Fatalf("want the first Cache to own %s and the second to forward (owner %v, second %v)", dir, owner.IsOwner(), fwd.IsOwner())
	}
	served, other := owner, fwd
	if kind == forwarderStore {
		served, other = fwd, owner
	}
	ts := serveCache(t, served, cfg)
	ts.kind, ts.clock = kind, clock
	// Another process of the directory is another Cache of it: the
	// owner's own calls when serving a forwarder, a forwarder's otherwise.
	ts.elsewhere = func(ctx context.Context, key string, value []byte) error {
		return other.Set(ctx, key, value, 0)
	}
	return ts
}

// serveCache serves c with Cache.Serve on a loopback port until the test
// ends, as `diskcache serve` does.
func serveCache(t testing.TB, c *engine.Cache, cfg resp.Config) *testServer {
	t.Helper()
	addr, stop := serveTCP(t, func(ctx context.Context, ln net.Listener) error { return c.Serve(ctx, ln, cfg) })
	return &testServer{addr: addr, stop: stop}
}
