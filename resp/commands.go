package resp

import (
	"sort"
	"strings"
)

// command is an entry of the command table, with what COMMAND reports.
type command struct {
	name   string
	arity  int // as Redis: n exactly, -n at least n (the name counts)
	flags  []string
	acl    []string // ACL categories, without '@'
	first  int      // first key argument, 0 for none
	last   int      // last key argument; -1: the last argument
	step   int
	noAuth bool // allowed before AUTH
	// excl: the command runs under the Server's exclusive lock (it reads
	// keys and writes them back, or runs other commands); exclIf decides
	// from the arguments instead.
	excl   bool
	exclIf func(args [][]byte) bool
	run    func(c *conn, args [][]byte) error
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// commands maps a command's name, in lower and in upper case, to its entry;
// commandNames lists the names in order. Both are set once by init and only
// read after.
var (
	commands     map[string]*command
	commandNames []string
)

func init() {
	ro, rw := []string{"readonly", "fast"}, []string{"write", "fast"}
	wm := []string{"write", "denyoom"}
	list := []*command{
		// connection and server
		{name: "ping", arity: -1, flags: []string{"fast"}, acl: []string{"fast", "connection"}, run: cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, acl: []string{"fast", "connection"}, run: cmdEcho},
		{name: "quit", arity: -1, flags: []string{"noscript", "fast", "no_auth"}, acl: []string{"fast", "connection"}, noAuth: true, run: cmdQuit},
		{name: "hello", arity: -1, flags: []string{"noscript", "fast", "no_auth"}, acl: []string{"fast", "connection"}, noAuth: true, run: cmdHello},
		{name: "auth", arity: -2, flags: []string{"noscript", "fast", "no_auth"}, acl: []string{"fast", "connection"}, noAuth: true, run: cmdAuth},
		{name: "reset", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, acl: []string{"fast", "connection"}, noAuth: true, run: cmdReset},
		{name: "select", arity: 2, flags: []string{"fast"}, acl: []string{"fast", "connection"}, run: cmdSelect},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"slow", "connection"}, run: cmdCommand},
		{name: "client", arity: -2, flags: []string{"noscript", "loading", "stale"}, acl: []string{"slow", "connection"}, run: cmdClient},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"slow", "dangerous"}, run: cmdInfo},
		{name: "config", arity: -2, flags: []string{"admin", "loading", "stale"}, acl: []string{"admin", "slow", "dangerous"}, run: cmdConfig},
		{name: "time", arity: 1, flags: []string{"loading", "stale", "fast"}, acl: []string{"fast"}, run: cmdTime},
		{name: "dbsize", arity: 1, flags: ro, acl: []string{"keyspace", "read", "fast"}, run: cmdDBSize},
		{name: "flushdb", arity: -1, flags: []string{"write"}, acl: []string{"keyspace", "write", "slow", "dangerous"}, run: cmdFlush},
		{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, acl: []string{"fast", "transaction"}, run: cmdMulti},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, acl: []string{"slow", "transaction"}, excl: true, run: cmdExec},
		{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, acl: []string{"fast", "transaction"}, run: cmdDiscard},
		{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, acl: []string{"fast", "transaction"}, first: 1, last: -1, step: 1, run: cmdWatch},
		{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, acl: []string{"fast", "transaction"}, run: cmdUnwatch},
		{name: "flushall", arity: -1, flags: []string{"write"}, acl: []string{"keyspace", "write", "slow", "dangerous"}, run: cmdFlush},

		// strings
		{name: "get", arity: 2, flags: ro, acl: []string{"read", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdGet},
		{name: "set", arity: -3, flags: wm, acl: []string{"write", "string", "slow"}, first: 1, last: 1, step: 1, run: cmdSet},
		{name: "setex", arity: 4, flags: wm, acl: []string{"write", "string", "slow"}, first: 1, last: 1, step: 1, run: cmdSetEx},
		{name: "psetex", arity: 4, flags: wm, acl: []string{"write", "string", "slow"}, first: 1, last: 1, step: 1, run: cmdSetEx},
		{name: "setnx", arity: 3, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdSetNX},
		{name: "getset", arity: 3, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdGetSet},
		{name: "getdel", arity: 2, flags: rw, acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdGetDel},
		{name: "getex", arity: -2, flags: rw, acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdGetEx},
		{name: "mget", arity: -2, flags: ro, acl: []string{"read", "string", "fast"}, first: 1, last: -1, step: 1, run: cmdMGet},
		{name: "mset", arity: -3, flags: wm, acl: []string{"write", "string", "slow"}, first: 1, last: -1, step: 2, run: cmdMSet},
		{name: "msetnx", arity: -3, flags: wm, acl: []string{"write", "string", "slow"}, first: 1, last: -1, step: 2, run: cmdMSet},
		{name: "incr", arity: 2, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "decr", arity: 2, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "incrby", arity: 3, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "decrby", arity: 3, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdIncr},
		{name: "append", arity: 3, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdAppend},
		{name: "strlen", arity: 2, flags: ro, acl: []string{"read", "string", "fast"}, first: 1, last: 1, step: 1, run: cmdStrlen},

		{name: "getrange", arity: 4, flags: []string{"readonly"}, acl: []string{"read", "string", "slow"}, first: 1, last: 1, step: 1, run: cmdGetRange},
		{name: "substr", arity: 4, flags: []string{"readonly"}, acl: []string{"read", "string", "slow"}, first: 1, last: 1, step: 1, run: cmdGetRange},
		{name: "setrange", arity: 4, flags: wm, acl: []string{"write", "string", "slow"}, first: 1, last: 1, step: 1, excl: true, run: cmdSetRange},
		{name: "getbit", arity: 3, flags: ro, acl: []string{"read", "bitmap", "fast"}, first: 1, last: 1, step: 1, run: cmdGetBit},
		{name: "setbit", arity: 4, flags: wm, acl: []string{"write", "bitmap", "slow"}, first: 1, last: 1, step: 1, excl: true, run: cmdSetBit},
		{name: "bitcount", arity: -2, flags: []string{"readonly"}, acl: []string{"read", "bitmap", "slow"}, first: 1, last: 1, step: 1, run: cmdBitCount},
		{name: "bitpos", arity: -3, flags: []string{"readonly"}, acl: []string{"read", "bitmap", "slow"}, first: 1, last: 1, step: 1, run: cmdBitPos},
		{name: "bitop", arity: -4, flags: []string{"write", "denyoom"}, acl: []string{"write", "bitmap", "slow"}, first: 2, last: -1, step: 1, excl: true, run: cmdBitOp},
		{name: "incrbyfloat", arity: 3, flags: append(wm, "fast"), acl: []string{"write", "string", "fast"}, first: 1, last: 1, step: 1, excl: true, run: cmdIncrByFloat},
		{name: "lcs", arity: -3, flags: []string{"readonly"}, acl: []string{"read", "string", "slow"}, first: 1, last: 2, step: 1, run: cmdLCS},

		// scripts
		{name: "eval", arity: -3, flags: []string{"noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys"}, acl: []string{"slow", "scripting"}, excl: true, run: cmdEval},
		{name: "evalsha", arity: -3, flags: []string{"noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys"}, acl: []string{"slow", "scripting"}, excl: true, run: cmdEval},
		{name: "eval_ro", arity: -3, flags: []string{"readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys"}, acl: []string{"slow", "scripting"}, excl: true, run: cmdEval},
		{name: "evalsha_ro", arity: -3, flags: []string{"readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys"}, acl: []string{"slow", "scripting"}, excl: true, run: cmdEval},
		{name: "script", arity: -2, flags: []string{"noscript"}, acl: []string{"slow", "scripting"}, excl: true, run: cmdScript},

		// keys
		{name: "rename", arity: 3, flags: []string{"write"}, acl: []string{"keyspace", "write", "slow"}, first: 1, last: 2, step: 1, excl: true, run: cmdRename},
		{name: "renamenx", arity: 3, flags: []string{"write", "fast"}, acl: []string{"keyspace", "write", "fast"}, first: 1, last: 2, step: 1, excl: true, run: cmdRename},
		{name: "copy", arity: -3, flags: []string{"write", "denyoom"}, acl: []string{"keyspace", "write", "slow"}, first: 1, last: 2, step: 1, excl: true, run: cmdCopy},
		{name: "randomkey", arity: 1, flags: []string{"readonly"}, acl: []string{"keyspace", "read", "slow"}, run: cmdRandomKey},
		{name: "object", arity: -2, flags: []string{"readonly"}, acl: []string{"keyspace", "read", "slow"}, first: 2, last: 2, step: 1, run: cmdObject},
		{name: "memory", arity: -2, flags: []string{"readonly"}, acl: []string{"read", "slow"}, first: 2, last: 2, step: 1, run: cmdMemory},
		{name: "del", arity: -2, flags: []string{"write"}, acl: []string{"keyspace", "write", "slow"}, first: 1, last: -1, step: 1, run: cmdDel},
		{name: "unlink", arity: -2, flags: rw, acl: []string{"keyspace", "write", "fast"}, first: 1, last: -1, step: 1, run: cmdDel},
		{name: "exists", arity: -2, flags: ro, acl: []string{"keyspace", "read", "fast"}, first: 1, last: -1, step: 1, run: cmdExists},
		{name: "touch", arity: -2, flags: ro, acl: []string{"keyspace", "read", "fast"}, first: 1, last: -1, step: 1, run: cmdExists},
		{name: "type", arity: 2, flags: ro, acl: []string{"keyspace", "read", "fast"}, first: 1, last: 1, step: 1, run: cmdType},
		{name: "expire", arity: -3, flags: rw, acl: []string{"keyspace", "write", "fast"}, first: 1, last: 1, step: 1, exclIf: withOptions(3), run: cmdExpire},
		{name: "pexpire", arity: -3, flags: rw, acl: []string{"keyspace", "write", "fast"}, first: 1, last: 1, step: 1, exclIf: withOptions(3), run: cmdExpire},
		{name: "expireat", arity: -3, flags: rw, acl: []string{"keyspace", "write", "fast"}, first: 1, last: 1, step: 1, exclIf: withOptions(3), run: cmdExpire},
		{name: "pexpireat", arity: -3, flags: rw, acl: []string{"keyspace", "write", "fast"}, first: 1, last: 1, step: 1, exclIf: withOptions(3), run: cmdExpire},
		{name: "persist", arity: 2, flags: rw, acl: []string{"keyspace", "write", "fast"}, first: 1, last: 1, step: 1, run: cmdPersist},
		{name: "ttl", arity: 2, flags: ro, acl: []string{"keyspace", "read", "fast"}, first: 1, last: 1, step: 1, run: cmdTTL},
		{name: "pttl", arity: 2, flags: ro, acl: []string{"keyspace", "read", "fast"}, first: 1, last: 1, step: 1, run: cmdTTL},
		{name: "expiretime", arity: 2, flags: ro, acl: []string{"keyspace", "read", "fast"}, first: 1, last: 1, step: 1, run: cmdTTL},
		{name: "pexpiretime", arity: 2, flags: ro, acl: []string{"keyspace", "read", "fast"}, first: 1, last: 1, step: 1, run: cmdTTL},
		{name: "scan", arity: -2, flags: []string{"readonly"}, acl: []string{"keyspace", "read", "slow"}, run: cmdScan},
		{name: "keys", arity: 2, flags: []string{"readonly"}, acl: []string{"keyspace", "read", "slow", "dangerous"}, run: cmdKeys},
	}
	commands = make(map[string]*command, 2*len(list))
	for _, cmd := range list {
		commands[cmd.name] = cmd
		commands[strings.ToUpper(cmd.name)] = cmd
		commandNames = append(commandNames, cmd.name)
	}
	sort.Strings(commandNames)
}

