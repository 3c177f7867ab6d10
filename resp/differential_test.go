package resp_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/internal/redistest"
	"github.com/diskcache-go/diskcache/resp"
)

// diffGen makes random command sequences over a small keyspace, so that
// commands meet each other's keys, with values that stress the protocol:
// binary bytes, CRLF inside values, integers, floats and large values.
// Large values live under their own keys ("big:*"): LCS and BITOP on two
// of them would make Redis build a table of their product.
type diffGen struct {
	rng *rand.Rand
}

var (
	diffKeys = []string{"a", "b", "c", "n", "f", "bits", "k\x00\xff\r\n", "lock"}
	bigKeys  = []string{"big:0", "big:1"}
)

func (g *diffGen) key() string { return diffKeys[g.rng.IntN(len(diffKeys))] }
func (g *diffGen) n(lo, hi int) string {
	return strconv.Itoa(lo + g.rng.IntN(hi-lo+1))
}

func (g *diffGen) value() string {
	switch g.rng.IntN(8) {
	case 0:
		return g.n(-1000, 1000)
	case 1:
		return []string{"0.1", "-2.5", "1e3", "3.0e-2", "10.50", "0", "-0"}[g.rng.IntN(7)]
	case 2:
		return ""
	case 3:
		b := make([]byte, g.rng.IntN(40))
		for i := range b {
			b[i] = byte(g.rng.IntN(256))
		}
		return string(b)
	case 4:
		return "line\r\nbreak\x00nul"
	case 5:
		return "9223372036854775807"
	}
	const letters = "abcdefgh"
	b := make([]byte, 1+g.rng.IntN(12))
	for i := range b {
		b[i] = letters[g.rng.IntN(len(letters))]
	}
	return string(b)
}

// expiry is a time to live in units of 1/perSecond seconds: not positive
// (the key goes at once), or at least 100 seconds, so that no key expires
// while a sequence runs and the two servers never race a deadline.
func (g *diffGen) expiry(perSecond int) string {
	if g.rng.IntN(4) == 0 {
		return g.n(-2, 0)
	}
	return strconv.Itoa((100 + g.rng.IntN(5000)) * perSecond)
}

func (g *diffGen) bigValue() string {
	n := 1 << (10 + g.rng.IntN(11)) // 1 KiB to 1 MiB
	return strings.Repeat(string(rune('a'+g.rng.IntN(26))), n-7) + g.n(1000000, 9999999)
}

