package resp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/diskcache-go/diskcache/resp"
)

// commandCase is a command-level test of the handler over a Store.
type commandCase struct {
	name string
	cfg  resp.Config // the server's configuration
	// bothProtocols runs the case twice, each time on a fresh server, with
	// c speaking RESP2 and then RESP3; otherwise once, c speaking RESP2.
	bothProtocols bool
	run           func(t *testing.T, ctx context.Context, ts *testServer, c *redis.Client)
}

// commandCases are resp's command tests. TestCommands runs every case on
// every store of storeKinds: the in-memory store, an engine Cache owning
// its directory and one forwarding to the owner, so a case added here runs
// on all three. Where a store answers otherwise, the case says so next to
// the check, naming the store (ts.kind) and why.
var commandCases = []commandCase{
	{name: "Connection", bothProtocols: true, run: connectionCommands},
	{name: "Hello", cfg: resp.Config{ServerName: "diskcache", Version: "1.2.3"}, run: hello},
	{name: "Auth", cfg: resp.Config{Password: "s3cret"}, run: auth},
	{name: "AuthWithoutPassword", run: authWithoutPassword},
	{name: "Strings", bothProtocols: true, run: stringCommands},
	{name: "Keys", bothProtocols: true, run: keyCommands},
	{name: "ScanAndKeys", bothProtocols: true, run: scanAndKeys},
	{name: "Info", bothProtocols: true, run: infoCommand},
	{name: "UnknownAndArity", run: unknownAndArity},
	{name: "ExecIsAtomic", run: execIsAtomic},
	{name: "Watch", run: watch},
	{name: "Scripts", cfg: resp.Config{ScriptTimeout: 200 * time.Millisecond}, run: scripts},
	{name: "KeyspaceExtras", run: keyspaceExtras},
	{name: "ParityWithRedis", run: parityWithRedis},
}

// TestCommands runs commandCases on every store: -run
// 'TestCommands/Strings/forwarder' picks one case on one store.
func TestCommands(t *testing.T) {
	for _, cc := range commandCases {
		t.Run(cc.name, func(t *testing.T) {
			for _, kind := range storeKinds {
				t.Run(string(kind), func(t *testing.T) {
					if !cc.bothProtocols {
						ts := serveStore(t, kind, cc.cfg)
						cc.run(t, context.Background(), ts, ts.client(t, 2))
						return
					}
					for _, proto := range []int{2, 3} {
						t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
							ts := serveStore(t, kind, cc.cfg)
							cc.run(t, context.Background(), ts, ts.client(t, proto))
						})
					}
				})
			}
		})
	}
}

// must fails the test if err is not nil.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// near checks a TTL set from a Unix time in seconds: up to 2s short.
func near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got > want || got < want-2*time.Second {
		t.Errorf("%s = %v, want about %v", what, got, want)
	}
}

func wantErr(t *testing.T, what string, err error, msg string) {
	t.Helper()
	if err == nil || err.Error() != msg {
		t.Errorf("%s: error %v, want %q", what, err, msg)
	}
}