// withOptions is an exclIf for a command that reads before it writes when
// it has more than n arguments.
func withOptions(n int) func([][]byte) bool {
	return func(args [][]byte) bool { return len(args) > n }
}

// exclusive reports whether cmd with args must run alone.
func (cmd *command) exclusive(args [][]byte) bool {
	return cmd.excl || (cmd.exclIf != nil && cmd.exclIf(args))
}

// lookup returns the command named name in any case, or nil.
func lookup(name []byte) *command {
	if cmd := commands[string(name)]; cmd != nil { // no allocation
		return cmd
	}
	if len(name) > 32 {
		return nil
	}
	return commands[strings.ToLower(string(name))]
}

// writeInfo writes cmd as COMMAND and COMMAND INFO describe a command in
// Redis 7: name, arity, flags, first key, last key, step, ACL categories,
// tips, key specs, subcommands.
func (cmd *command) writeInfo(w *writer) {
	w.array(10)
	w.bulkString(cmd.name)
	w.int(int64(cmd.arity))
	w.setHeader(len(cmd.flags))
	for _, f := range cmd.flags {
		w.simple(f)
	}
	w.int(int64(cmd.first))
	w.int(int64(cmd.last))
	w.int(int64(cmd.step))
	w.setHeader(len(cmd.acl))
	for _, a := range cmd.acl {
		w.simple("@" + a)
	}
	w.setHeader(0)
	w.array(0)
	w.array(0)
}
