package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/backendtest"
	"github.com/diskcache-go/diskcache/manager/redis"
	"github.com/diskcache-go/diskcache/resp"
)

// serveCache starts what diskcache serve runs, a cache directory served
// over the Redis protocol on a loopback port, and returns its address. It
// stops when t ends.
func serveCache(t testing.TB) string {
	t.Helper()
	c, err := engine.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(sctx, ln, resp.Config{}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return within 30s of its context's end")
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ln.Addr().String()
}

// The Redis backend on our own server passes the suite it passes on Redis:
// start on one box with diskcache serve, move to a Redis Cluster by
// changing the address.
func TestServeConformance(t *testing.T) {
	addr := serveCache(t)
	n := 0
	backendtest.Run(t, func(t *testing.T) manager.Backend {
		n++
		c, err := redis.Dial(addr, &redis.Options{Prefix: fmt.Sprintf("test%d:", n)})
		if err != nil {
			t.Fatalf("dial diskcache serve at %s: %v", addr, err)
		}
		return c
	})
}

// Clear on diskcache serve deletes only the backend's prefix, as on Redis.
func TestServeClearKeepsOtherPrefixes(t *testing.T) {
	addr := serveCache(t)
	var caches []*redis.Cache
	for _, prefix := range []string{"a:", "b:"} {
		c, err := redis.Dial(addr, &redis.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Set(ctx, "k*[x]", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		caches = append(caches, c)
	}
	if err := caches[0].Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := caches[0].Get(ctx, "k*[x]"); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("a after its Clear: %v", err)
	}
	if v, err := caches[1].Get(ctx, "k*[x]"); err != nil || string(v) != "v" {
		t.Errorf("b after a's Clear: %q, %v", v, err)
	}
}
