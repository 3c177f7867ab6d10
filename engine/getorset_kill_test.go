package engine_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/disk"
)

// TestGetOrSetLeaseAcrossOwnerKill: GetOrSet in a forwarding process takes
// its lease with Add; the owner applies the Add and is SIGKILLed before it
// answers. The forwarder takes over, learns that the lease is its own, and
// computes at once: it does not wait out manager.LeaseTTL for a lease
// nobody else holds. The proof is that it gave the lease back (only a
// holder does), within a deadline shorter than LeaseTTL.
func TestGetOrSetLeaseAcrossOwnerKill(t *testing.T) {
	dir := t.TempDir()
	// The owner role of contract_kill_test.go, in a new process of this
	// test binary.
	cmd := exec.Command(os.Args[0], dir, "kill-after", "SetWithOptions")
	cmd.Env = append(os.Environ(), "DISKCACHE_CHILD=owner")
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	if n, err := out.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "ready true") {
		t.Fatalf("owner said %q, %v", buf[:n], err)
	}

	c, err := engine.Open(dir, &engine.Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.IsOwner() {
		t.Fatal("the test process owns the directory; want a forwarder")
	}
	m, err := manager.New(disk.New(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), manager.LeaseTTL*2/3)
	defer cancel()
	calls := 0
	v, err := manager.GetOrSet(ctx, m, m.Keys().MustKey("report", 1), func(context.Context) (string, error) {
		calls++
		return "computed", nil
	})
	if err != nil || v != "computed" || calls != 1 {
		t.Fatalf("GetOrSet = %q, %v after %d calls", v, err, calls)
	}
	if !c.IsOwner() {
		t.Fatal("the forwarder did not take over")
	}
	// The lease key is gone: GetOrSet held it and released it.
	for cur := uint64(0); ; {
		keys, next, err := c.Scan(context.Background(), cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.Contains(k, "#lease:") {
				t.Fatalf("lease %q is still held: GetOrSet did not learn that its Add was applied", k)
			}
		}
		if cur = next; cur == 0 {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("GetOrSet waited for its own lease (%v)", time.Duration(manager.LeaseTTL*2/3))
	}
}
