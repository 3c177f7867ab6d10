package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/diskcache-go/diskcache/resp"
	"github.com/diskcache-go/diskcache/resp/storetest"
)

// needTools skips the test unless the Redis command-line tools are on PATH.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"redis-cli", "redis-benchmark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH; skipping the end-to-end script (on Debian: apt-get install redis-tools)", tool)
		}
	}
}

// runScript runs testdata/e2e.sh against a server on addr; with -short,
// without its redis-benchmark run.
func runScript(t *testing.T, addr string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("bash", filepath.Join("testdata", "e2e.sh"))
	cmd.Env = append(os.Environ(), "HOST="+host, "PORT="+port)
	if testing.Short() {
		cmd.Env = append(cmd.Env, "BENCH=0")
	}
	out, err := cmd.CombinedOutput()
	t.Logf("e2e.sh:\n%s", out)
	if err != nil {
		t.Fatalf("e2e.sh failed: %v", err)
	}
}

// TestScriptOnMemoryStore runs the end-to-end script against the shared
// handler on an in-memory store: the protocol as redis-cli and
// redis-benchmark see it, whatever the engine.
func TestScriptOnMemoryStore(t *testing.T) {
	needTools(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- resp.NewServer(storetest.New(), resp.Config{}).Serve(ctx, ln) }()
	runScript(t, ln.Addr().String())
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// serveProcess is `diskcache serve` running as a child process (this test
// binary, standing in for diskcache through TestMain).
type serveProcess struct {
	cmd     *exec.Cmd
	addr    string
	metrics string
	done    chan error
	log     *strings.Builder
}

var (
	servingRE = regexp.MustCompile(`msg="diskcache serving" addr=(\S+)`)
	metricsRE = regexp.MustCompile(`metrics=(http://\S+)`)
)

func startServe(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "DISKCACHE_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, done: make(chan error, 1), log: &strings.Builder{}}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteString(line + "\n")
			if m := metricsRE.FindStringSubmatch(line); m != nil {
				p.metrics = m[1]
			}
			if m := servingRE.FindStringSubmatch(line); m != nil {
				p.addr = m[1]
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	select {
	case <-ready:
		return p
	case err := <-p.done:
		if strings.Contains(p.log.String(), "cannot serve the Redis protocol yet") {
			t.Skip("the engine has no (*Cache).Serve yet")
		}
		t.Fatalf("serve exited early (%v):\n%s", err, p.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start:\n%s", p.log)
	}
	return nil
}

// stop sends sig and waits for a clean exit.
func (p *serveProcess) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve exited with %v after %v:\n%s", err, sig, p.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not exit within 20s of %v:\n%s", sig, p.log)
	}
}

func TestServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	p := startServe(t, "--dir", dir, "--size-limit", "256MiB")
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: p.addr})
	defer c.Close()
	if err := c.Set(ctx, "kept", "across restarts", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "kept").Result(); err != nil || v != "across restarts" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	c.Get(ctx, "missing")

	res, err := http.Get(p.metrics)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		"diskcache_hits_total 1", "diskcache_misses_total 1", "diskcache_sets_total 1",
		"diskcache_entries 1", "diskcache_disk_bytes ", "diskcache_evictions_total 0", "diskcache_expirations_total 0",
		`diskcache_commands_total{command="set",result="ok"} 1`,
		`diskcache_command_duration_seconds_bucket{command="get",le="+Inf"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if _, err := exec.LookPath("redis-cli"); err == nil {
		needTools(t)
		c.FlushDB(ctx)
		runScript(t, p.addr)
		c.Set(ctx, "kept", "across restarts", 0)
	} else {
		t.Log("redis-cli is not on PATH: skipping the script against diskcache serve")
	}
	c.Close()
	p.stop(t, syscall.SIGTERM)

	// The value survived, and the directory is free again.
	if out, errs, code := cli(t, dir, "", "get", "kept"); code != 0 || out != "across restarts" {
		t.Errorf("get after serve: exit %d, %q, %q", code, out, errs)
	}
}

func TestServeDrainsOnSIGINT(t *testing.T) {
	p := startServe(t, "--dir", t.TempDir(), "--password", "pw")
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: p.addr, Password: "pw"})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	noauth := redis.NewClient(&redis.Options{Addr: p.addr})
	defer noauth.Close()
	if err := noauth.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("GET without AUTH: %v", err)
	}
	p.stop(t, syscall.SIGINT)
	if !strings.Contains(p.log.String(), "diskcache stopped") {
		t.Errorf("no clean stop in the log:\n%s", p.log)
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, errs, code := cli(t, t.TempDir(), "", "serve", "--addr", ln.Addr().String())
	if strings.Contains(errs, "cannot serve the Redis protocol yet") {
		t.Skip("the engine has no (*Cache).Serve yet")
	}
	if code != 1 || !strings.Contains(errs, "address already in use") {
		t.Errorf("serve on a busy address: exit %d, %q", code, errs)
	}
}
