package resp

import (
	"crypto/subtle"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func cmdPing(c *conn, args [][]byte) error {
	switch len(args) {
	case 1:
		c.w.simple("PONG")
	case 2:
		c.w.bulk(args[1])
	default:
		return wrongArity("ping")
	}
	return nil
}

func cmdEcho(c *conn, args [][]byte) error {
	c.w.bulk(args[1])
	return nil
}

func cmdQuit(c *conn, args [][]byte) error {
	c.w.ok()
	c.quit = true
	return nil
}

func cmdTime(c *conn, args [][]byte) error {
	now := time.Now()
	c.w.array(2)
	c.w.bulkString(strconv.FormatInt(now.Unix(), 10))
	c.w.bulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
	return nil
}

// authenticate checks a user name and password as Redis checks the default
// user's: only "default" exists, and without Config.Password any password
// is right for it.
func (c *conn) authenticate(user, pass []byte) error {
	want := c.s.cfg.Password
	if string(user) != "default" || (want != "" && subtle.ConstantTimeCompare(pass, []byte(want)) != 1) {
		return errWrongPass
	}
	c.authed = true
	return nil
}

func cmdAuth(c *conn, args [][]byte) error {
	switch len(args) {
	case 2:
		if c.s.cfg.Password == "" {
			return errNoPassword
		}
		return c.authenticated(c.authenticate([]byte("default"), args[1]))
	case 3:
		return c.authenticated(c.authenticate(args[1], args[2]))
	}
	return errSyntax
}

func (c *conn) authenticated(err error) error {
	if err == nil {
		c.w.ok()
	}
	return err
}

func cmdHello(c *conn, args [][]byte) error {
	proto := 0
	i := 1
	if len(args) >= 2 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return replyErr("ERR Protocol version is not an integer or out of range")
		}
		if v < 2 || v > 3 {
			return errNoProto
		}
		proto = int(v)
		i = 2
	}
	var user, pass, name []byte
	for ; i < len(args); i++ {
		more := len(args) - 1 - i
		switch {
		case equalFold(args[i], "auth") && more >= 2:
			user, pass = args[i+1], args[i+2]
			i += 2
		case equalFold(args[i], "setname") && more >= 1:
			name = args[i+1]
			i++
		default:
			return replyErr("ERR Syntax error in HELLO option '" + clip(args[i], 128) + "'")
		}
	}
	if user != nil {
		if err := c.authenticate(user, pass); err != nil {
			return err
		}
	}
	if !c.authed {
		return errHelloNoAuth
	}
	if name != nil {
		if err := c.setName(name); err != nil {
			return err
		}
	}
	if proto != 0 {
		c.w.proto = proto
		c.proto.Store(int32(proto))
	}
	c.w.mapHeader(7)
	c.w.bulkString("server")
	c.w.bulkString(c.s.cfg.ServerName)
	c.w.bulkString("version")
	c.w.bulkString(RedisVersion)
	c.w.bulkString("proto")
	c.w.int(int64(c.w.proto))
	c.w.bulkString("id")
	c.w.int(int64(c.id))
	c.w.bulkString("mode")
	c.w.bulkString("standalone")
	c.w.bulkString("role")
	c.w.bulkString("master")
	c.w.bulkString("modules")
	c.w.array(0)
	return nil
}

func cmdSelect(c *conn, args [][]byte) error {
	db, err := strconv.ParseInt(string(args[1]), 10, 64)
	if err != nil {
		return errNotInt
	}
	if db != 0 {
		return errDBIndex
	}
	c.w.ok()
	return nil
}

func cmdDBSize(c *conn, args [][]byte) error {
	n, err := c.s.store.Len(c.ctx)
	if err != nil {
		return err
	}
	c.w.int(n)
	return nil
}

// cmdFlush is FLUSHDB and FLUSHALL [ASYNC|SYNC]; both clear the one
// database.
func cmdFlush(c *conn, args [][]byte) error {
	if len(args) > 2 || (len(args) == 2 && !equalFold(args[1], "async") && !equalFold(args[1], "sync")) {
		return errSyntax
	}
	if err := c.modifiedIfPresent(c.s.watchedKeys()); err != nil {
		return err
	}
	if err := c.s.store.Clear(c.ctx); err != nil {
		return err
	}
	c.w.ok()
	return nil
}

