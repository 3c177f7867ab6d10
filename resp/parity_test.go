package resp_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/diskcache-go/diskcache/internal/redistest"
	"github.com/diskcache-go/diskcache/resp"
)

// parityWithRedis sends the same commands to a real Redis and to the
// handler and wants the same bytes back: values, integers, nulls and the
// exact wording of errors.
func parityWithRedis(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	redisAddr := redistest.Redis(t)
	script := [][]string{
		{"PING"}, {"PING", "x"}, {"PING", "a", "b"}, {"ECHO", "hello"}, {"ECHO"},
		{"SELECT", "0"}, {"SELECT", "x"}, {"NOSUCH", "a", "b"}, {"nosuch"},
		{"GET", "k"}, {"GET"}, {"SET", "k"}, {"SET", "k", "v"}, {"GET", "k"}, {"SET", "k", "v2", "GET"},
		{"SET", "k", "v3", "NX"}, {"SET", "k", "v3", "NX", "GET"}, {"SET", "k", "v3", "XX", "GET"},
		{"SET", "n", "v", "XX"}, {"SET", "k", "v", "NX", "XX"}, {"SET", "k", "v", "XX", "NX"},
		{"SET", "k", "v", "EX", "0"}, {"SET", "k", "v", "EX", "-1"}, {"SET", "k", "v", "PX", "x"},
		{"SET", "k", "v", "EX", "10", "PX", "10"}, {"SET", "k", "v", "EX", "10", "EX", "20"}, {"TTL", "k"},
		{"SET", "k", "v", "KEEPTTL"}, {"TTL", "k"}, {"SET", "k", "v", "KEEPTTL", "EX", "5"},
		{"SET", "k", "v", "EX", "5", "KEEPTTL"}, {"SET", "k", "v", "EX"}, {"SET", "k", "v", "BOGUS"},
		{"SET", "k", "v", "EXAT", "1"}, {"GET", "k"}, {"SET", "k", "v", "EX", "9223372036854775807"},
		{"SET", "k", "v", "PX", "9223372036854775807"}, {"SET", "k", "v", "EX", "9223372036854775"},
		{"SETEX", "k", "0", "v"}, {"SETEX", "k", "x", "v"}, {"SETEX", "k", "100", "v"}, {"TTL", "k"},
		{"PSETEX", "k", "-1", "v"}, {"PSETEX", "k", "100000", "v"}, {"TTL", "k"},
		{"SETNX", "k", "x"}, {"SETNX", "k2", "x"}, {"GETSET", "k2", "y"}, {"GETSET", "k3", "y"},
		{"GETDEL", "k2"}, {"GETDEL", "k2"}, {"GETEX", "k3"}, {"GETEX", "k3", "EX", "100"}, {"TTL", "k3"},
		{"GETEX", "k3", "PERSIST"}, {"TTL", "k3"}, {"GETEX", "k3", "PERSIST", "EX", "1"}, {"GETEX", "k3", "NX"},
		{"GETEX", "k3", "EX", "0"}, {"GETEX", "nope", "EX", "0"}, {"GETEX", "k3", "KEEPTTL"},
		{"GETEX", "k3", "EXAT", "1"}, {"EXISTS", "k3"},
		{"MSET", "a", "1", "b", "2"}, {"MSET", "a"}, {"MSET", "a", "1", "b"}, {"MGET", "a", "x", "b"},
		{"MSETNX", "a", "1", "c", "3"}, {"MSETNX", "c", "3", "d", "4"}, {"MGET", "c", "d"},
		{"INCR", "n"}, {"INCRBY", "n", "10"}, {"DECR", "n"}, {"DECRBY", "n", "5"}, {"INCRBY", "n", "x"},
		{"INCR", "k"}, {"SET", "big", "9223372036854775807"}, {"INCR", "big"}, {"DECRBY", "big", "-9223372036854775808"},
		{"SET", "neg", "-9223372036854775808"}, {"DECR", "neg"}, {"SET", "sp", " 1"}, {"INCR", "sp"},
		{"SET", "z", "01"}, {"INCR", "z"}, {"SET", "z", "-0"}, {"INCR", "z"}, {"SET", "e", ""}, {"INCR", "e"},
		{"APPEND", "s", "ab"}, {"APPEND", "s", "cd"}, {"GET", "s"}, {"STRLEN", "s"}, {"STRLEN", "nope"},
		{"EXISTS", "a", "a", "nope"}, {"TYPE", "a"}, {"TYPE", "nope"}, {"DEL", "a", "a", "nope"}, {"UNLINK", "b"},
		{"EXPIRE", "c", "100"}, {"TTL", "c"}, {"PTTL", "nope"}, {"TTL", "nope"}, {"TTL", "d"},
		{"EXPIRE", "nope", "10"}, {"EXPIRE", "c", "x"}, {"EXPIRE", "c", "10", "FOO"}, {"EXPIRE", "c", "10", "NX", "XX"},
		{"EXPIRE", "c", "10", "GT", "LT"}, {"EXPIRE", "c", "10", "NX"}, {"EXPIRE", "d", "10", "XX"},
		{"EXPIRE", "c", "10", "GT"}, {"EXPIRE", "c", "1000", "GT"}, {"TTL", "c"}, {"EXPIRE", "c", "2000", "LT"},
		{"EXPIRE", "c", "20", "LT"}, {"TTL", "c"}, {"EXPIRE", "d", "20", "LT"}, {"EXPIRE", "d", "30", "GT"}, {"EXPIRE", "d", "10", "GT"},
		{"EXPIRE", "c", "99999999999999999"}, {"PEXPIRE", "c", "9223372036854775807"},
		{"PERSIST", "c"}, {"PERSIST", "c"}, {"PERSIST", "nope"}, {"EXPIREAT", "c", "1"}, {"EXISTS", "c"},
		{"PEXPIREAT", "d", "-5"}, {"EXISTS", "d"}, {"EXPIRETIME", "nope"}, {"SET", "f", "v"}, {"PEXPIRETIME", "f"},
		{"EXPIRE", "f", "-10"}, {"EXISTS", "f"},
		{"SCAN", "x"}, {"SCAN", "0", "COUNT", "0"}, {"SCAN", "0", "COUNT", "x"}, {"SCAN", "0", "foo"}, {"SCAN", "0", "MATCH"},
		{"SCAN", "0", "TYPE", "hash"}, {"KEYS", "nomatch*"},
		{"CLIENT", "SETNAME", "a b"}, {"CLIENT", "SETNAME", "ok"}, {"CLIENT", "GETNAME"}, {"CLIENT", "FOO"},
		{"CLIENT", "GETNAME", "x"}, {"CONFIG", "FOO"}, {"COMMAND", "FOO"}, {"CONFIG", "GET", "appendonly"},
		{"AUTH", "x"}, {"HELLO", "4"}, {"HELLO", "x"}, {"HELLO", "3", "foo"},
		{"CLIENT", "KILL", "1.2.3.4:5"}, {"CLIENT", "KILL", "ID", "999"}, {"CLIENT", "KILL", "ID", "x"},
		{"CLIENT", "KILL", "TYPE", "foo"}, {"CLIENT", "KILL", "SKIPME", "maybe"}, {"CLIENT", "KILL", "ID"},
		{"CONFIG", "SET", "foo", "1"}, {"CONFIG", "SET", "timeout", "0"}, {"CONFIG", "SET", "databases", "2"},
		{"CONFIG", "SET", "timeout"}, {"INFO", "nosuch"},
		{"FLUSHDB", "foo"}, {"FLUSHALL", "SYNC"}, {"DBSIZE"}, {"SET", "x", "1"}, {"DBSIZE"}, {"FLUSHDB"}, {"DBSIZE"},
		{"INFO", "keyspace"},
	}
	want, got := rawTo(t, redisAddr), ts.raw(t)
	want.do("FLUSHALL")
	for _, cmd := range script {
		w, g := want.do(cmd...), got.do(cmd...)
		if w != g {
			t.Errorf("%q: Redis %q, diskcache %q", cmd, w, g)
		}
	}
}

