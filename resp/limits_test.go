package resp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/resp"
	"github.com/diskcache-go/diskcache/resp/storetest"
)

// batchStore counts the batch calls a Memory gets, and can be told to fail
// them or to make a method block or panic.
type batchStore struct {
	*storetest.Memory
	mu         sync.Mutex
	getMany    []int // sizes of GetMany calls
	setMany    []int // sizes of SetMany calls
	failMany   bool
	maxValue   int           // > 0: longer values are refused
	setGate    chan struct{} // non-nil: Set waits for it
	setEntered chan struct{}
	panicGet   bool
}

func newBatchStore() *batchStore { return &batchStore{Memory: storetest.New()} }

func (s *batchStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	s.mu.Lock()
	s.getMany = append(s.getMany, len(keys))
	s.mu.Unlock()
	return s.Memory.GetMany(ctx, keys)
}

func (s *batchStore) SetMany(ctx context.Context, entries []resp.Entry, nx bool) (bool, error) {
	s.mu.Lock()
	s.setMany = append(s.setMany, len(entries))
	s.mu.Unlock()
	for _, e := range entries {
		if s.maxValue > 0 && len(e.Value) > s.maxValue {
			return false, errors.New("value too large")
		}
	}
	return s.Memory.SetMany(ctx, entries, nx)
}

func (s *batchStore) Set(ctx context.Context, key string, v []byte, o resp.SetOptions) (resp.SetResult, error) {
	if s.setGate != nil {
		s.setEntered <- struct{}{}
		<-s.setGate
	}
	if s.maxValue > 0 && len(v) > s.maxValue {
		return resp.SetResult{}, errors.New("value too large")
	}
	return s.Memory.Set(ctx, key, v, o)
}

func (s *batchStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if s.panicGet {
		panic("boom")
	}
	return s.Memory.Get(ctx, key)
}

func startStore(t testing.TB, st resp.Store, cfg resp.Config) (addr string, stop func() error) {
	t.Helper()
	return serveTCP(t, resp.NewServer(st, cfg).Serve)
}

func rawTo(t testing.TB, addr string) *rawConn {
	return (&testServer{addr: addr}).raw(t)
}

