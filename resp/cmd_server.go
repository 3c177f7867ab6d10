package resp

import (
	"crypto/subtle"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	case equalFold(sub, "kill"):
		return c.clientKill(args[2:])
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
			"KILL <ip:port>", "    Kill connection made from <ip:port>.",
			"KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are: ID, ADDR, LADDR, TYPE, USER, SKIPME.",
			"SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
			"HELP", "    Print this help.",
		})
	default:
		return unknownSubcommand("client", sub)
	}
	return nil
}

// clientKill is CLIENT KILL addr, and CLIENT KILL with filters (ID,
// ADDR, LADDR, TYPE, SKIPME), as Redis's clientKillCommand. A killed
// connection finishes the batch it runs and closes; this one closes after
// its reply.
func (c *conn) clientKill(args [][]byte) error {
	if len(args) == 0 {
		return wrongArity("client|kill")
	}
	var id uint64
	var addr, laddr string
	skipMe, old := true, len(args) == 1
	if old {
		addr = string(args[0])
	} else {
		if len(args)%2 != 0 {
			return errSyntax
		}
		for i := 0; i < len(args); i += 2 {
			k, v := args[i], args[i+1]
			switch {
			case equalFold(k, "id"):
				n, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil || n <= 0 {
					return replyErr("ERR client-id should be greater than 0")
				}
				id = uint64(n)
			case equalFold(k, "addr"):
				addr = string(v)
			case equalFold(k, "laddr"):
				laddr = string(v)
			case equalFold(k, "type"):
				if !equalFold(v, "normal") && !equalFold(v, "master") && !equalFold(v, "replica") && !equalFold(v, "slave") && !equalFold(v, "pubsub") {
					return replyErr("ERR Unknown client type '" + clip(v, 128) + "'")
				}
				if !equalFold(v, "normal") {
					id = ^uint64(0) // no connection of that type here
				}
			case equalFold(k, "skipme"):
				switch {
				case equalFold(v, "yes"):
					skipMe = true
				case equalFold(v, "no"):
					skipMe = false
				default:
					return errSyntax
				}
			case equalFold(k, "user"):
				if string(v) != "default" {
					return replyErr("ERR No such user '" + clip(v, 128) + "'")
				}
			default:
				return errSyntax
			}
		}
	}
	killed := 0
	for _, o := range c.s.clients() {
		if (id != 0 && o.id != id) || (addr != "" && o.addr != addr) || (laddr != "" && o.laddr != laddr) {
			continue
		}
		if o == c {
			if skipMe && !old {
				continue
			}
			c.quit = true
		} else {
			o.shutdown()
		}
		killed++
	}
	switch {
	case !old:
		c.w.int(int64(killed))
	case killed == 0:
		return replyErr("ERR No such client")
	default:
		c.w.ok()
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

// configSet is CONFIG SET name value [name value ...]. The settings map
// onto flags the server was started with and stay as they are: setting one
// to its current value succeeds (clients and tools do that to make sure),
// another value fails as Redis fails for an immutable setting.
func (c *conn) configSet(args [][]byte) error {
	if len(args)%2 != 0 {
		return replyErr("ERR wrong number of arguments for 'config|set' command")
	}
	params := c.s.configParams()
	for i := 0; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		j := slices.IndexFunc(params, func(p [2]string) bool { return p[0] == name })
		if j < 0 {
			return replyErr("ERR Unknown option or number of arguments for CONFIG SET - '" + clip(args[i], 128) + "'")
		}
		if string(args[i+1]) != params[j][1] {
			return replyErr("ERR CONFIG SET failed (possibly related to argument '" + name + "') - can't set immutable config")
		}
	}
	c.w.ok()
	return nil
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
		return c.configSet(args[2:])
	case equalFold(sub, "resetstat"):
		c.w.ok()
	case equalFold(sub, "help"):
		c.w.bulkStrings([]string{
			"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>", "    Set the configuration <directive> to <value> (only to the value it has here).",
			"HELP", "    Print this help.",
		})
	default:
		return unknownSubcommand("config", sub)
	}
	return nil
}

// infoDefault are the sections INFO writes without arguments (and for
// "default" and "all"), in Redis's order; "everything" adds
// infoEverything. The handler fills them; the Store's figures are added
// to the section they name, and sections the Store adds go after them.
var (
	infoDefault    = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"}
	infoEverything = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace"}
)

