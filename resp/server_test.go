package resp_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/diskcache-go/diskcache/resp"
	"github.com/diskcache-go/diskcache/resp/storetest"
)

// testServer is a Server of a store on a loopback port: a Memory store
// (startServer), or any of storeKinds (serveStore).
type testServer struct {
	addr string
	kind storeKind
	stop func() error // cancels Serve and returns what it returned

	// Set by serveStore only: the clock the store reads for expiry, and
	// a write by another process of the store, bypassing this server.
	clock     *testClock
	elsewhere func(ctx context.Context, key string, value []byte) error
}

func startServer(t testing.TB, cfg resp.Config) *testServer {
	t.Helper()
	return startServerOn(t, storetest.New(), cfg)
}

func startServerOn(t testing.TB, st *storetest.Memory, cfg resp.Config) *testServer {
	t.Helper()
	addr, stop := serveTCP(t, resp.NewServer(st, cfg).Serve)
	return &testServer{addr: addr, kind: memoryStore, stop: stop}
}

// serveTCP runs serve on a new loopback listener until the test ends, and
// returns its address and stop, which cancels serve and returns what it
// returned (once; the test's cleanup reports an error).
func serveTCP(t testing.TB, serve func(context.Context, net.Listener) error) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(30 * time.Second):
				serveErr = errors.New("Serve did not return within 30s of cancel")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), stop
}

// client returns a go-redis client of the server speaking protocol proto.
func (ts *testServer) client(t testing.TB, proto int, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: ts.addr, Protocol: proto, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a connection to talk RESP by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	rd *bufio.Reader
}

func (ts *testServer) raw(t testing.TB) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ts.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	rc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(rc.nc, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// do sends a command as a RESP array and returns its reply in raw form.
func (rc *rawConn) do(args ...string) string {
	rc.t.Helper()
	rc.send(encode(args...))
	return rc.reply()
}

func encode(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// reply reads one whole reply, nested ones included, in raw form.
func (rc *rawConn) reply() string {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := readReply(rc.rd)
	if err != nil {
		rc.t.Fatalf("read reply: %v (so far %q)", err, s)
	}
	return s
}

// readReply reads one RESP2 or RESP3 reply and returns its bytes.
func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return line, err
	}
	n := 0
	if len(line) > 3 {
		n = atoi(line[1 : len(line)-2])
	}
	switch line[0] {
	case '$', '=', '!':
		if n < 0 {
			return line, nil
		}
		buf := make([]byte, n+2)
		_, err := io.ReadFull(rd, buf)
		return line + string(buf), err
	case '*', '~', '>':
		for i := 0; i < n; i++ {
			s, err := readReply(rd)
			line += s
			if err != nil {
				return line, err
			}
		}
	case '%', '|':
		for i := 0; i < 2*n; i++ {
			s, err := readReply(rd)
			line += s
			if err != nil {
				return line, err
			}
		}
	}
	return line, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// expectClosed checks that the server closed the connection.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := rc.rd.ReadByte()
	if err == nil {
		rc.t.Fatalf("connection still open: read %q", b)
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		rc.t.Fatalf("connection not closed: %v", err)
	}
}
