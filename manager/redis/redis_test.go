package redis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/backendtest"
	"github.com/diskcache-go/diskcache/manager/redis"
)

var ctx = context.Background()

// envAddr names the variable that points the tests at a Redis server,
// such as one .ci/run starts on a loopback port.
const envAddr = "DISKCACHE_TEST_REDIS"

// run tells apart the prefixes of concurrent and repeated test runs, so
// that tests sharing one server never see each other's keys.
var (
	run  = time.Now().UnixNano()
	seq  atomic.Int64
	addr = os.Getenv(envAddr)
)

func dial(t *testing.T) *redis.Cache {
	t.Helper()
	c, _ := dialPrefix(t)
	return c
}

// dialPrefix returns a Cache on a prefix of its own, and the prefix.
func dialPrefix(t *testing.T) (*redis.Cache, string) {
	t.Helper()
	needRedis(t)
	prefix := fmt.Sprintf("diskcache-test:%d:%d:", run, seq.Add(1))
	c, err := redis.Dial(addr, &redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("%s=%s: %v", envAddr, addr, err)
	}
	t.Cleanup(func() {
		// The conformance suite closes c: clear through a client of our own.
		d, err := redis.Dial(addr, &redis.Options{Prefix: prefix})
		if err != nil {
			t.Error(err)
			return
		}
		defer d.Close()
		if err := d.Clear(ctx); err != nil {
			t.Error(err)
		}
	})
	return c, prefix
}

func needRedis(t *testing.T) {
	t.Helper()
	if addr == "" {
		t.Skipf("%s is not set: no Redis server to test against (start one and set, e.g., %s=127.0.0.1:6399)", envAddr, envAddr)
	}
}

func TestConformance(t *testing.T) {
	needRedis(t)
	backendtest.Run(t, func(t *testing.T) manager.Backend { return dial(t) })
}

// Clear deletes only the keys under the backend's prefix.
func TestClearKeepsOtherPrefixes(t *testing.T) {
	a, b := dial(t), dial(t)
	defer a.Close()
	defer b.Close()
	for _, c := range []*redis.Cache{a, b} {
		if err := c.Set(ctx, "k*[x]", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "k*[x]"); !errors.Is(err, manager.ErrNotFound) {
		t.Errorf("a after its Clear: %v", err)
	}
	if v, err := b.Get(ctx, "k*[x]"); err != nil || string(v) != "v" {
		t.Errorf("b after a's Clear: %q, %v", v, err)
	}
}