func connectionCommands(t *testing.T, ctx context.Context, ts *testServer, c *redis.Client) {
	eq(t, "PING", c.Ping(ctx).Val(), "PONG")
	eq(t, "PING msg", c.Do(ctx, "PING", "hi").Val(), any("hi"))
	eq(t, "ECHO", c.Echo(ctx, "x y").Val(), "x y")
	must(t, c.Do(ctx, "SELECT", "0").Err())
	wantErr(t, "SELECT 1", c.Do(ctx, "SELECT", "1").Err(), "ERR DB index is out of range")
	wantErr(t, "SELECT x", c.Do(ctx, "SELECT", "x").Err(), "ERR value is not an integer or out of range")
	id := c.ClientID(ctx).Val()
	if id <= 0 {
		t.Errorf("CLIENT ID = %d", id)
	}
	eq[error](t, "CLIENT GETNAME unset", c.ClientGetName(ctx).Err(), redis.Nil)
	must(t, c.Do(ctx, "CLIENT", "SETNAME", "worker-1").Err())
	eq(t, "CLIENT GETNAME", c.ClientGetName(ctx).Val(), "worker-1")
	wantErr(t, "CLIENT SETNAME space", c.Do(ctx, "CLIENT", "SETNAME", "a b").Err(),
		"ERR Client names cannot contain spaces, newlines or special characters.")
	if info := c.Do(ctx, "CLIENT", "INFO").String(); !strings.Contains(info, "name=worker-1") {
		t.Errorf("CLIENT INFO = %s", info)
	}
	if list := c.ClientList(ctx).Val(); !strings.Contains(list, fmt.Sprintf("id=%d ", id)) {
		t.Errorf("CLIENT LIST = %s", list)
	}
	wantErr(t, "CLIENT foo", c.Do(ctx, "CLIENT", "FOO").Err(), "ERR unknown subcommand 'FOO'. Try CLIENT HELP.")
	wantErr(t, "CLIENT ID x", c.Do(ctx, "CLIENT", "ID", "x").Err(), "ERR wrong number of arguments for 'client|id' command")
	eq(t, "COMMAND COUNT", c.Do(ctx, "COMMAND", "COUNT").Val().(int64) > 40, true)
	cmds, err := c.Command(ctx).Result()
	must(t, err)
	if get := cmds["get"]; get == nil || get.Arity != 2 || get.FirstKeyPos != 1 || !get.ReadOnly {
		t.Errorf("COMMAND get = %+v", get)
	}
	must(t, c.Do(ctx, "COMMAND", "DOCS").Err())
	info := c.Do(ctx, "COMMAND", "INFO", "set", "nosuch").Val().([]any)
	eq(t, "COMMAND INFO len", len(info), 2)
	eq(t, "COMMAND INFO nosuch", info[1], nil)
	eq(t, "TIME", c.Time(ctx).Val().Sub(time.Now()).Abs() < time.Minute, true)
	cfg := c.ConfigGet(ctx, "save").Val()
	eq(t, "CONFIG GET save", fmt.Sprint(cfg), "map[save:]")
	eq(t, "CONFIG GET max*", len(c.ConfigGet(ctx, "max*").Val()), 3)
}

func hello(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	rc := ts.raw(t)
	eq(t, "HELLO 4", rc.do("HELLO", "4"), "-NOPROTO unsupported protocol version\r\n")
	eq(t, "HELLO x", rc.do("HELLO", "x"), "-ERR Protocol version is not an integer or out of range\r\n")
	eq(t, "HELLO 3 foo", rc.do("HELLO", "3", "foo"), "-ERR Syntax error in HELLO option 'foo'\r\n")
	r := rc.do("HELLO", "3", "SETNAME", "me")
	if !strings.HasPrefix(r, "%7\r\n$6\r\nserver\r\n$9\r\ndiskcache\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:3\r\n") {
		t.Errorf("HELLO 3 = %q", r)
	}
	eq(t, "GET missing in RESP3", rc.do("GET", "nope"), "_\r\n")
	eq(t, "CLIENT GETNAME", rc.do("CLIENT", "GETNAME"), "$2\r\nme\r\n")
	eq(t, "CONFIG GET in RESP3", rc.do("CONFIG", "GET", "appendonly"), "%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")
	if r := rc.do("HELLO"); !strings.Contains(r, "proto\r\n:3\r\n") {
		t.Errorf("HELLO without a version changed the protocol: %q", r)
	}
	if r := rc.do("HELLO", "2"); !strings.HasPrefix(r, "*14\r\n") {
		t.Errorf("HELLO 2 = %q", r)
	}
	eq(t, "GET missing in RESP2", rc.do("GET", "nope"), "$-1\r\n")
}