func cmdInfo(c *conn, args [][]byte) error {
	figures, err := c.s.store.Info(c.ctx)
	if err != nil {
		return err
	}
	var order []string
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	switch {
	case len(args) == 1, want["default"], want["all"]:
		order = infoDefault
	case want["everything"]:
		order = infoEverything
	default:
		for _, name := range infoEverything {
			if want[name] {
				order = append(order, name)
			}
		}
	}
	// Sections the Store reports beyond Redis's go last, sorted.
	var extra []string
	for name := range figures {
		if !slices.Contains(infoEverything, name) && (len(args) == 1 || want[name] || want["all"] || want["everything"] || want["default"]) {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	order = append(slices.Clone(order), extra...)

	if slices.Contains(order, "keyspace") && figures["keyspace"] == nil {
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
		pairs := c.s.infoSection(c, name, figures[name])
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + infoTitle(name) + "\r\n")
		for _, p := range pairs {
			b.WriteString(p[0] + ":" + p[1] + "\r\n")
		}
	}
	c.w.bulkString(b.String())
	return nil
}

// infoTitle is a section's heading as Redis writes it.
func infoTitle(name string) string {
	switch name {
	case "cpu":
		return "CPU"
	case "commandstats":
		return "Commandstats"
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// humanBytes writes n as Redis's bytesToHuman does ("1.28M").
func humanBytes(n uint64) string {
	d := float64(n)
	for _, u := range []struct {
		size float64
		unit string
	}{{1 << 50, "P"}, {1 << 40, "T"}, {1 << 30, "G"}, {1 << 20, "M"}, {1 << 10, "K"}} {
		if d >= u.size {
			return strconv.FormatFloat(d/u.size, 'f', 2, 64) + u.unit
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}

// infoSection returns the figures of one INFO section: the handler's own
// first, then the Store's.
func (s *Server) infoSection(c *conn, name string, store [][2]string) [][2]string {
	var own [][2]string
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
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
			{"run_id", s.runID},
			{"tcp_port", portOf(c.laddr)},
			{"server_time_usec", itoa(time.Now().UnixMicro())},
			{"uptime_in_seconds", itoa(int64(up.Seconds()))},
			{"uptime_in_days", itoa(int64(up.Hours() / 24))},
			{"executable", exe},
			{"config_file", ""},
		}
	case "clients":
		own = [][2]string{
			{"connected_clients", strconv.Itoa(s.numClients())},
			{"cluster_connections", "0"},
			{"maxclients", strconv.Itoa(s.cfg.MaxClients)},
			{"blocked_clients", "0"},
			{"tracking_clients", "0"},
			{"watching_clients", strconv.Itoa(s.watchingClients())},
		}
	case "memory":
		// The process's Go heap: the cache's data is on disk, and Pebble's
		// block cache is in its own (non-Go) memory, part of the RSS.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak := s.notePeak(ms.HeapAlloc)
		own = [][2]string{
			{"used_memory", strconv.FormatUint(ms.HeapAlloc, 10)},
			{"used_memory_human", humanBytes(ms.HeapAlloc)},
			{"used_memory_rss", strconv.FormatUint(ms.Sys, 10)},
			{"used_memory_rss_human", humanBytes(ms.Sys)},
			{"used_memory_peak", strconv.FormatUint(peak, 10)},
			{"used_memory_peak_human", humanBytes(peak)},
			{"used_memory_lua", "0"},
			{"number_of_cached_scripts", strconv.Itoa(s.scripts.len())},
			{"maxmemory", "0"},
			{"maxmemory_human", "0B"},
			{"maxmemory_policy", "allkeys-lru"},
			{"mem_allocator", "go"},
		}
	case "persistence":
		own = [][2]string{{"loading", "0"}, {"async_loading", "0"}, {"rdb_changes_since_last_save", "0"},
			{"rdb_bgsave_in_progress", "0"}, {"aof_enabled", "0"}, {"aof_rewrite_in_progress", "0"}}
	case "stats":
		own = [][2]string{
			{"total_connections_received", itoa(s.received.Load())},
			{"total_commands_processed", itoa(s.commands.Load())},
			{"rejected_connections", itoa(s.rejected.Load())},
			{"pubsub_channels", "0"},
			{"pubsub_patterns", "0"},
		}
	case "replication":
		own = [][2]string{
			{"role", "master"}, {"connected_slaves", "0"}, {"master_failover_state", "no-failover"},
			{"master_replid", s.runID}, {"master_replid2", strings.Repeat("0", 40)},
			{"master_repl_offset", "0"}, {"second_repl_offset", "-1"}, {"repl_backlog_active", "0"},
			{"repl_backlog_size", "1048576"}, {"repl_backlog_first_byte_offset", "0"}, {"repl_backlog_histlen", "0"},
		}
	case "cpu":
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		sec := func(tv syscall.Timeval) string {
			return strconv.FormatFloat(float64(tv.Sec)+float64(tv.Usec)/1e6, 'f', 6, 64)
		}
		own = [][2]string{
			{"used_cpu_sys", sec(ru.Stime)}, {"used_cpu_user", sec(ru.Utime)},
			{"used_cpu_sys_children", "0.000000"}, {"used_cpu_user_children", "0.000000"},
		}
	case "cluster":
		own = [][2]string{{"cluster_enabled", "0"}}
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

// notePeak records the largest heap INFO has seen and returns it.
func (s *Server) notePeak(heap uint64) uint64 {
	for {
		p := s.peakHeap.Load()
		if heap <= p {
			return p
		}
		if s.peakHeap.CompareAndSwap(p, heap) {
			return heap
		}
	}
}

// watchingClients is how many connections watch some key.
func (s *Server) watchingClients() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	seen := map[*conn]bool{}
	for _, set := range s.watchers {
		for c := range set {
			seen[c] = true
		}
	}
	return len(seen)
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
