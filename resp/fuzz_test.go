package resp_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/resp"
)

// FuzzHandler feeds random bytes to a connection of a running server and
// checks that nothing panics (a recovered panic is logged at Error level),
// that the connection answers or waits without hanging the server, and that
// another client is served afterwards. The seed corpus is in
// testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		encode("SET", "k", "v", "EX", "10", "GET"),
		encode("GET", "k") + encode("GET", "k") + encode("SET", "a", "b") + encode("SET", "c", "d"),
		"PING\r\nSET k \"a b\"\r\n",
		"*2\r\n$3\r\nGET\r\n$-1\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabcde",
		encode("MULTI") + encode("SETRANGE", "k", "3", "xy") + encode("BITPOS", "k", "1", "2", "-1", "BIT") + encode("EXEC"),
		encode("WATCH", "k") + encode("SETBIT", "k", "9", "1") + encode("LCS", "k", "j", "IDX", "MINMATCHLEN", "1", "WITHMATCHLEN"),
		encode("EVAL", "return {redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]), redis.pcall('GETRANGE', KEYS[1], 0, -1)}", "1", "f", "1.5"),
		encode("BITOP", "XOR", "d", "k", "j") + encode("RENAME", "d", "e") + encode("COPY", "e", "k", "REPLACE") + encode("BITCOUNT", "k", "0", "-1", "BIT"),
	} {
		f.Add([]byte(seed))
	}
	logs := &errorCounter{}
	ts := startServer(f, resp.Config{MaxBulk: 1 << 16, MaxArgs: 1 << 10, Logger: slog.New(logs), ScriptTimeout: 200 * time.Millisecond})
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		deadline := time.Now().Add(2 * time.Second)
		nc.SetDeadline(deadline)
		go func() {
			nc.Write(in)
			// The client has said all it will: the server sees EOF after
			// the input, whatever state it left the parser in.
			nc.(*net.TCPConn).CloseWrite()
		}()
		// Drain replies until the server closes; it must do so promptly
		// once the input ends.
		if _, err := io.Copy(io.Discard, nc); err != nil {
			t.Fatalf("server neither closed nor finished within 2s: %v", err)
		}
		if n := logs.n.Load(); n > 0 {
			t.Fatalf("the server logged an error (a recovered panic?): %v", logs.last.Load())
		}
		// Another client is still served.
		rc := ts.raw(t)
		if got := rc.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING after fuzz input = %q", got)
		}
	})
}
