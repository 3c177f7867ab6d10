package resp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Scripting (EVAL, EVALSHA, SCRIPT) with gopher-lua, a Lua 5.1 in Go, as
// Redis embeds Lua 5.1. A script runs under the Server's exclusive lock,
// so it is atomic as a transaction is (see multi.go), and redis.call and
// redis.pcall reach the commands of this package's table, except those
// flagged noscript. The libraries are base, table, string and math;
// Redis's cjson, cmsgpack, bit and struct are not there.

// scriptCache holds the scripts by SHA1 and the one Lua state they run in.
// The state is only used under the Server's exclusive lock; mu guards the
// map against SCRIPT EXISTS and LOAD, which run under the shared lock.
type scriptCache struct {
	mu    sync.Mutex
	m     map[string]string // sha1 hex -> body
	state *lua.LState
	fns   map[string]*lua.LFunction // compiled, by sha1; used under the exclusive lock
}

// scriptRun is the script a connection is running.
type scriptRun struct {
	sha string
}

func sha1hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func (sc *scriptCache) add(body string) string {
	sha := sha1hex(body)
	sc.mu.Lock()
	sc.m[sha] = body
	sc.mu.Unlock()
	return sha
}

func (sc *scriptCache) get(sha string) (string, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	b, ok := sc.m[strings.ToLower(sha)]
	return b, ok
}

func (sc *scriptCache) len() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.m)
}

func (sc *scriptCache) flush() {
	sc.mu.Lock()
	sc.m = make(map[string]string)
	sc.mu.Unlock()
}

func cmdEval(c *conn, args [][]byte) error {
	name := lookup(args[0]).name
	var body, sha string
	if strings.HasPrefix(name, "evalsha") {
		var ok bool
		sha = strings.ToLower(string(args[1]))
		if body, ok = c.s.scripts.get(sha); !ok || len(sha) != 40 {
			return replyErr("NOSCRIPT No matching script. Please use EVAL.")
		}
	} else {
		body = string(args[1])
		sha = sha1hex(body)
	}
	numkeys, err := strconv.ParseInt(string(args[2]), 10, 64)
	switch {
	case err != nil:
		return errNotInt
	case numkeys > int64(len(args)-3):
		return replyErr("ERR Number of keys can't be greater than number of args")
	case numkeys < 0:
		return replyErr("ERR Number of keys can't be negative")
	}
	fn, err := c.s.compile(sha, body)
	if err != nil {
		return err
	}
	c.s.scripts.add(body)
	return c.runScript(fn, sha, args[3:3+numkeys], args[3+numkeys:], strings.HasSuffix(name, "_ro"))
}

// compile returns the script's function, compiled once.
func (s *Server) compile(sha, body string) (*lua.LFunction, error) {
	sc := &s.scripts
	if sc.state == nil {
		sc.state = newLuaState()
		sc.fns = make(map[string]*lua.LFunction)
	}
	if fn := sc.fns[sha]; fn != nil {
		return fn, nil
	}
	fn, err := sc.state.Load(strings.NewReader(body), "user_script")
	if err != nil {
		return nil, replyErr("ERR Error compiling script (new function): " + luaMessage(err))
	}
	sc.fns[sha] = fn
	return fn, nil
}

// luaMessage is the text of a Lua error without gopher-lua's stack trace.
func luaMessage(err error) string {
	var le *lua.ApiError
	if errors.As(err, &le) {
		msg := le.Object.String()
		if i := strings.Index(msg, "\nstack traceback:"); i >= 0 {
			msg = msg[:i]
		}
		return msg
	}
	return err.Error()
}

// newLuaState makes the state scripts run in: the safe libraries, the
// redis table, and globals protected as Redis protects them.
func newLuaState() *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, name := range []string{"dofile", "loadfile", "print", "module", "require"} {
		L.SetGlobal(name, lua.LNil)
	}
	// As in Redis, a script can neither read an undefined global (a typo
	// fails instead of reading nil) nor create one (scripts share the state).
	mt := L.NewTable()
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.Get(2).String())
		return 0
	}))
	L.SetField(mt, "__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Attempt to modify a readonly table")
		return 0
	}))
	L.SetMetatable(L.G.Global, mt)
	return L
}

// scriptState is what redis.call needs to reach the connection.
type scriptState struct {
	c  *conn
	ro bool
}