func cmdCommand(c *conn, args [][]byte) error {
	if len(args) == 1 {
		c.w.array(len(commandNames))
		for _, name := range commandNames {
			commands[name].writeInfo(&c.w)
		}
		return nil
	}
	sub := args[1]
	switch {
	case equalFold(sub, "count") && len(args) == 2:
		c.w.int(int64(len(commandNames)))
	case equalFold(sub, "list") && len(args) == 2:
		c.w.bulkStrings(commandNames)
	case equalFold(sub, "info"):
		names := args[2:]
		if len(names) == 0 {
			return cmdCommand(c, args[:1])
		}
		c.w.array(len(names))
		for _, name := range names {
			if cmd := lookup(name); cmd != nil {
				cmd.writeInfo(&c.w)
			} else {
				c.w.null()
			}
		}
	case equalFold(sub, "docs"):
		// No documentation: redis-cli then goes without hints.
		c.w.mapHeader(0)
	case equalFold(sub, "help") && len(args) == 2:
		c.w.bulkStrings([]string{
			"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"(no subcommand)", "    Return details about all commands.",
			"COUNT", "    Return the total number of commands in this server.",
			"LIST", "    Return a list of all commands in this server.",
			"INFO [<command-name> ...]", "    Return details about multiple commands.",
			"DOCS [<command-name> ...]", "    Return documentation details about multiple commands (none here).",
			"HELP", "    Print this help.",
		})
	case equalFold(sub, "count"), equalFold(sub, "list"), equalFold(sub, "help"):
		return wrongArity("command|" + strings.ToLower(string(sub)))
	default:
		return unknownSubcommand("command", sub)
	}
	return nil
}

// setName sets the connection's name after Redis's rule: printable ASCII
// without spaces; "" removes it.
func (c *conn) setName(name []byte) error {
	for _, b := range name {
		if b < '!' || b > '~' {
			return errClientName
		}
	}
	s := string(name)
	c.name.Store(&s)
	return nil
}

func loadString(p interface{ Load() *string }) string {
	if s := p.Load(); s != nil {
		return *s
	}
	return ""
}

// describe is the connection's line in CLIENT LIST and CLIENT INFO.
func (c *conn) describe(now time.Time) string {
	return fmt.Sprintf("id=%d addr=%s laddr=%s name=%s age=%d idle=%d flags=N db=0 resp=%d lib-name=%s lib-ver=%s\n",
		c.id, c.addr, c.laddr, loadString(&c.name),
		int64(now.Sub(c.created).Seconds()),
		int64(now.Sub(time.Unix(0, c.lastCmd.Load())).Seconds()),
		c.proto.Load(), loadString(&c.libName), loadString(&c.libVer))
}

func cmdClient(c *conn, args [][]byte) error {
	sub := args[1]
	arity := func(n int) error {
		if len(args) != n {
			return wrongArity("client|" + strings.ToLower(string(sub)))
		}
		return nil
	}
	switch {
	case equalFold(sub, "id"):
		if err := arity(2); err != nil {
			return err
		}
		c.w.int(int64(c.id))
	case equalFold(sub, "setname"):
		if err := arity(3); err != nil {
			return err
		}
		if err := c.setName(args[2]); err != nil {
			return err
		}
		c.w.ok()
	case equalFold(sub, "getname"):
		if err := arity(2); err != nil {
			return err
		}
		if name := loadString(&c.name); name != "" {
			c.w.bulkString(name)
		} else {
			c.w.null()
		}
	case equalFold(sub, "info"):
		if err := arity(2); err != nil {
			return err
		}
		c.w.bulkString(c.describe(time.Now()))
	case equalFold(sub, "list"):
		if len(args) > 2 && !(len(args) == 4 && equalFold(args[2], "type") && equalFold(args[3], "normal")) {
			return errSyntax
		}
		var b strings.Builder
		now := time.Now()
		for _, o := range c.s.clients() {
			b.WriteString(o.describe(now))
		}
		c.w.bulkString(b.String())
	case equalFold(sub, "setinfo"):
		if err := arity(4); err != nil {
			return err
		}
		for _, ch := range args[3] {
			if ch < '!' || ch > '~' {
				return replyErr("ERR " + strings.ToUpper(string(args[2])) + " cannot contain spaces, newlines or special characters.")
			}
		}
		v := string(args[3])
		switch {
		case equalFold(args[2], "lib-name"):
			c.libName.Store(&v)
		case equalFold(args[2], "lib-ver"):
			c.libVer.Store(&v)
		default:
			return replyErr("ERR Unrecognized option '" + clip(args[2], 128) + "'")
		}
		c.w.ok()
	case equalFold(sub, "no-evict"), equalFold(sub, "no-touch"):
		// Accepted for clients that send them; they change nothing here.
		if err := arity(3); err != nil {
			return err
		}
		if !equalFold(args[2], "on") && !equalFold(args[2], "off") {
			return errSyntax
		}
		c.w.ok()
	case equalFold(sub, "help"):
		c.w.bulkStrings([]string{
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ID", "    Return the ID of the current connection.",
			"GETNAME", "    Return the name of the current connection.",
			"SETNAME <name>", "    Assign the name <name> to the current connection.",
			"INFO", "    Return information about the current client connection.",
			"LIST [TYPE NORMAL]", "    Return information about client connections.",
			"SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
			"HELP", "    Print this help.",
		})
	default:
		return unknownSubcommand("client", sub)
	}
	return nil
}

// configParams are what CONFIG GET reports, for clients and tools (such as
// redis-benchmark) that ask.
func (s *Server) configParams() [][2]string {
	return [][2]string{
		{"appendonly", "no"},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(s.cfg.MaxClients)},
		{"maxmemory", "0"},
		{"maxmemory-policy", "allkeys-lru"},
		{"proto-max-bulk-len", strconv.Itoa(s.cfg.MaxBulk)},
		{"save", ""},
		{"timeout", "0"},
	}
}

