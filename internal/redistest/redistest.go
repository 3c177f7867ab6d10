// Package redistest starts servers that speak the Redis protocol on
// loopback ports, for the tests and the benchmarks harness: a redis-server,
// a Redis Cluster (redis-server --cluster-enabled and redis-cli --cluster
// create), any other program that serves the protocol (diskcache serve),
// and an engine cache served in-process as diskcache serve does.
//
// The processes are children of the caller, stopped by Stop (and killed
// with it on Linux if it dies first); their files, logs included, go in
// the directory the caller gives.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/resp"
)

// ErrNotInstalled is returned (wrapped, with the program's name) when
// redis-server or redis-cli is not on PATH.
var ErrNotInstalled = errors.New("not installed (Debian: apt-get install redis-server redis-tools)")

// readyTimeout bounds the wait for a server to answer PING and for a
// cluster to agree that it serves every slot: generous, for a loaded
// machine.
const readyTimeout = 30 * time.Second

// Server is a server process this package started.
type Server struct {
	// Addr is where it serves, 127.0.0.1:port.
	Addr string
	cmd  *exec.Cmd
	log  string
	exit chan error // the process's exit, once
	err  error
}

// FreePort returns a TCP port that nothing listens on at 127.0.0.1 at the
// time of the call.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start runs the program bin with the arguments args returns for a free
// loopback port, its standard output and error going to log, and waits
// until it answers PING on that port. A port taken meanwhile by someone
// else is retried on another.
func Start(bin, log string, args func(port int) ([]string, error)) (*Server, error) {
	var err error
	for range 3 {
		var port int
		if port, err = FreePort(); err != nil {
			return nil, err
		}
		var a []string
		if a, err = args(port); err != nil {
			return nil, err
		}
		var s *Server
		if s, err = start(bin, log, port, a); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func start(bin, log string, port int, args []string) (*Server, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, log: log, exit: make(chan error, 1)}
	go func() { s.exit <- cmd.Wait() }()
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, err := Do(s.Addr, "PING"); err == nil {
			return s, nil
		}
		select {
		case err := <-s.exit:
			s.exit <- err
			return nil, fmt.Errorf("%s exited before it served %s: %v; its log ends: %s", filepath.Base(bin), s.Addr, err, tail(log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%s did not answer PING on %s within %s; its log ends: %s", filepath.Base(bin), s.Addr, readyTimeout, tail(log))
		}
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server (SIGKILL: nothing it holds needs saving) and waits
// for it to exit. It is idempotent.
func (s *Server) Stop() {
	if s.exit == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exit
	s.exit = nil
}

// Terminate asks the server to stop (SIGTERM), as a service manager would,
// and waits up to timeout for it to exit before killing it. It returns the
// server's exit error, if it exited with one. Terminate or Stop, once.
func (s *Server) Terminate(timeout time.Duration) error {
	if s.exit == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exit:
		s.exit = nil
		return err
	case <-time.After(timeout):
		s.Stop()
		return fmt.Errorf("did not exit within %s of SIGTERM: killed", timeout)
	}
}

// tail returns the last lines of a log, on one line.
func tail(log string) string {
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-5):]
	return strings.Join(lines, " | ")
}

// redisServer returns the path of redis-server.
func redisServer() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server: %w", ErrNotInstalled)
	}
	return bin, nil
}

// Available returns nil when redis-server and redis-cli are installed, or
// an error that says which is missing.
func Available() error {
	if _, err := redisServer(); err != nil {
		return err
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return fmt.Errorf("redis-cli: %w", ErrNotInstalled)
	}
	return nil
}

// Version is redis-server's version line ("Redis server v=7.0.15 ...").
func Version() (string, error) {
	bin, err := redisServer()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(bin, "--version").Output()
	return strings.TrimSpace(string(out)), err
}

// serverArgs are the arguments of every redis-server started here: bound
// to loopback, no persistence (a cache), its files in dir.
func serverArgs(dir string, port int, extra ...string) []string {
	return append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
	}, extra...)
}

// StartRedis starts a redis-server on a free loopback port, in dir (which
// it creates), with extra arguments after the defaults: no persistence.
func StartRedis(dir string, extra ...string) (*Server, error) {
	bin, err := redisServer()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return Start(bin, filepath.Join(dir, "redis.log"), func(port int) ([]string, error) {
		return serverArgs(dir, port, extra...), nil
	})
}

// Cluster is a Redis Cluster this package started.
type Cluster struct {
	// Nodes are its servers, in the order given to redis-cli --cluster
	// create: the masters first (it makes the first ones masters when all
	// nodes share a host), then the replicas.
	Nodes []*Server
}

// Addrs are the addresses of the cluster's nodes, masters first.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// Stop kills every node and waits for them to exit.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// StartCluster starts masters redis-servers with cluster mode on, and
// replicas replicas of each, every node in a directory of its own under
// dir, joins them with redis-cli --cluster create, and waits until every
// node says the cluster is ok and knows every node. extra goes to every node, e.g.
// "--cluster-node-timeout", "2000".
func StartCluster(dir string, masters, replicas int, extra ...string) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	bin, _ := redisServer()
	c := &Cluster{}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	for i := range masters * (1 + replicas) {
		d := filepath.Join(dir, fmt.Sprint("node", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		n, err := Start(bin, filepath.Join(d, "redis.log"), func(port int) ([]string, error) {
			// The cluster bus on a port of its own: port+10000, the
			// default, may be taken.
			bus, err := FreePort()
			if err != nil {
				return nil, err
			}
			return serverArgs(d, port, append([]string{
				"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(d, "nodes.conf"),
				"--cluster-port", strconv.Itoa(bus),
			}, extra...)...), nil
		})
		if err != nil {
			return nil, fmt.Errorf("cluster node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	// Ready means every node says the cluster is ok and knows every other
	// node: cluster_state turns ok before gossip has reached them all (a
	// node seen reporting 5 of 6 known nodes failed TestCluster).
	known := fmt.Sprintf("cluster_known_nodes:%d\r", len(c.Nodes))
	deadline := time.Now().Add(readyTimeout)
	for _, n := range c.Nodes {
		for {
			info, err := Do(n.Addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, known) {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("node %s: cluster not ok within %s: %v %.200q", n.Addr, readyTimeout, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ok = true
	return c, nil
}

// Do sends one command to the server at addr on a new connection and
// returns its reply: a status, an integer or a bulk string, as text; an
// error reply is an error. It is for setting servers up, not for traffic.
func Do(addr string, args ...string) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := nc.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(nc)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// Redis starts a redis-server for t, stopped when t ends, and returns its
// address; t is skipped when redis-server is not installed.
func Redis(t testing.TB) string {
	t.Helper()
	s, err := StartRedis(t.TempDir())
	if errors.Is(err, ErrNotInstalled) {
		t.Skipf("%v: skipped", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.Addr
}

// Serve serves a new engine cache in a temporary directory over the Redis
// protocol on a loopback port, as diskcache serve does (Cache.Serve with
// the default resp.Config), and returns its address. opts may be nil. The
// server stops and the cache closes when t ends; an error from either
// fails t.
func Serve(t testing.TB, opts *engine.Options) string {
	t.Helper()
	c, err := engine.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln, resp.Config{}) }()
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