// runScript runs fn with KEYS and ARGV and writes its result as the reply.
func (c *conn) runScript(fn *lua.LFunction, sha string, keys, argv [][]byte, ro bool) error {
	L := c.s.scripts.state
	// Past Config.ScriptTimeout the script fails, where Redis would answer
	// BUSY to everyone until SCRIPT KILL.
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.ScriptTimeout)
	defer cancel()
	L.SetContext(ctx)
	defer L.RemoveContext()

	st := &scriptState{c: c, ro: ro}
	redis := L.NewTable()
	L.SetField(redis, "call", L.NewFunction(func(L *lua.LState) int { return st.call(L, true) }))
	L.SetField(redis, "pcall", L.NewFunction(func(L *lua.LState) int { return st.call(L, false) }))
	L.SetField(redis, "sha1hex", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(sha1hex(L.CheckString(1))))
		return 1
	}))
	L.SetField(redis, "status_reply", L.NewFunction(func(L *lua.LState) int {
		t := L.NewTable()
		L.SetField(t, "ok", lua.LString(L.CheckString(1)))
		L.Push(t)
		return 1
	}))
	L.SetField(redis, "error_reply", L.NewFunction(func(L *lua.LState) int {
		t := L.NewTable()
		L.SetField(t, "err", lua.LString(L.CheckString(1)))
		L.Push(t)
		return 1
	}))
	L.SetField(redis, "log", L.NewFunction(func(L *lua.LState) int { return 0 }))
	for name, v := range map[string]int{"LOG_DEBUG": 0, "LOG_VERBOSE": 1, "LOG_NOTICE": 2, "LOG_WARNING": 3} {
		L.SetField(redis, name, lua.LNumber(v))
	}
	g := L.G.Global
	g.RawSetString("redis", redis)
	g.RawSetString("KEYS", luaStrings(L, keys))
	g.RawSetString("ARGV", luaStrings(L, argv))

	c.script = &scriptRun{sha: sha}
	defer func() { c.script = nil }()
	L.Push(fn)
	err := L.PCall(0, 1, nil)
	if err != nil {
		var le *lua.ApiError
		if errors.As(err, &le) {
			if t, ok := le.Object.(*lua.LTable); ok {
				// A redis.call error: the command's error, then where.
				if e, ok := t.RawGetString("err").(lua.LString); ok {
					return replyErr(strings.TrimPrefix(string(e), "-") + " script: " + sha + ", on @user_script:" + t.RawGetString("line").String() + ".")
				}
			}
		}
		if ctx.Err() != nil && c.ctx.Err() == nil {
			return replyErr("ERR Script killed by timeout (" + c.s.cfg.ScriptTimeout.String() + ") script: " + sha)
		}
		msg := luaMessage(err)
		line := "?"
		if rest, ok := strings.CutPrefix(msg, "user_script:"); ok {
			if i := strings.IndexByte(rest, ':'); i > 0 {
				line = rest[:i]
			}
		}
		return replyErr("ERR " + msg + " script: " + sha + ", on @user_script:" + line + ".")
	}
	ret := L.Get(-1)
	L.Pop(1)
	c.writeLua(ret, 0)
	return nil
}

func luaStrings(L *lua.LState, bs [][]byte) *lua.LTable {
	t := L.CreateTable(len(bs), 0)
	for _, b := range bs {
		t.Append(lua.LString(b))
	}
	return t
}

// maxLuaDepth bounds the nesting of a script's reply, as Redis bounds it.
const maxLuaDepth = 1000

// writeLua writes a script's result as Redis converts Lua values.
func (c *conn) writeLua(v lua.LValue, depth int) {
	switch v := v.(type) {
	case lua.LNumber:
		c.w.int(int64(v))
	case lua.LString:
		c.w.bulk([]byte(v))
	case lua.LBool:
		if v {
			c.w.int(1)
		} else {
			c.w.null()
		}
	case *lua.LTable:
		if depth >= maxLuaDepth {
			c.w.error("ERR reached lua stack limit")
			return
		}
		if e, ok := v.RawGetString("err").(lua.LString); ok {
			c.w.error(strings.TrimPrefix(string(e), "-"))
			return
		}
		if s, ok := v.RawGetString("ok").(lua.LString); ok {
			c.w.simple(strings.NewReplacer("\r", " ", "\n", " ").Replace(string(s)))
			return
		}
		n := 0
		for v.RawGetInt(n+1) != lua.LNil {
			n++
		}
		c.w.array(n)
		for i := 1; i <= n; i++ {
			c.writeLua(v.RawGetInt(i), depth+1)
		}
	default:
		c.w.null()
	}
}