// TestMatchParityWithRedis checks Match against Redis's KEYS on random
// keys and patterns made of the glob's special characters.
func TestMatchParityWithRedis(t *testing.T) {
	redisAddr := redistest.Redis(t)
	rc := rawTo(t, redisAddr)
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab-^]\\[*?"
	gen := func(chars string, n int) string {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = chars[rng.IntN(len(chars))]
		}
		return string(b)
	}
	var keys []string
	seen := map[string]bool{}
	for len(keys) < 200 {
		k := gen("ab-^]\\[", 5)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	rc.do("FLUSHALL")
	for _, k := range keys {
		rc.do("SET", k, "v")
	}
	for range 400 {
		p := gen(alphabet, 7)
		r := rc.reply2("KEYS", p)
		for _, k := range keys {
			if in, ok := r[k], resp.Match(p, k); in != ok {
				t.Errorf("Match(%q, %q) = %v, Redis says %v", p, k, ok, in)
			}
		}
	}
}

// reply2 runs a command whose reply is an array of bulk strings and
// returns them as a set.
func (rc *rawConn) reply2(args ...string) map[string]bool {
	raw := rc.do(args...)
	out := map[string]bool{}
	lines := strings.Split(raw, "\r\n")
	for i := 1; i+1 < len(lines); i += 2 {
		out[lines[i+1]] = true
	}
	return out
}

// TestProtocolErrorParity sends malformed requests to a real Redis and to
// the handler and wants the same bytes back, then the connection closed.
// The README lists the malformed inputs Redis accepts that are refused here.
func TestProtocolErrorParity(t *testing.T) {
	redisAddr := redistest.Redis(t)
	ts := startServer(t, resp.Config{})
	for _, in := range []string{
		"*abc\r\n", "*1\r\n$abc\r\n", "*1\r\nfoo\r\n", "*1\r\n$-5\r\n", "SET \"a\r\n", "SET 'a\r\n",
		"*1\r\n$999999999999\r\n", strings.Repeat("x", 70000), "PING\r\n\r\nPING\r\nQUIT\r\n",
		"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*x\r\n",
	} {
		want, got := sendRaw(t, redisAddr, in), sendRaw(t, ts.addr, in)
		if want != got {
			t.Errorf("%.40q: Redis %q, diskcache %q", in, want, got)
		}
	}
}

// sendRaw writes in and returns what comes back until the server closes
// the connection, marked "<closed>"; every input ends in a close.
func sendRaw(t *testing.T, addr, in string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	go nc.Write([]byte(in))
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	out, err := io.ReadAll(nc)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%.40q: the connection stayed open; read %q", in, out)
	}
	return string(out) + "<closed>"
}
