package resp

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

// maxKeptBuffer is the largest reply buffer a connection keeps between
// batches; a bigger one (after a large MGET, say) is dropped.
const maxKeptBuffer = 1 << 20

// conn is one client connection. Its goroutine reads a batch of pipelined
// commands, runs them, writes all their replies at once and reads again.
// Fields other than the atomics belong to that goroutine.
type conn struct {
	s       *Server
	nc      net.Conn
	ctx     context.Context
	id      uint64
	addr    string
	laddr   string
	created time.Time

	w      writer
	authed bool
	quit   bool // QUIT was read: reply, then close

	tx      *tx              // MULTI was read: commands are queued
	watched map[string]watch // WATCHed keys
	atomic  bool             // running inside EXEC or a script: the exclusive lock is held
	script  *scriptRun       // the script running, if any

	// Read by CLIENT LIST and INFO from other connections.
	name    atomic.Pointer[string]
	libName atomic.Pointer[string]
	libVer  atomic.Pointer[string]
	lastCmd atomic.Int64 // unix nanoseconds of the last command
	proto   atomic.Int32
	closing atomic.Bool // the server is shutting down
	// dirtyCAS is set by any connection that modifies a key this one
	// watches: EXEC then aborts.
	dirtyCAS atomic.Bool
}

func (s *Server) newConn(ctx context.Context, nc net.Conn) *conn {
	c := &conn{
		s:       s,
		nc:      nc,
		ctx:     ctx,
		id:      s.nextID.Add(1),
		addr:    nc.RemoteAddr().String(),
		laddr:   nc.LocalAddr().String(),
		created: time.Now(),
		authed:  s.cfg.Password == "",
	}
	c.w.proto = 2
	c.proto.Store(2)
	c.lastCmd.Store(c.created.UnixNano())
	return c
}

// shutdown asks the connection to finish the batch it is running and
// close: a read in progress returns at once, and writes get drainTimeout.
func (c *conn) shutdown() {
	c.closing.Store(true)
	now := time.Now()
	c.nc.SetReadDeadline(now)
	c.nc.SetWriteDeadline(now.Add(drainTimeout))
}

