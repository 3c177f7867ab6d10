package redis_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/diskcache-go/diskcache/internal/redistest"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/backendtest"
	"github.com/diskcache-go/diskcache/manager/redis"
)

// The Redis backend on our own server passes the suite it passes on Redis:
// start on one box with diskcache serve, move to a Redis Cluster by
// changing the address.
func TestServeConformance(t *testing.T) {
	addr := redistest.Serve(t, nil)
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
	addr := redistest.Serve(t, nil)
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