func auth(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	rc := ts.raw(t)
	eq(t, "GET before AUTH", rc.do("GET", "k"), "-NOAUTH Authentication required.\r\n")
	eq(t, "unknown before AUTH", rc.do("NOPE"), "-ERR unknown command 'NOPE', with args beginning with: \r\n")
	eq(t, "arity before AUTH", rc.do("GET"), "-ERR wrong number of arguments for 'get' command\r\n")
	eq(t, "HELLO 3 before AUTH", rc.do("HELLO", "3"), "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n")
	eq(t, "AUTH wrong", rc.do("AUTH", "nope"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	eq(t, "AUTH wrong user", rc.do("AUTH", "bob", "s3cret"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	eq(t, "AUTH too many", rc.do("AUTH", "a", "b", "c"), "-ERR syntax error\r\n")
	eq(t, "AUTH", rc.do("AUTH", "s3cret"), "+OK\r\n")
	eq(t, "GET after AUTH", rc.do("GET", "k"), "$-1\r\n")

	// HELLO AUTH authenticates too, and go-redis uses it.
	c := ts.client(t, 3, func(o *redis.Options) { o.Password = "s3cret" })
	must(t, c.Set(ctx, "k", "v", 0).Err())
	bad := ts.client(t, 3, func(o *redis.Options) { o.Password = "wrong" })
	if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v", err)
	}
	rc2 := ts.raw(t)
	if r := rc2.do("HELLO", "3", "AUTH", "default", "s3cret"); !strings.HasPrefix(r, "%7\r\n") {
		t.Errorf("HELLO 3 AUTH = %q", r)
	}
}

// authWithoutPassword: without a password, AUTH says so as Redis does.
func authWithoutPassword(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	eq(t, "AUTH without password", ts.raw(t).do("AUTH", "x"), "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n")
}

func stringCommands(t *testing.T, ctx context.Context, ts *testServer, c *redis.Client) {
	eq[error](t, "GET missing", c.Get(ctx, "k").Err(), redis.Nil)
	must(t, c.Set(ctx, "k", "v1", 0).Err())
	eq(t, "GET", c.Get(ctx, "k").Val(), "v1")
	must(t, c.Set(ctx, "empty", "", 0).Err())
	eq(t, "GET empty", c.Get(ctx, "empty").Err(), nil)

	// SET options.
	eq(t, "SET NX present", c.SetNX(ctx, "k", "v2", 0).Val(), false)
	eq(t, "SET XX missing", c.SetXX(ctx, "nope", "v", 0).Val(), false)
	eq(t, "SET XX present", c.SetXX(ctx, "k", "v2", 0).Val(), true)
	eq(t, "SET GET", c.SetArgs(ctx, "k", "v3", redis.SetArgs{Get: true}).Val(), "v2")
	eq(t, "SET NX GET", c.Do(ctx, "SET", "k", "v4", "NX", "GET").Val(), any("v3"))
	eq(t, "GET after NX GET", c.Get(ctx, "k").Val(), "v3")
	must(t, c.Set(ctx, "k", "v", 100*time.Second).Err())
	eq(t, "TTL after EX", c.TTL(ctx, "k").Val(), 100*time.Second)
	must(t, c.Do(ctx, "SET", "k", "v", "PX", "50000").Err())
	eq(t, "PTTL after PX", c.PTTL(ctx, "k").Val() > 49*time.Second, true)
	must(t, c.SetArgs(ctx, "k", "w", redis.SetArgs{KeepTTL: true}).Err())
	eq(t, "TTL after KEEPTTL", c.TTL(ctx, "k").Val(), 50*time.Second)
	must(t, c.Set(ctx, "k", "w", 0).Err())
	eq(t, "TTL after plain SET", c.TTL(ctx, "k").Val(), time.Duration(-1))
	at := time.Now().Add(time.Hour)
	must(t, c.Do(ctx, "SET", "k", "v", "EXAT", at.Unix()).Err())
	near(t, "TTL after EXAT", c.TTL(ctx, "k").Val(), time.Hour)
	must(t, c.Do(ctx, "SET", "k", "v", "PXAT", at.UnixMilli()).Err())
	eq(t, "TTL after PXAT", c.TTL(ctx, "k").Val(), time.Hour)
	must(t, c.Do(ctx, "SET", "gone", "v", "EXAT", "1").Err())
	eq(t, "EXISTS after EXAT in the past", c.Exists(ctx, "gone").Val(), int64(0))
	for _, bad := range [][]any{
		{"SET", "k", "v", "NX", "XX"}, {"SET", "k", "v", "EX", "10", "PX", "10"},
		{"SET", "k", "v", "KEEPTTL", "EX", "1"}, {"SET", "k", "v", "EX"}, {"SET", "k", "v", "FOO"},
		{"SET", "k", "v", "PERSIST"},
	} {
		wantErr(t, fmt.Sprint(bad), c.Do(ctx, bad...).Err(), "ERR syntax error")
	}
	wantErr(t, "SET EX 0", c.Do(ctx, "SET", "k", "v", "EX", "0").Err(), "ERR invalid expire time in 'set' command")
	wantErr(t, "SET EX x", c.Do(ctx, "SET", "k", "v", "EX", "x").Err(), "ERR value is not an integer or out of range")
	wantErr(t, "SET EX huge", c.Do(ctx, "SET", "k", "v", "EX", "9223372036854775").Err(), "ERR invalid expire time in 'set' command")
	wantErr(t, "SET arity", c.Do(ctx, "SET", "k").Err(), "ERR wrong number of arguments for 'set' command")

	// SETEX, PSETEX, SETNX, GETSET.
	must(t, c.SetEx(ctx, "k", "ex", 30*time.Second).Err())
	eq(t, "TTL after SETEX", c.TTL(ctx, "k").Val(), 30*time.Second)
	must(t, c.Do(ctx, "PSETEX", "k", "1500", "pex").Err())
	eq(t, "GET after PSETEX", c.Get(ctx, "k").Val(), "pex")
	wantErr(t, "SETEX 0", c.Do(ctx, "SETEX", "k", "0", "v").Err(), "ERR invalid expire time in 'setex' command")
	wantErr(t, "PSETEX -1", c.Do(ctx, "PSETEX", "k", "-1", "v").Err(), "ERR invalid expire time in 'psetex' command")
	eq(t, "SETNX present", c.Do(ctx, "SETNX", "k", "x").Val(), any(int64(0)))
	eq(t, "SETNX missing", c.Do(ctx, "SETNX", "new", "x").Val(), any(int64(1)))
	eq(t, "GETSET", c.GetSet(ctx, "new", "y").Val(), "x")
	eq(t, "GET after GETSET", c.Get(ctx, "new").Val(), "y")

	// GETDEL and GETEX.
	eq(t, "GETDEL", c.GetDel(ctx, "new").Val(), "y")
	eq[error](t, "GETDEL again", c.GetDel(ctx, "new").Err(), redis.Nil)
	must(t, c.Set(ctx, "g", "v", 0).Err())
	eq(t, "GETEX EX", c.GetEx(ctx, "g", 40*time.Second).Val(), "v")
	eq(t, "TTL after GETEX", c.TTL(ctx, "g").Val(), 40*time.Second)
	eq(t, "GETEX PERSIST", c.Do(ctx, "GETEX", "g", "PERSIST").Val(), any("v"))
	eq(t, "TTL after PERSIST", c.TTL(ctx, "g").Val(), time.Duration(-1))
	eq(t, "GETEX plain", c.Do(ctx, "GETEX", "g").Val(), any("v"))
	eq[error](t, "GETEX missing", c.Do(ctx, "GETEX", "nope", "EX", "0").Err(), redis.Nil)
	wantErr(t, "GETEX EX 0", c.Do(ctx, "GETEX", "g", "EX", "0").Err(), "ERR invalid expire time in 'getex' command")
	wantErr(t, "GETEX PERSIST EX", c.Do(ctx, "GETEX", "g", "PERSIST", "EX", "1").Err(), "ERR syntax error")
	wantErr(t, "GETEX NX", c.Do(ctx, "GETEX", "g", "NX").Err(), "ERR syntax error")
	eq(t, "GETEX EXAT past", c.Do(ctx, "GETEX", "g", "EXAT", "1").Val(), any("v"))
	eq(t, "EXISTS after GETEX EXAT past", c.Exists(ctx, "g").Val(), int64(0))

	// MGET, MSET, MSETNX.
	must(t, c.MSet(ctx, "a", "1", "b", "2").Err())
	eq(t, "MGET", fmt.Sprint(c.MGet(ctx, "a", "nope", "b", "empty").Val()), "[1 <nil> 2 ]")
	eq(t, "MSETNX some exist", c.MSetNX(ctx, "a", "x", "c", "3").Val(), false)
	eq(t, "EXISTS c", c.Exists(ctx, "c").Val(), int64(0))
	eq(t, "MSETNX none exist", c.MSetNX(ctx, "c", "3", "d", "4").Val(), true)
	wantErr(t, "MSET odd", c.Do(ctx, "MSET", "a", "1", "b").Err(), "ERR wrong number of arguments for 'mset' command")
	wantErr(t, "MSETNX odd", c.Do(ctx, "MSETNX", "a", "1", "b").Err(), "ERR wrong number of arguments for 'msetnx' command")

	// INCR and friends.
	eq(t, "INCR missing", c.Incr(ctx, "n").Val(), int64(1))
	eq(t, "INCRBY", c.IncrBy(ctx, "n", 41).Val(), int64(42))
	eq(t, "DECR", c.Decr(ctx, "n").Val(), int64(41))
	eq(t, "DECRBY", c.DecrBy(ctx, "n", 50).Val(), int64(-9))
	must(t, c.Set(ctx, "n", "9223372036854775807", 0).Err())
	wantErr(t, "INCR overflow", c.Incr(ctx, "n").Err(), "ERR increment or decrement would overflow")
	must(t, c.Set(ctx, "a", "x", 0).Err())
	wantErr(t, "INCR text", c.Incr(ctx, "a").Err(), "ERR value is not an integer or out of range")
	wantErr(t, "INCRBY x", c.Do(ctx, "INCRBY", "n", "x").Err(), "ERR value is not an integer or out of range")
	wantErr(t, "DECRBY min", c.Do(ctx, "DECRBY", "n", "-9223372036854775808").Err(), "ERR decrement would overflow")
	must(t, c.Set(ctx, "t", "5", time.Minute).Err())
	c.Incr(ctx, "t")
	eq(t, "TTL kept by INCR", c.TTL(ctx, "t").Val(), time.Minute)

	// APPEND and STRLEN.
	eq(t, "APPEND missing", c.Append(ctx, "s", "abc").Val(), int64(3))
	eq(t, "APPEND", c.Append(ctx, "s", "de").Val(), int64(5))
	eq(t, "GET appended", c.Get(ctx, "s").Val(), "abcde")
	eq(t, "STRLEN", c.StrLen(ctx, "s").Val(), int64(5))
	eq(t, "STRLEN missing", c.StrLen(ctx, "nope").Val(), int64(0))
}

func keyCommands(t *testing.T, ctx context.Context, ts *testServer, c *redis.Client) {
	must(t, c.MSet(ctx, "a", "1", "b", "2", "c", "3").Err())
	eq(t, "EXISTS", c.Exists(ctx, "a", "a", "nope", "b").Val(), int64(3))
	eq(t, "TOUCH", c.Touch(ctx, "a", "nope").Val(), int64(1))
	eq(t, "TYPE", c.Type(ctx, "a").Val(), "string")
	eq(t, "TYPE missing", c.Type(ctx, "nope").Val(), "none")
	eq(t, "DEL", c.Del(ctx, "a", "nope", "a").Val(), int64(1))
	eq(t, "UNLINK", c.Unlink(ctx, "b").Val(), int64(1))
	eq(t, "DBSIZE", c.DBSize(ctx).Val(), int64(1))

	// Expiry.
	eq(t, "TTL missing", c.TTL(ctx, "nope").Val(), time.Duration(-2))
	eq(t, "PTTL missing", c.PTTL(ctx, "nope").Val(), time.Duration(-2))
	eq(t, "TTL none", c.TTL(ctx, "c").Val(), time.Duration(-1))
	eq(t, "EXPIRE missing", c.Expire(ctx, "nope", time.Minute).Val(), false)
	eq(t, "EXPIRE", c.Expire(ctx, "c", time.Minute).Val(), true)
	eq(t, "TTL", c.TTL(ctx, "c").Val(), time.Minute)
	eq(t, "PEXPIRE", c.PExpire(ctx, "c", 90*time.Second).Val(), true)
	eq(t, "PTTL", c.PTTL(ctx, "c").Val() > 89*time.Second, true)
	at := time.Now().Add(2 * time.Hour)
	eq(t, "EXPIREAT", c.ExpireAt(ctx, "c", at).Val(), true)
	near(t, "TTL after EXPIREAT", c.TTL(ctx, "c").Val(), 2*time.Hour)
	eq(t, "EXPIRETIME", c.ExpireTime(ctx, "c").Val(), time.Duration(at.Unix())*time.Second)
	eq(t, "PEXPIREAT", c.PExpireAt(ctx, "c", at.Add(time.Hour)).Val(), true)
	near(t, "TTL after PEXPIREAT", c.TTL(ctx, "c").Val(), 3*time.Hour)
	eq(t, "PERSIST", c.Persist(ctx, "c").Val(), true)
	eq(t, "PERSIST again", c.Persist(ctx, "c").Val(), false)
	eq(t, "EXPIRETIME none", c.ExpireTime(ctx, "c").Val(), time.Duration(-1))

	// NX, XX, GT, LT.
	eq(t, "EXPIRE XX without TTL", c.ExpireXX(ctx, "c", time.Minute).Val(), false)
	eq(t, "EXPIRE NX without TTL", c.ExpireNX(ctx, "c", time.Minute).Val(), true)
	eq(t, "EXPIRE NX with TTL", c.ExpireNX(ctx, "c", time.Hour).Val(), false)
	eq(t, "EXPIRE GT smaller", c.ExpireGT(ctx, "c", 30*time.Second).Val(), false)
	eq(t, "EXPIRE GT larger", c.ExpireGT(ctx, "c", time.Hour).Val(), true)
	eq(t, "EXPIRE LT larger", c.ExpireLT(ctx, "c", 2*time.Hour).Val(), false)
	eq(t, "EXPIRE LT smaller", c.ExpireLT(ctx, "c", time.Minute).Val(), true)
	eq(t, "TTL after options", c.TTL(ctx, "c").Val(), time.Minute)
	wantErr(t, "EXPIRE NX XX", c.Do(ctx, "EXPIRE", "c", "10", "NX", "XX").Err(), "ERR NX and XX, GT or LT options at the same time are not compatible")
	wantErr(t, "EXPIRE GT LT", c.Do(ctx, "EXPIRE", "c", "10", "GT", "LT").Err(), "ERR GT and LT options at the same time are not compatible")
	wantErr(t, "EXPIRE foo", c.Do(ctx, "EXPIRE", "c", "10", "foo").Err(), "ERR Unsupported option foo")
	wantErr(t, "EXPIRE huge", c.Do(ctx, "EXPIRE", "c", "99999999999999999").Err(), "ERR invalid expire time in 'expire' command")
	wantErr(t, "EXPIRE x", c.Do(ctx, "EXPIRE", "c", "x").Err(), "ERR value is not an integer or out of range")
	eq(t, "EXPIRE -1 deletes", c.Do(ctx, "EXPIRE", "c", "-1").Val(), any(int64(1)))
	eq(t, "EXISTS after EXPIRE -1", c.Exists(ctx, "c").Val(), int64(0))

	// Lazy expiry through the store's clock.
	now := time.Now()
	ts.clock.set(func() time.Time { return now })
	must(t, c.Set(ctx, "soon", "v", 10*time.Second).Err())
	ts.clock.set(func() time.Time { return now.Add(11 * time.Second) })
	eq[error](t, "GET expired", c.Get(ctx, "soon").Err(), redis.Nil)
	ts.clock.set(time.Now)

	// FLUSHDB, FLUSHALL.
	must(t, c.Set(ctx, "x", "1", 0).Err())
	must(t, c.FlushDB(ctx).Err())
	eq(t, "DBSIZE after FLUSHDB", c.DBSize(ctx).Val(), int64(0))
	must(t, c.Set(ctx, "x", "1", 0).Err())
	must(t, c.FlushAllAsync(ctx).Err())
	eq(t, "DBSIZE after FLUSHALL ASYNC", c.DBSize(ctx).Val(), int64(0))
	wantErr(t, "FLUSHDB foo", c.Do(ctx, "FLUSHDB", "foo").Err(), "ERR syntax error")
}

func scanAndKeys(t *testing.T, ctx context.Context, ts *testServer, c *redis.Client) {
	var want []string
	for i := range 250 {
		k := fmt.Sprintf("user:%03d", i)
		want = append(want, k)
		must(t, c.Set(ctx, k, "v", 0).Err())
	}
	must(t, c.Set(ctx, "other", "v", 0).Err())
	var got []string
	iter := c.Scan(ctx, 0, "user:*", 17).Iterator()
	for iter.Next(ctx) {
		got = append(got, iter.Val())
	}
	must(t, iter.Err())
	slices.Sort(got)
	got = slices.Compact(got)
	eq(t, "SCAN MATCH", strings.Join(got, ","), strings.Join(want, ","))
	keys, cur, err := c.ScanType(ctx, 0, "", 1000, "hash").Result()
	must(t, err)
	eq(t, "SCAN TYPE hash", fmt.Sprint(keys, cur), "[] 0")
	keys, _, err = c.ScanType(ctx, 0, "oth*", 1000, "string").Result()
	must(t, err)
	eq(t, "SCAN TYPE string", fmt.Sprint(keys), "[other]")
	wantErr(t, "SCAN x", c.Do(ctx, "SCAN", "x").Err(), "ERR invalid cursor")
	wantErr(t, "SCAN COUNT 0", c.Do(ctx, "SCAN", "0", "COUNT", "0").Err(), "ERR syntax error")
	wantErr(t, "SCAN foo", c.Do(ctx, "SCAN", "0", "foo").Err(), "ERR syntax error")
	wantErr(t, "SCAN MATCH", c.Do(ctx, "SCAN", "0", "MATCH").Err(), "ERR syntax error")

	keys, err = c.Keys(ctx, "user:00?").Result()
	must(t, err)
	slices.Sort(keys)
	eq(t, "KEYS", strings.Join(keys, ","), strings.Join(want[:10], ","))
	eq(t, "KEYS *", len(c.Keys(ctx, "*").Val()), 251)
	eq(t, "KEYS class", fmt.Sprint(c.Keys(ctx, "[o]ther").Val()), "[other]")
}

func infoCommand(t *testing.T, ctx context.Context, ts *testServer, c *redis.Client) {
	must(t, c.Set(ctx, "k", "v", time.Minute).Err())
	c.Get(ctx, "k")
	c.Get(ctx, "nope")
	all := c.Info(ctx).Val()
	wants := []string{
		"# Server\r\nredis_version:7.0.0\r\n", "server_name:diskcache\r\n",
		"# Clients\r\nconnected_clients:1\r\n", "# Persistence\r\nloading:0\r\n",
		"# Stats\r\n", "keyspace_hits:1\r\n", "keyspace_misses:1\r\n",
	}
	switch ts.kind {
	case memoryStore:
		wants = append(wants, "store:memory\r\n", "# Keyspace\r\ndb0:keys=1,expires=1,avg_ttl=0\r\n")
	default:
		// The engine reports its own figures, a forwarder the owner's
		// counts included. It counts keys but not those with an expiry.
		wants = append(wants, "diskcache_durability:process-crash-safe\r\n", "diskcache_sets:1\r\n",
			"# Keyspace\r\ndb0:keys=1\r\n")
	}
	for _, want := range wants {
		if !strings.Contains(all, want) {
			t.Errorf("INFO lacks %q:\n%s", want, all)
		}
	}
	clients := c.Info(ctx, "clients").Val()
	if strings.Contains(clients, "# Server") || !strings.Contains(clients, "maxclients:10000") {
		t.Errorf("INFO clients = %s", clients)
	}
	eq(t, "INFO nosuch", c.Info(ctx, "nosuch").Val(), "")
}

func unknownAndArity(t *testing.T, ctx context.Context, ts *testServer, _ *redis.Client) {
	rc := ts.raw(t)
	eq(t, "unknown", rc.do("FOO", "bar", "baz"), "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n")
	long := strings.Repeat("x", 200)
	eq(t, "unknown long", rc.do("foo", long, "y"), "-ERR unknown command 'foo', with args beginning with: '"+long[:128]+"' \r\n")
	eq(t, "empty", rc.do(""), "-ERR unknown command '', with args beginning with: \r\n")
	eq(t, "newline", rc.do("a\r\nb"), "-ERR unknown command 'a  b', with args beginning with: \r\n")
	eq(t, "arity", rc.do("GET", "a", "b"), "-ERR wrong number of arguments for 'get' command\r\n")
	eq(t, "arity min", rc.do("mset"), "-ERR wrong number of arguments for 'mset' command\r\n")
	eq(t, "case", rc.do("gEt", "a"), "$-1\r\n")
	// Inline commands, as typed into telnet.
	rc.send("SET k \"hello world\"\r\nGET k\r\n")
	eq(t, "inline SET", rc.reply(), "+OK\r\n")
	eq(t, "inline GET", rc.reply(), "$11\r\nhello world\r\n")
	eq(t, "QUIT", rc.do("QUIT"), "+OK\r\n")
	rc.expectClosed()
}