// command returns one random command.
func (g *diffGen) command() []string {
	k, v := g.key(), g.value()
	switch g.rng.IntN(60) {
	case 0:
		return []string{"GET", k}
	case 1:
		opts := [][]string{nil, {"NX"}, {"XX"}, {"GET"}, {"EX", g.n(100, 1000)}, {"PX", g.n(100000, 900000)},
			{"KEEPTTL"}, {"XX", "GET"}, {"NX", "XX"}, {"EX", "0"}, {"EX", "x"}, {"EX", "+5"}}
		return append([]string{"SET", k, v}, opts[g.rng.IntN(len(opts))]...)
	case 2:
		return []string{"SETNX", k, v}
	case 3:
		return []string{"SETEX", k, g.expiry(1), v}
	case 4:
		return []string{"GETSET", k, v}
	case 5:
		return []string{"GETDEL", k}
	case 6:
		opts := [][]string{nil, {"PERSIST"}, {"EX", g.n(100, 1000)}, {"EXAT", "1"}, {"KEEPTTL"}}
		return append([]string{"GETEX", k}, opts[g.rng.IntN(len(opts))]...)
	case 7:
		return []string{"MGET", k, g.key(), g.key()}
	case 8:
		return []string{"MSET", k, v, g.key(), g.value()}
	case 9:
		return []string{"MSETNX", k, v, g.key(), g.value()}
	case 10:
		return []string{"INCR", k}
	case 11:
		return []string{"DECRBY", k, g.n(-100, 100)}
	case 12:
		return []string{"INCRBYFLOAT", k, []string{"0.1", "-1.5", "2", "1e2", "abc", "0.3333", "5.0e3"}[g.rng.IntN(7)]}
	case 13:
		return []string{"APPEND", k, v}
	case 14:
		return []string{"STRLEN", k}
	case 15:
		return []string{"GETRANGE", k, g.n(-20, 20), g.n(-20, 20)}
	case 16:
		return []string{"SUBSTR", k, g.n(-5, 5), g.n(-5, 50)}
	case 17:
		return []string{"SETRANGE", k, g.n(-1, 40), v}
	case 18:
		return []string{"GETBIT", k, g.n(-1, 300)}
	case 19:
		return []string{"SETBIT", k, g.n(0, 300), g.n(0, 2)}
	case 20:
		opts := [][]string{nil, {g.n(-10, 10), g.n(-10, 10)}, {g.n(-40, 40), g.n(-40, 40), "BIT"}, {g.n(-4, 4), g.n(-4, 4), "BYTE"}, {"1"}}
		return append([]string{"BITCOUNT", k}, opts[g.rng.IntN(len(opts))]...)
	case 21:
		opts := [][]string{nil, {g.n(-10, 10)}, {g.n(-10, 10), g.n(-10, 10)}, {g.n(-40, 40), g.n(-40, 40), "BIT"}, {g.n(-4, 4), g.n(-4, 4), "BYTE"}}
		return append([]string{"BITPOS", k, g.n(0, 2)}, opts[g.rng.IntN(len(opts))]...)
	case 22:
		op := []string{"AND", "OR", "XOR", "NOT", "NAND"}[g.rng.IntN(5)]
		if op == "NOT" && g.rng.IntN(4) > 0 {
			return []string{"BITOP", op, k, g.key()}
		}
		return []string{"BITOP", op, k, g.key(), g.key()}
	case 23:
		opts := [][]string{nil, {"LEN"}, {"IDX"}, {"IDX", "WITHMATCHLEN"}, {"IDX", "MINMATCHLEN", g.n(0, 3)}, {"LEN", "IDX"}}
		return append([]string{"LCS", k, g.key()}, opts[g.rng.IntN(len(opts))]...)
	case 24:
		return []string{"DEL", k, g.key()}
	case 25:
		return []string{"EXISTS", k, g.key(), k}
	case 26:
		return []string{"TYPE", k}
	case 27:
		opts := [][]string{nil, {"NX"}, {"XX"}, {"GT"}, {"LT"}, {"NX", "GT"}, {"FOO"}}
		if g.rng.IntN(2) == 0 {
			return append([]string{"EXPIRE", k, g.expiry(1)}, opts[g.rng.IntN(len(opts))]...)
		}
		return append([]string{"PEXPIRE", k, g.expiry(1000)}, opts[g.rng.IntN(len(opts))]...)
	case 28:
		return []string{"PERSIST", k}
	case 29:
		return []string{"TTL", k}
	case 30:
		return []string{"PTTL", k}
	case 31:
		return []string{"RENAME", k, g.key()}
	case 32:
		return []string{"RENAMENX", k, g.key()}
	case 33:
		opts := [][]string{nil, {"REPLACE"}, {"DB", "0"}, {"BAD"}}
		return append([]string{"COPY", k, g.key()}, opts[g.rng.IntN(len(opts))]...)
	case 34:
		return []string{"DBSIZE"}
	case 35:
		return []string{"KEYS", "*"}
	case 36:
		return []string{"SCRIPT", "EXISTS", sha1Hex(lockRelease), "ffffffffffffffffffffffffffffffffffffffff"}
	case 37:
		return []string{"GET"}
	case 38:
		return []string{"INCRBY", k, "x"}
	case 39:
		b := bigKeys[g.rng.IntN(2)]
		return []string{"SET", b, g.bigValue()}
	case 40:
		return []string{"GET", bigKeys[g.rng.IntN(2)]}
	case 41:
		return []string{"APPEND", bigKeys[g.rng.IntN(2)], v}
	case 42:
		return []string{"STRLEN", bigKeys[g.rng.IntN(2)]}
	case 43:
		return []string{"GETRANGE", bigKeys[g.rng.IntN(2)], g.n(-2000, 2000), g.n(-2000, 2000)}
	case 44:
		return []string{"RENAME", bigKeys[g.rng.IntN(2)], bigKeys[g.rng.IntN(2)]}
	case 45:
		return []string{"MGET", bigKeys[0], bigKeys[1], k}
	case 46:
		return []string{"EVAL", "return redis.call('GET', KEYS[1])", "1", k}
	case 47:
		return []string{"EVAL", "local v = redis.call('INCR', KEYS[1]) return {v, ARGV[1], redis.call('EXISTS', KEYS[1])}", "1", k, v}
	case 48:
		return []string{"EVAL", "return redis.pcall('INCRBY', KEYS[1], ARGV[1])", "1", k, v}
	case 49:
		return []string{"EVAL", "return {1, 'two', false, {ok='fine'}, 3.7}", "0"}
	case 50:
		return []string{"EVAL", "return redis.call('SET', KEYS[1], ARGV[1], 'GET')", "1", k, v}
	case 51:
		return []string{"EVAL", "return 1", g.n(-1, 3), "a", "b"}
	case 52:
		return []string{"EVALSHA", "0000000000000000000000000000000000000000", "0"}
	case 53:
		return []string{"EXPIRETIME", k}
	case 54:
		return []string{"SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"}
	case 55:
		return []string{"ECHO", v}
	case 56:
		return []string{"TOUCH", k, g.key()}
	case 57:
		return []string{"UNLINK", k}
	case 58:
		return []string{"GETEX", k, "EX", "-1"}
	}
	return []string{"PING"}
}

