package resp_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/resp"
)

// execIsAtomic runs transactions that keep two keys equal against
// readers of both: no reader may see one incremented without the other.
func execIsAtomic(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	const writers, rounds = 4, 200
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ts.client(t, 2)
			for range rounds {
				_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Incr(ctx, "a")
					p.Incr(ctx, "b")
					return nil
				})
				if err != nil {
					t.Errorf("transaction: %v", err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	var rg sync.WaitGroup
	rg.Add(1)
	go func() {
		defer rg.Done()
		c := ts.client(t, 2)
		for {
			select {
			case <-done:
				return
			default:
			}
			v, err := c.MGet(ctx, "a", "b").Result()
			if err != nil {
				t.Errorf("MGET: %v", err)
				return
			}
			if v[0] != v[1] {
				t.Errorf("MGET saw a transaction half done: a=%v b=%v", v[0], v[1])
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	rg.Wait()
	c := ts.client(t, 2)
	if n, _ := c.Get(ctx, "a").Int(); n != writers*rounds {
		t.Errorf("a = %d, want %d", n, writers*rounds)
	}
}

// watch checks that EXEC aborts when another client, or this one,
// writes a watched key, even with the same value, and not otherwise.
func watch(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	c, other := ts.client(t, 2), ts.client(t, 3)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	run := func(between func()) error {
		return c.Watch(ctx, func(tx *redis.Tx) error {
			between()
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "k", "mine", 0)
				return nil
			})
			return err
		}, "k")
	}
	if err := run(func() {}); err != nil {
		t.Fatalf("no write in between: %v", err)
	}
	if err := run(func() { other.Set(ctx, "k", "mine", 0) }); !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("same-value write by another client: %v, want %v", err, redis.TxFailedErr)
	}
	if err := run(func() { other.Get(ctx, "k") }); err != nil {
		t.Fatalf("a read in between: %v", err)
	}
	if err := run(func() { other.Expire(ctx, "k", time.Hour) }); !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXPIRE by another client: %v, want %v", err, redis.TxFailedErr)
	}
	// A write straight to the Store, as another process of the directory
	// makes, is seen by comparison.
	must(t, ts.elsewhere(ctx, "k", []byte("elsewhere")))
	if err := run(func() { must(t, ts.elsewhere(ctx, "k", []byte("changed"))) }); !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("write by another process: %v, want %v", err, redis.TxFailedErr)
	}
}

func scripts(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	c := ts.client(t, 2)
	rc := ts.raw(t)

	// redis-py's Lock, through go-redis's script helper (EVALSHA, then EVAL).
	release := redis.NewScript(lockRelease)
	c.Set(ctx, "lock", "tok", time.Minute)
	if n, err := release.Run(ctx, c, []string{"lock"}, "other").Int(); err != nil || n != 0 {
		t.Fatalf("release with the wrong token: %d, %v", n, err)
	}
	if n, err := release.Run(ctx, c, []string{"lock"}, "tok").Int(); err != nil || n != 1 {
		t.Fatalf("release: %d, %v", n, err)
	}
	if n, _ := c.Exists(ctx, "lock").Result(); n != 0 {
		t.Fatal("the lock is still there after release")
	}
	sha, err := c.ScriptLoad(ctx, "return ARGV[1]").Result()
	if err != nil || sha != sha1Hex("return ARGV[1]") {
		t.Fatalf("SCRIPT LOAD: %q, %v", sha, err)
	}
	if got := rc.do("EVALSHA", strings.ToUpper(sha), "0", "x"); got != "$1\r\nx\r\n" {
		t.Errorf("EVALSHA: %q", got)
	}
	if got := rc.do("SCRIPT", "FLUSH"); got != "+OK\r\n" {
		t.Errorf("SCRIPT FLUSH: %q", got)
	}
	if got := rc.do("EVALSHA", sha, "0"); !strings.HasPrefix(got, "-NOSCRIPT") {
		t.Errorf("EVALSHA after FLUSH: %q", got)
	}
	// A runaway script fails after ScriptTimeout and the server goes on.
	if got := rc.do("EVAL", "while true do end", "0"); !strings.HasPrefix(got, "-ERR Script killed by timeout") {
		t.Errorf("runaway script: %q", got)
	}
	if got := rc.do("EVAL", "return redis.call('SET', 'w', '1')", "0"); got != "+OK\r\n" {
		t.Errorf("a script after the runaway one: %q", got)
	}
	if got := rc.do("EVAL_RO", "return redis.call('SET', 'w', '1')", "0"); !strings.HasPrefix(got, "-ERR Write commands are not allowed from read-only scripts.") {
		t.Errorf("a write from EVAL_RO: %q", got)
	}
	if got := rc.do("EVAL", "return redis.call('EVAL', 'return 1', '0')", "0"); !strings.HasPrefix(got, "-ERR This Redis command is not allowed from script") {
		t.Errorf("EVAL from a script: %q", got)
	}
}

func keyspaceExtras(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	rc := ts.raw(t)
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"RANDOMKEY"}, "$-1\r\n"},
		{[]string{"SET", "only", "12"}, "+OK\r\n"},
		{[]string{"RANDOMKEY"}, "$4\r\nonly\r\n"},
		{[]string{"OBJECT", "ENCODING", "only"}, "$3\r\nint\r\n"},
		{[]string{"OBJECT", "ENCODING", "nope"}, "$-1\r\n"},
		{[]string{"OBJECT", "FREQ", "only"}, "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n"},
		{[]string{"OBJECT", "REFCOUNT", "only"}, ":1\r\n"},
		{[]string{"MEMORY", "USAGE", "only"}, ":62\r\n"},
		{[]string{"MEMORY", "USAGE", "nope"}, "$-1\r\n"},
		{[]string{"MULTI"}, "+OK\r\n"},
		{[]string{"RESET"}, "+RESET\r\n"},
		{[]string{"EXEC"}, "-ERR EXEC without MULTI\r\n"},
		{[]string{"LPUSH", "l", "x"}, "-ERR unknown command 'LPUSH', with args beginning with: 'l' 'x' \r\n"},
	} {
		if got := rc.do(tc.cmd...); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.cmd, got, tc.want)
		}
	}
}

// TestExecAtomicAcrossProcesses runs transactions on a served engine cache
// that owns its directory while another Cache of the directory (a
// forwarder, as another process would be) writes the keys they read with
// MSET: no transaction may see one key written without the other.
func TestExecAtomicAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	owner, err := engine.Open(dir, &engine.Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	other, err := engine.Open(dir, &engine.Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if !owner.IsOwner() || other.IsOwner() {
		t.Fatalf("want the first Cache to own %s and the second to forward (owner %v, other %v)", dir, owner.IsOwner(), other.IsOwner())
	}
	ts := serveCache(t, owner, resp.Config{})
	ctx := context.Background()

	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
			v := []byte(strconv.Itoa(i))
			if err := other.SetMany(ctx, []engine.Entry{{Key: "a", Value: v}, {Key: "b", Value: v}}); err != nil {
				wrote <- err
				return
			}
		}
	}()
	c := ts.client(t, 2)
	for range 300 {
		var a, b *redis.StringCmd
		if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			a, b = p.Get(ctx, "a"), p.Get(ctx, "b")
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("transaction: %v", err)
		}
		if a.Val() != b.Val() {
			t.Fatalf("a transaction saw another process's MSET half done: a=%q b=%q", a.Val(), b.Val())
		}
	}
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatalf("SetMany from the other Cache: %v", err)
	}
}