func cmdConfig(c *conn, args [][]byte) error {
	sub := args[1]
	switch {
	case equalFold(sub, "get"):
		if len(args) < 3 {
			return wrongArity("config|get")
		}
		var found [][2]string
		for _, p := range c.s.configParams() {
			for _, pat := range args[2:] {
				if Match(strings.ToLower(string(pat)), p[0]) {
					found = append(found, p)
					break
				}
			}
		}
		c.w.mapHeader(len(found))
		for _, p := range found {
			c.w.bulkString(p[0])
			c.w.bulkString(p[1])
		}
	case equalFold(sub, "set"):
		if len(args) < 4 {
			return wrongArity("config|set")
		}
		return replyErr("ERR Unknown option or number of arguments for CONFIG SET - '" + clip(args[2], 128) + "'")
	case equalFold(sub, "resetstat"):
		c.w.ok()
	case equalFold(sub, "help"):
		c.w.bulkStrings([]string{
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"HELP", "    Print this help.",
		})
	default:
		return unknownSubcommand("config", sub)
	}
	return nil
}

// infoSections are INFO's sections in the order Redis writes them; the
// handler fills server and clients, the Store the rest.
var infoSections = []string{"server", "clients", "persistence", "stats", "keyspace"}

func cmdInfo(c *conn, args [][]byte) error {
	figures, err := c.s.store.Info(c.ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	all := len(args) == 1
	for _, a := range args[1:] {
		s := strings.ToLower(string(a))
		if s == "all" || s == "default" || s == "everything" {
			all = true
		}
		want[s] = true
	}
	// Sections the Store reports beyond the usual ones go last, sorted.
	order := append([]string(nil), infoSections...)
	var extra []string
	for name := range figures {
		if !slices.Contains(order, name) {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	order = append(order, extra...)

	if (all || want["keyspace"]) && figures["keyspace"] == nil {
		n, err := c.s.store.Len(c.ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			figures["keyspace"] = [][2]string{{"db0", "keys=" + strconv.FormatInt(n, 10) + ",expires=0,avg_ttl=0"}}
		}
	}
	var b strings.Builder
	for _, name := range order {
		if !all && !want[name] {
			continue
		}
		pairs := c.s.infoSection(c, name, figures[name])
		if len(pairs) == 0 && name != "keyspace" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + strings.ToUpper(name[:1]) + name[1:] + "\r\n")
		for _, p := range pairs {
			b.WriteString(p[0] + ":" + p[1] + "\r\n")
		}
	}
	c.w.bulkString(b.String())
	return nil
}

// infoSection returns the figures of one INFO section: the handler's own
// first, then the Store's.
func (s *Server) infoSection(c *conn, name string, store [][2]string) [][2]string {
	var own [][2]string
	switch name {
	case "server":
		up := time.Since(s.started)
		exe, _ := os.Executable()
		own = [][2]string{
			{"redis_version", RedisVersion},
			{"server_name", s.cfg.ServerName},
			{"server_version", s.cfg.Version},
			{"redis_mode", "standalone"},
			{"os", runtime.GOOS + " " + runtime.GOARCH},
			{"arch_bits", strconv.Itoa(strconv.IntSize)},
			{"go_version", runtime.Version()},
			{"process_id", strconv.Itoa(os.Getpid())},
			{"tcp_port", portOf(c.laddr)},
			{"uptime_in_seconds", strconv.FormatInt(int64(up.Seconds()), 10)},
			{"uptime_in_days", strconv.FormatInt(int64(up.Hours()/24), 10)},
			{"executable", exe},
		}
	case "clients":
		own = [][2]string{
			{"connected_clients", strconv.Itoa(s.numClients())},
			{"maxclients", strconv.Itoa(s.cfg.MaxClients)},
			{"blocked_clients", "0"},
		}
	case "persistence":
		own = [][2]string{{"loading", "0"}}
	case "stats":
		own = [][2]string{
			{"total_connections_received", strconv.FormatInt(s.received.Load(), 10)},
			{"total_commands_processed", strconv.FormatInt(s.commands.Load(), 10)},
			{"rejected_connections", strconv.FormatInt(s.rejected.Load(), 10)},
		}
	}
	// A figure the Store reports under the same name wins.
	var out [][2]string
	for _, p := range own {
		if !hasName(store, p[0]) {
			out = append(out, p)
		}
	}
	return append(out, store...)
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return "0"
}

func hasName(pairs [][2]string, name string) bool {
	for _, p := range pairs {
		if p[0] == name {
			return true
		}
	}
	return false
}

// cmdReset is RESET: the connection as it was when it connected (no
// transaction, no watched keys, RESP2, no name, authenticated only if no
// password is set).
func cmdReset(c *conn, args [][]byte) error {
	c.tx = nil
	c.unwatchAll()
	c.w.proto = 2
	c.proto.Store(2)
	empty := ""
	c.name.Store(&empty)
	c.authed = c.s.cfg.Password == ""
	c.w.simple("RESET")
	return nil
}