// call is redis.call (raise) and redis.pcall (return the error as a table).
func (st *scriptState) call(L *lua.LState, raise bool) int {
	c := st.c
	n := L.GetTop()
	fail := func(msg string) int {
		t := L.NewTable()
		L.SetField(t, "err", lua.LString(msg))
		if raise {
			L.SetField(t, "line", lua.LString(currentLine(L)))
			L.Error(t, 0)
			return 0
		}
		L.Push(t)
		return 1
	}
	if n == 0 {
		return fail("ERR Please specify at least one argument for this redis lib call")
	}
	args := make([][]byte, n)
	for i := 1; i <= n; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			args[i-1] = []byte(v)
		case lua.LNumber:
			args[i-1] = []byte(strconv.FormatFloat(float64(v), 'f', -1, 64))
			if float64(v) == float64(int64(v)) {
				args[i-1] = strconv.AppendInt(nil, int64(v), 10)
			}
		default:
			return fail("ERR Lua redis lib command arguments must be strings or integers")
		}
	}
	cmd := lookup(args[0])
	switch {
	case cmd == nil:
		return fail("ERR Unknown Redis command called from script")
	case !cmd.arityOK(len(args)):
		return fail("ERR Wrong number of args calling Redis command from script")
	case slices.Contains(cmd.flags, "noscript"):
		return fail("ERR This Redis command is not allowed from script")
	case st.ro && slices.Contains(cmd.flags, "write"):
		return fail("ERR Write commands are not allowed from read-only scripts.")
	}
	saved := c.w
	c.w = writer{proto: 2}
	c.exec(args)
	out := c.w.b
	c.w = saved
	v, _, err := luaReply(L, out)
	if err != nil {
		return fail("ERR " + err.Error())
	}
	if t, ok := v.(*lua.LTable); ok && raise {
		if e, ok := t.RawGetString("err").(lua.LString); ok {
			return fail(string(e))
		}
	}
	L.Push(v)
	return 1
}

// currentLine is the line of the script that called into Go.
func currentLine(L *lua.LState) string {
	if dbg, ok := L.GetStack(1); ok {
		if _, err := L.GetInfo("l", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
			return strconv.Itoa(dbg.CurrentLine)
		}
	}
	return "?"
}

// luaReply converts one RESP2 reply at the start of b into a Lua value as
// Redis does, and returns the bytes it used.
func luaReply(L *lua.LState, b []byte) (lua.LValue, int, error) {
	i := indexCRLF(b)
	if i < 1 {
		return lua.LNil, 0, errors.New("malformed reply from a command")
	}
	line, rest := string(b[1:i]), i+2
	switch b[0] {
	case '+':
		t := L.NewTable()
		L.SetField(t, "ok", lua.LString(line))
		return t, rest, nil
	case '-':
		t := L.NewTable()
		L.SetField(t, "err", lua.LString(line))
		return t, rest, nil
	case ':':
		n, err := strconv.ParseInt(line, 10, 64)
		return lua.LNumber(n), rest, err
	case '$':
		n, err := strconv.Atoi(line)
		if err != nil {
			return lua.LNil, 0, err
		}
		if n < 0 {
			return lua.LFalse, rest, nil
		}
		if rest+n+2 > len(b) {
			return lua.LNil, 0, errors.New("short bulk reply from a command")
		}
		return lua.LString(b[rest : rest+n]), rest + n + 2, nil
	case '*':
		n, err := strconv.Atoi(line)
		if err != nil {
			return lua.LNil, 0, err
		}
		if n < 0 {
			return lua.LFalse, rest, nil
		}
		t := L.CreateTable(n, 0)
		for range n {
			v, used, err := luaReply(L, b[rest:])
			if err != nil {
				return lua.LNil, 0, err
			}
			t.Append(v)
			rest += used
		}
		return t, rest, nil
	}
	return lua.LNil, 0, errors.New("unexpected reply type from a command")
}

func indexCRLF(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return i
		}
	}
	return -1
}

// cmdScript is SCRIPT LOAD, EXISTS, FLUSH and HELP.
func cmdScript(c *conn, args [][]byte) error {
	sub := args[1]
	switch {
	case equalFold(sub, "load"):
		if len(args) != 3 {
			return wrongArity("script|load")
		}
		body := string(args[2])
		sha := sha1hex(body)
		if _, err := c.s.compile(sha, body); err != nil {
			return err
		}
		c.s.scripts.add(body)
		c.w.bulkString(sha)
	case equalFold(sub, "exists"):
		if len(args) < 3 {
			return wrongArity("script|exists")
		}
		c.w.array(len(args) - 2)
		for _, a := range args[2:] {
			_, ok := c.s.scripts.get(string(a))
			c.w.int(b2i(ok))
		}
	case equalFold(sub, "flush"):
		if len(args) > 3 || (len(args) == 3 && !equalFold(args[2], "async") && !equalFold(args[2], "sync")) {
			return replyErr("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
		}
		c.s.scripts.flush()
		c.w.ok()
	case equalFold(sub, "help") && len(args) == 2:
		c.w.bulkStrings([]string{
			"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"EXISTS <sha1> [<sha1> ...]", "    Return information about the existence of the scripts in the script cache.",
			"FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache.",
			"LOAD <script>", "    Load a script into the scripts cache without executing it.",
			"HELP", "    Print this help.",
		})
	default:
		return unknownSubcommand("script", sub)
	}
	return nil
}
