package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The client smoke tests run real client libraries, as a new user would,
// against `diskcache serve`: redis-py (Debian's python3-redis) and ioredis
// (from npm; .ci/run installs it into a folder of its own and names it in
// DISKCACHE_TEST_NODE_MODULES). Each skips when its library is missing.

func TestRedisPySmoke(t *testing.T) {
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command(py, "-c", "import redis").Run(); err != nil {
		t.Skip("redis-py is not installed for /usr/bin/python3 (apt-get install python3-redis)")
	}
	runClient(t, py, filepath.Join("testdata", "clients", "redis_py.py"))
}

func TestIORedisSmoke(t *testing.T) {
	mods := os.Getenv("DISKCACHE_TEST_NODE_MODULES")
	if mods == "" {
		t.Skip("DISKCACHE_TEST_NODE_MODULES is not set (a node_modules folder with ioredis; .ci/run sets it)")
	}
	if _, err := os.Stat(filepath.Join(mods, "ioredis")); err != nil {
		t.Fatalf("DISKCACHE_TEST_NODE_MODULES=%s has no ioredis: %v", mods, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("DISKCACHE_TEST_NODE_MODULES is set but node is not on PATH")
	}
	runClient(t, node, filepath.Join("testdata", "clients", "ioredis.js"), "NODE_PATH="+mods)
}

// runClient serves a fresh directory and runs bin script HOST PORT.
func runClient(t *testing.T, bin, script string, env ...string) {
	t.Helper()
	p := startServe(t, "--dir", t.TempDir(), "--size-limit", "256MiB")
	host, port, _ := net.SplitHostPort(p.addr)
	cmd := exec.Command(bin, script, host, port)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", filepath.Base(script), out)
	if err != nil {
		t.Fatalf("%s failed: %v", filepath.Base(script), err)
	}
}
