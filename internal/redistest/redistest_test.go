package redistest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/diskcache-go/diskcache/internal/redistest"
)

func TestRedis(t *testing.T) {
	addr := redistest.Redis(t)
	if _, err := redistest.Do(addr, "SET", "k", "v\r\nw"); err != nil {
		t.Fatal(err)
	}
	if v, err := redistest.Do(addr, "GET", "k"); err != nil || v != "v\r\nw" {
		t.Fatalf("GET: %q, %v", v, err)
	}
	if _, err := redistest.Do(addr, "NOSUCH"); err == nil {
		t.Fatal("an unknown command: no error")
	}
}

func TestServe(t *testing.T) {
	addr := redistest.Serve(t, nil)
	if v, err := redistest.Do(addr, "PING"); err != nil || v != "PONG" {
		t.Fatalf("PING: %q, %v", v, err)
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six redis-servers")
	}
	c, err := redistest.StartCluster(t.TempDir(), 3, 1, "--cluster-node-timeout", "2000")
	if errors.Is(err, redistest.ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(c.Nodes))
	}
	info, err := redistest.Do(c.Nodes[5].Addr, "CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_known_nodes:6", "cluster_size:3"} {
		if !strings.Contains(info, want) {
			t.Errorf("CLUSTER INFO lacks %q:\n%s", want, info)
		}
	}
	// A key lives on one master: the others redirect.
	var moved int
	for _, n := range c.Nodes[:3] {
		if _, err := redistest.Do(n.Addr, "SET", "k", "v"); err != nil {
			if !strings.HasPrefix(err.Error(), "MOVED ") {
				t.Fatalf("SET on %s: %v", n.Addr, err)
			}
			moved++
		}
	}
	if moved != 2 {
		t.Errorf("%d of 3 masters answered MOVED, want 2", moved)
	}
}