// txCommand is a command to queue in a transaction: any but those whose
// replies equivalent only compares outside EXEC's array (KEYS, times).
func (g *diffGen) txCommand() []string {
	for {
		switch cmd := g.command(); cmd[0] {
		case "KEYS", "PTTL", "TTL", "EXPIRETIME":
		default:
			return cmd
		}
	}
}

// The scripts of redis-py's Lock (redis/lock.py), as the library ships them.
const (
	lockRelease = `local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1`
	lockExtend = `local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
local expiration = redis.call('pttl', KEYS[1])
if not expiration then
    expiration = 0
end
if expiration < 0 then
    return 0
end

local newttl = ARGV[2]
if ARGV[3] == "0" then
    newttl = ARGV[2] + expiration
end
redis.call('pexpire', KEYS[1], newttl)
return 1`
	lockReacquire = `local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('pexpire', KEYS[1], ARGV[2])
return 1`
)

// block returns a group of commands sent as one pipeline: plain commands,
// a transaction, a WATCH round, or a lock's life.
func (g *diffGen) block() [][]string {
	switch g.rng.IntN(10) {
	case 0, 1: // a transaction, sometimes with a refused command or DISCARD
		out := [][]string{{"MULTI"}}
		for range 1 + g.rng.IntN(5) {
			out = append(out, g.txCommand())
		}
		switch g.rng.IntN(6) {
		case 0:
			out = append(out, []string{"GET"}) // refused at queue time: EXECABORT
		case 1:
			out = append(out, []string{"MULTI"})
		}
		if g.rng.IntN(5) == 0 {
			return append(out, []string{"DISCARD"})
		}
		return append(out, []string{"EXEC"})
	case 2: // WATCH, maybe a write of the key in between, then a transaction
		k := g.key()
		out := [][]string{{"WATCH", k, g.key()}}
		switch g.rng.IntN(5) {
		case 0:
			out = append(out, []string{"SET", k, "x"})
		case 1:
			out = append(out, []string{"SET", k, "x", "NX"}) // no write if present
		case 3:
			out = append(out, []string{"GETEX", k, "PERSIST"}) // a write only with a TTL
		case 2:
			out = append(out, []string{"UNWATCH"})
		}
		out = append(out, []string{"MULTI"}, g.txCommand(), []string{"EXEC"}, []string{"EXEC"})
		return out
	case 3: // redis-py's Lock: acquire, extend, reacquire, release
		tok := g.n(1, 3)
		return [][]string{
			{"SET", "lock", tok, "NX", "PX", "100000"},
			{"EVAL", lockExtend, "1", "lock", g.n(1, 3), "50000", g.n(0, 1)},
			{"PTTL", "lock"},
			{"EVAL", lockReacquire, "1", "lock", g.n(1, 3), "70000"},
			{"EVAL", lockRelease, "1", "lock", g.n(1, 3)},
			{"EXISTS", "lock"},
		}
	}
	out := make([][]string, 1+g.rng.IntN(8))
	for i := range out {
		out[i] = g.command()
	}
	return out
}

// normalize turns a raw reply into what the comparison sees. The only
// change is a difference the README documents: KEYS lists keys in hash
// order here.
func normalize(cmd []string, reply string) string {
	if strings.ToUpper(cmd[0]) != "KEYS" {
		return reply
	}
	rd := bufio.NewReader(strings.NewReader(reply))
	head, _ := rd.ReadString('\n')
	var keys []string
	for range atoi(strings.TrimSpace(head[1:])) {
		bulk, _ := readReply(rd)
		keys = append(keys, bulk)
	}
	slices.Sort(keys)
	return fmt.Sprintf("keys %q", keys)
}