// serve runs the connection until the client leaves, QUIT, a protocol
// error, or shutdown.
func (c *conn) serve() {
	defer c.nc.Close()
	defer c.unwatchAll()
	defer func() {
		// The last line of defence: a bug must cost one connection, not the
		// process.
		if r := recover(); r != nil {
			c.s.log.Error("resp: panic serving a connection; closed it",
				"client", c.addr, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	g := &guard{r: c.nc, maxBulk: c.s.cfg.MaxBulk, maxArgs: c.s.cfg.MaxArgs,
		authed: func() bool { return c.authed }}
	rd := redcon.NewReader(g)
	for !c.closing.Load() {
		cmds, err := rd.ReadCommands()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.runBatch(cmds)
		if err := c.flush(); err != nil || c.quit {
			return
		}
	}
}

// readFailed answers a protocol error, as Redis does, before the close.
func (c *conn) readFailed(err error) {
	var pe *protocolError
	switch {
	case errors.As(err, &pe), strings.HasPrefix(err.Error(), "Protocol error: "): // ours or redcon's
		c.s.log.Debug("resp: protocol error; closing the connection", "client", c.addr, "err", err)
		c.w.error("ERR " + err.Error())
		c.flush()
	case c.closing.Load(), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
	default:
		c.s.log.Debug("resp: read failed; closing the connection", "client", c.addr, "err", err)
	}
}

// flush writes the replies of a batch.
func (c *conn) flush() error {
	if len(c.w.b) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.w.b)
	if cap(c.w.b) > maxKeptBuffer {
		c.w.b = nil
	} else {
		c.w.b = c.w.b[:0]
	}
	return err
}

// runBatch runs the commands read in one go, in order. A run of two or
// more plain GETs is one Store.GetMany and a run of plain SETs one
// Store.SetMany: that is what makes a pipeline of writes one Pebble batch.
func (c *conn) runBatch(cmds []redcon.Command) {
	for i := 0; i < len(cmds) && !c.quit; {
		if n := c.runGroup(cmds[i:]); n > 0 {
			i += n
		} else {
			c.run(cmds[i].Args)
			i++
		}
		// A long pipeline of large replies goes out as it is made, not
		// all at once at the end.
		if len(c.w.b) >= maxKeptBuffer {
			if err := c.flush(); err != nil {
				c.quit = true // the connection is broken: stop
			}
		}
	}
}

// groupKind tells whether args is a command that runGroup batches.
func groupKind(args [][]byte) byte {
	switch {
	case len(args) == 2 && len(args[0]) == 3 && equalFold(args[0], "get"):
		return 'g'
	case len(args) == 3 && len(args[0]) == 3 && equalFold(args[0], "set"):
		return 's'
	}
	return 0
}

// runGroup runs the run of batchable commands at the start of cmds as one
// Store call, and returns how many it ran; 0 when there is no run of two.
// If the batch call fails, the commands run one by one, so that each gets
// the reply it would have had alone.
func (c *conn) runGroup(cmds []redcon.Command) int {
	if !c.authed || len(cmds) < 2 {
		return 0
	}
	kind := groupKind(cmds[0].Args)
	if kind == 0 {
		return 0
	}
	n := 1
	for n < len(cmds) && groupKind(cmds[n].Args) == kind {
		n++
	}
	if n < 2 {
		return 0
	}
	if c.tx != nil {
		return 0 // queued one by one
	}
	run := cmds[:n]
	c.s.xmu.RLock()
	defer c.s.xmu.RUnlock()
	obs := c.s.cfg.Observer
	var start time.Time
	if obs != nil {
		start = time.Now()
	}
	var name string
	switch kind {
	case 'g':
		name = "get"
		keys := make([]string, n)
		for i, cmd := range run {
			keys[i] = string(cmd.Args[1])
		}
		vals, err := c.s.store.GetMany(c.ctx, keys)
		if err != nil || len(vals) != n {
			return c.runEach(run)
		}
		for _, v := range vals {
			c.w.value(v, v != nil)
		}
	case 's':
		name = "set"
		entries := make([]Entry, n)
		for i, cmd := range run {
			entries[i] = Entry{Key: string(cmd.Args[1]), Value: cmd.Args[2]}
		}
		if _, err := c.s.store.SetMany(c.ctx, entries, false); err != nil {
			return c.runEach(run)
		}
		if c.s.anyWatched() {
			for _, e := range entries {
				c.modified(e.Key)
			}
		}
		for range run {
			c.w.ok()
		}
	}
	c.s.commands.Add(int64(n))
	c.lastCmd.Store(time.Now().UnixNano())
	if obs != nil {
		each := time.Since(start) / time.Duration(n)
		for range run {
			obs.ObserveCommand(name, each, nil)
		}
	}
	return n
}

func (c *conn) runEach(cmds []redcon.Command) int {
	for _, cmd := range cmds {
		c.run(cmd.Args)
	}
	return len(cmds)
}

// run runs one command and writes its reply.
func (c *conn) run(args [][]byte) {
	c.s.commands.Add(1)
	c.lastCmd.Store(time.Now().UnixNano())
	if ext := c.s.cfg.Extension; ext != nil && c.authed {
		// Under the lock in shared mode like every command, so that an
		// EXEC or a script (exclusive) is atomic against the extension's
		// calls too: the forwarders of the engine's owner socket.
		c.s.xmu.RLock()
		b, ok := ext.ServeCommand(c.ctx, args, c.w.b)
		c.s.xmu.RUnlock()
		if ok {
			c.w.b = b
			return
		}
	}
	cmd := lookup(args[0])
	obs := c.s.cfg.Observer
	var start time.Time
	if obs != nil {
		start = time.Now()
	}
	var err error
	switch {
	case cmd == nil:
		err = unknownCommand(args)
	case !cmd.arityOK(len(args)):
		err = wrongArity(cmd.name)
	case !c.authed && !cmd.noAuth:
		err = errNoAuth
	case c.tx != nil && !txControl(cmd.name):
		c.queue(args)
	default:
		err = c.call(cmd, args)
	}
	if err != nil {
		if c.tx != nil && (cmd == nil || !cmd.arityOK(len(args)) || !c.authed) {
			// Refused before queueing: EXEC will abort, as in Redis.
			c.tx.dirty = true
		}
		c.w.error(replyText(err))
	}
	if obs != nil {
		name := "unknown"
		if cmd != nil {
			name = cmd.name
		}
		obs.ObserveCommand(name, time.Since(start), err)
	}
}

// call runs cmd under the Server's lock: shared, or exclusive for a
// command that needs it.
func (c *conn) call(cmd *command, args [][]byte) error {
	switch {
	case c.atomic:
		return cmd.run(c, args)
	case cmd.exclusive(args):
		c.s.xmu.Lock()
		defer c.s.xmu.Unlock()
		c.atomic = true
		defer func() { c.atomic = false }()
	default:
		c.s.xmu.RLock()
		defer c.s.xmu.RUnlock()
	}
	return cmd.run(c, args)
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