func TestPipelineBatches(t *testing.T) {
	st := newBatchStore()
	addr, _ := startStore(t, st, resp.Config{})
	rc := rawTo(t, addr)
	var in strings.Builder
	for i := range 16 {
		in.WriteString(encode("SET", fmt.Sprint("k", i), fmt.Sprint("v", i)))
	}
	for i := range 16 {
		in.WriteString(encode("GET", fmt.Sprint("k", i)))
	}
	// Interleaved writes and reads of one key keep their order.
	in.WriteString(encode("SET", "x", "1") + encode("GET", "x") + encode("SET", "x", "2") + encode("SET", "x", "3") + encode("GET", "x") + encode("GET", "nope"))
	rc.send(in.String())
	for i := range 16 {
		eq(t, "SET reply", rc.reply(), "+OK\r\n")
		_ = i
	}
	for i := range 16 {
		v := fmt.Sprint("v", i)
		eq(t, "GET reply", rc.reply(), fmt.Sprintf("$%d\r\n%s\r\n", len(v), v))
	}
	for _, want := range []string{"+OK\r\n", "$1\r\n1\r\n", "+OK\r\n", "+OK\r\n", "$1\r\n3\r\n", "$-1\r\n"} {
		eq(t, "interleaved", rc.reply(), want)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	// The reader may split a pipeline; what matters is that SETs and GETs
	// arriving together go to the store together.
	if len(st.setMany) == 0 || st.setMany[0] < 2 || len(st.getMany) == 0 || st.getMany[0] < 2 {
		t.Errorf("SetMany calls %v, GetMany calls %v: pipelined commands were not batched", st.setMany, st.getMany)
	}
}

func TestPipelineBatchFailureRunsEach(t *testing.T) {
	st := newBatchStore()
	st.maxValue = 3
	addr, _ := startStore(t, st, resp.Config{})
	rc := rawTo(t, addr)
	rc.send(encode("SET", "a", "1") + encode("SET", "b", "toolong") + encode("SET", "c", "3") + encode("MGET", "a", "b", "c"))
	eq(t, "a", rc.reply(), "+OK\r\n")
	eq(t, "b", rc.reply(), "-ERR value too large\r\n")
	eq(t, "c", rc.reply(), "+OK\r\n")
	eq(t, "MGET", rc.reply(), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n")
}

func TestProtocolErrors(t *testing.T) {
	ts := startServer(t, resp.Config{MaxBulk: 1024, MaxArgs: 100})
	for _, tc := range []struct{ in, want string }{
		{"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*101\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*0\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*1\r\n$1025\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*2\r\nx", "-ERR Protocol error: expected '$', got 'x'\r\n"},
		{"*1\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*" + strings.Repeat("1", 40), "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*1\r\n$3\r\nGETxx", "-ERR Protocol error: invalid bulk length\r\n"},
		{strings.Repeat("a", 70<<10), "-ERR Protocol error: too big inline request\r\n"},
		{"SET \"a\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{"PING\r\n*abc\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"},
	} {
		rc := ts.raw(t)
		rc.send(tc.in)
		got := rc.reply()
		if strings.HasPrefix(tc.in, "PING") {
			got += rc.reply()
		}
		eq(t, fmt.Sprintf("reply to %.20q", tc.in), got, tc.want)
		rc.expectClosed()
	}
	// The server still serves.
	eq(t, "PING after errors", ts.raw(t).do("PING"), "+PONG\r\n")
}

func TestUnauthenticatedLimits(t *testing.T) {
	ts := startServer(t, resp.Config{Password: "pw"})
	rc := ts.raw(t)
	rc.send("*11\r\n")
	eq(t, "multibulk", rc.reply(), "-ERR Protocol error: unauthenticated multibulk length\r\n")
	rc.expectClosed()
	rc = ts.raw(t)
	rc.send("*2\r\n$3\r\nGET\r\n$16385\r\n")
	eq(t, "bulk", rc.reply(), "-ERR Protocol error: unauthenticated bulk length\r\n")
	rc.expectClosed()
	rc = ts.raw(t)
	eq(t, "AUTH", rc.do("AUTH", "pw"), "+OK\r\n")
	big := strings.Repeat("v", 20000)
	eq(t, "big SET after AUTH", rc.do("SET", "k", big, "NX", "GET", "EX", "100", "XX", "KEEPTTL", "PX", "1"), "-ERR syntax error\r\n")
	eq(t, "big SET after AUTH", rc.do("SET", "k", big), "+OK\r\n")
}

func TestMaxClients(t *testing.T) {
	ts := startServer(t, resp.Config{MaxClients: 2})
	a, b := ts.raw(t), ts.raw(t)
	eq(t, "a", a.do("PING"), "+PONG\r\n")
	eq(t, "b", b.do("PING"), "+PONG\r\n")
	c := ts.raw(t)
	eq(t, "third", c.reply(), "-ERR max number of clients reached\r\n")
	c.expectClosed()
	a.nc.Close()
	// The server notices a's close after a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := ts.raw(t)
		d.send(encode("PING"))
		if r := d.reply(); r == "+PONG\r\n" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no room after a client left: %q", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	info := b.do("INFO", "stats")
	if !strings.Contains(info, "rejected_connections:") || strings.Contains(info, "rejected_connections:0") {
		t.Errorf("INFO stats = %q", info)
	}
}

func TestShutdownFinishesCommandsInFlight(t *testing.T) {
	st := newBatchStore()
	st.setGate = make(chan struct{})
	st.setEntered = make(chan struct{}, 1)
	addr, stop := startStore(t, st, resp.Config{})
	busy, idle := rawTo(t, addr), rawTo(t, addr)
	eq(t, "idle PING", idle.do("PING"), "+PONG\r\n")
	busy.send(encode("SET", "k", "v", "EX", "100"))
	<-st.setEntered
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	idle.expectClosed() // an idle connection closes at once
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a command in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(st.setGate)
	eq(t, "reply of the command in flight", busy.reply(), "+OK\r\n")
	busy.expectClosed()
	if err := <-stopped; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepts after Serve returned")
	}
}

// errorCounter is a slog handler that counts records at Error level.
type errorCounter struct {
	n    atomic.Int64
	last atomic.Value
}

func (h *errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorCounter) Handle(_ context.Context, r slog.Record) error {
	h.n.Add(1)
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.last.Store(b.String())
	return nil
}
func (h *errorCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorCounter) WithGroup(string) slog.Handler      { return h }

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	st := newBatchStore()
	st.panicGet = true
	logs := &errorCounter{}
	addr, _ := startStore(t, st, resp.Config{Logger: slog.New(logs)})
	rc := rawTo(t, addr)
	rc.send(encode("GET", "k"))
	rc.expectClosed()
	if logs.n.Load() != 1 || !strings.Contains(logs.last.Load().(string), "boom") {
		t.Errorf("panic not logged: %d records, last %v", logs.n.Load(), logs.last.Load())
	}
	eq(t, "other client", rawTo(t, addr).do("SET", "a", "b"), "+OK\r\n")
}

func TestObserver(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	obs := resp.ObserverFunc(func(name string, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s:%v", name, err != nil))
	})
	ts := startServer(t, resp.Config{Observer: obs})
	rc := ts.raw(t)
	rc.do("SET", "k", "v")
	rc.do("GET", "k")
	rc.do("INCR", "k")
	rc.do("NOSUCH")
	rc.send(encode("GET", "k") + encode("GET", "k"))
	rc.reply()
	rc.reply()
	mu.Lock()
	defer mu.Unlock()
	eq(t, "observed", strings.Join(seen, " "), "set:false get:false incr:true unknown:true get:false get:false")
}

// failingListener fails Accept for good after the first connection.
type failingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n.Add(1) > 1 {
		return nil, errors.New("listener broke")
	}
	return l.Listener.Accept()
}

func TestServeReturnsListenerError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- resp.NewServer(storetest.New(), resp.Config{}).Serve(context.Background(), &failingListener{Listener: ln})
	}()
	// The first connection is served until Accept fails, then closed.
	rc := rawTo(t, ln.Addr().String())
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "listener broke") {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Accept failed")
	}
	rc.expectClosed()
}