// equivalent reports whether two replies to cmd agree: equal after
// normalize, or, for a time, within what two servers reading their clocks
// at two moments can differ by (a second; a TTL in seconds by one).
func equivalent(cmd []string, want, got string) bool {
	want, got = normalize(cmd, want), normalize(cmd, got)
	if want == got {
		return true
	}
	slack := int64(0)
	switch strings.ToUpper(cmd[0]) {
	case "PTTL", "PEXPIRETIME":
		slack = 1000
	case "TTL", "EXPIRETIME":
		slack = 1
	}
	if slack == 0 || want[0] != ':' || got[0] != ':' {
		return false
	}
	w, _ := strconv.ParseInt(strings.TrimSpace(want[1:]), 10, 64)
	g, _ := strconv.ParseInt(strings.TrimSpace(got[1:]), 10, 64)
	return w >= 0 && g >= 0 && w-g <= slack && g-w <= slack
}

// TestDifferentialWithRedis sends the same random command sequences,
// pipelined, in RESP2 and RESP3, to a real redis-server and to each store
// of storeKinds served as `diskcache serve` serves it (the engine's owner
// and forwarder, and the in-memory store), and wants every reply equal
// byte for byte (after normalize). Seeded: a failure names its store, its
// seed and the commands.
func TestDifferentialWithRedis(t *testing.T) {
	redisAddr := redistest.Redis(t)
	for _, kind := range storeKinds {
		t.Run(string(kind), func(t *testing.T) {
			differential(t, redisAddr, serveStore(t, kind, resp.Config{}).addr)
		})
	}
}

// differential runs TestDifferentialWithRedis's sequences against Redis at
// redisAddr and the server at ours.
func differential(t *testing.T, redisAddr, ours string) {
	seeds := 16
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			want, got := dialDiff(t, redisAddr), dialDiff(t, ours)
			for _, c := range []*diffConn{want, got} {
				c.pipeline([][]string{{"FLUSHALL"}, {"SCRIPT", "FLUSH"}})
				if seed%2 == 1 {
					// Odd seeds speak RESP3: nulls, maps (LCS IDX) and
					// script replies are written differently.
					c.pipeline([][]string{{"HELLO", "3"}})
				}
			}
			g := &diffGen{rng: rand.New(rand.NewPCG(uint64(seed), 18))}
			var history []string
			failures := 0
			for range 150 {
				block := g.block()
				w, o := want.pipeline(block), got.pipeline(block)
				for i, cmd := range block {
					history = append(history, fmt.Sprintf("%q", clipCmd(cmd)))
					if len(history) > 12 {
						history = history[1:]
					}
					if !equivalent(cmd, w[i], o[i]) {
						t.Errorf("seed %d: %q:\n Redis     %q\n diskcache %q\nlast commands:\n%s",
							seed, clipCmd(cmd), clipStr(w[i]), clipStr(o[i]), strings.Join(history, "\n"))
						if failures++; failures > 5 {
							t.FailNow()
						}
					}
				}
			}
		})
	}
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func clipStr(s string) string {
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func clipCmd(cmd []string) []string {
	out := make([]string, len(cmd))
	for i, a := range cmd {
		out[i] = clipStr(a)
	}
	return out
}

// diffConn is a connection that sends a pipeline and reads its replies.
type diffConn struct {
	t  testing.TB
	nc net.Conn
	rd *bufio.Reader
}

func dialDiff(t testing.TB, addr string) *diffConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &diffConn{t: t, nc: nc, rd: bufio.NewReaderSize(nc, 1<<16)}
}

// pipeline writes every command at once, then reads one reply each.
func (c *diffConn) pipeline(cmds [][]string) []string {
	c.t.Helper()
	var b strings.Builder
	for _, cmd := range cmds {
		b.WriteString(encode(cmd...))
	}
	c.nc.SetDeadline(time.Now().Add(60 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.nc.Write([]byte(b.String()))
		errc <- err
	}()
	out := make([]string, len(cmds))
	for i := range cmds {
		s, err := readReply(c.rd)
		if err != nil {
			c.t.Fatalf("reading the reply to %q: %v", clipCmd(cmds[i]), err)
		}
		out[i] = s
	}
	if err := <-errc; err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return out
}
