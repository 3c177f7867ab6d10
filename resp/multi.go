package resp

import (
	"bytes"
	"time"
)

// Transactions (MULTI, EXEC, DISCARD, WATCH, UNWATCH) after Redis's
// multi.c.
//
// Atomicity: every command runs under the Server's lock in shared mode,
// EXEC (and EVAL, and the commands that read a key and write it back) in
// exclusive mode, so no other client of the Server runs a command in the
// middle of a transaction. Servers that share Config.Lock share that
// guarantee: the engine gives one lock to its owner socket's Server and to
// Cache.Serve's, so when `diskcache serve` owns the directory, the calls
// of the other processes (which reach the store through that socket) wait
// too. A `serve` that forwards to another owner cannot hold that owner's
// clients off (the README lists this among the differences).
//
// WATCH is kept two ways. Commands of this Server that modify a key mark
// the connections watching it, as Redis's signalModifiedKey does, so that
// even a write of the same value aborts EXEC. And WATCH remembers the
// key's value and expiry, which EXEC compares under the exclusive lock: a
// write by another process, or the key expiring, aborts it too.

// tx is a transaction being queued (after MULTI).
type tx struct {
	queued [][][]byte // the commands, their arguments copied
	dirty  bool       // a command was refused while queueing: EXEC aborts
}

// watch is what WATCH saw of a key.
type watch struct {
	present bool
	value   []byte
	// The expiry lies in [expiry, expiry+spread]: TTL reports the time
	// left as of a moment between the two clock readings around the call.
	expiry time.Time // zero: none
	spread time.Duration
}

// txControl reports whether cmd runs at once inside MULTI rather than
// being queued, as in Redis.
func txControl(name string) bool {
	switch name {
	case "exec", "discard", "multi", "watch", "quit", "reset":
		return true
	}
	return false
}

// queue adds a command to the transaction; args are copied because the
// reader reuses their memory for the next batch.
func (c *conn) queue(args [][]byte) {
	cp := make([][]byte, len(args))
	for i, a := range args {
		cp[i] = bytes.Clone(a)
		if cp[i] == nil {
			cp[i] = []byte{}
		}
	}
	c.tx.queued = append(c.tx.queued, cp)
	c.w.simple("QUEUED")
}

func cmdMulti(c *conn, args [][]byte) error {
	if c.tx != nil {
		return replyErr("ERR MULTI calls can not be nested")
	}
	c.tx = &tx{}
	c.w.ok()
	return nil
}

func cmdDiscard(c *conn, args [][]byte) error {
	if c.tx == nil {
		return replyErr("ERR DISCARD without MULTI")
	}
	c.tx = nil
	c.unwatchAll()
	c.w.ok()
	return nil
}

// cmdExec runs the queued commands under the exclusive lock (the command
// table marks EXEC exclusive), each reply an element of one array.
func cmdExec(c *conn, args [][]byte) error {
	t := c.tx
	if t == nil {
		return replyErr("ERR EXEC without MULTI")
	}
	c.tx = nil
	if t.dirty {
		c.unwatchAll()
		return replyErr("EXECABORT Transaction discarded because of previous errors.")
	}
	changed, err := c.watchedChanged()
	c.unwatchAll()
	if err != nil {
		return err
	}
	if changed {
		c.w.nullArray()
		return nil
	}
	c.w.array(len(t.queued))
	for _, q := range t.queued {
		c.exec(q)
	}
	return nil
}

// exec runs one command of a transaction or a script, already checked
// for arity, and writes its reply (an error reply included).
func (c *conn) exec(args [][]byte) {
	cmd := lookup(args[0])
	c.s.commands.Add(1)
	if err := cmd.run(c, args); err != nil {
		c.w.error(replyText(err))
	}
}

func cmdWatch(c *conn, args [][]byte) error {
	if c.tx != nil {
		return replyErr("ERR WATCH inside MULTI is not allowed")
	}
	for _, a := range args[1:] {
		key := string(a)
		if _, dup := c.watched[key]; dup {
			continue
		}
		w, err := c.observe(key)
		if err != nil {
			return err
		}
		if c.watched == nil {
			c.watched = make(map[string]watch)
		}
		c.watched[key] = w
		c.s.watchKey(c, key)
	}
	c.w.ok()
	return nil
}

func cmdUnwatch(c *conn, args [][]byte) error {
	c.unwatchAll()
	c.w.ok()
	return nil
}

// observe reads what WATCH remembers of key.
func (c *conn) observe(key string) (watch, error) {
	v, ok, err := c.s.store.Get(c.ctx, key)
	if err != nil || !ok {
		return watch{}, err
	}
	before := time.Now()
	ttl, ok, err := c.s.store.TTL(c.ctx, key)
	if err != nil || !ok {
		return watch{}, err
	}
	w := watch{present: true, value: bytes.Clone(v)}
	if ttl > 0 {
		w.expiry = before.Add(ttl)
		w.spread = time.Since(before)
	}
	return w, nil
}

// expiryRounding is how far TTL's answer may be off the stored expiry:
// the store keeps expiries to the millisecond.
const expiryRounding = time.Millisecond

// watchedChanged reports whether a watched key was modified since WATCH:
// by a command of this Server, or, as a comparison shows, by anyone else or
// by expiring.
func (c *conn) watchedChanged() (bool, error) {
	if len(c.watched) == 0 {
		return false, nil
	}
	if c.dirtyCAS.Load() {
		return true, nil
	}
	for key, old := range c.watched {
		now, err := c.observe(key)
		if err != nil {
			return false, err
		}
		if now.present != old.present || !bytes.Equal(now.value, old.value) ||
			now.expiry.IsZero() != old.expiry.IsZero() {
			return true, nil
		}
		// The expiry changed only if the two spans it was read to lie in
		// are apart: across processes, a round trip under load can take
		// far longer than any fixed allowance.
		if now.expiry.After(old.expiry.Add(old.spread+expiryRounding)) ||
			old.expiry.After(now.expiry.Add(now.spread+expiryRounding)) {
			return true, nil
		}
	}
	return false, nil
}

// unwatchAll forgets the connection's watched keys.
func (c *conn) unwatchAll() {
	if len(c.watched) > 0 {
		c.s.unwatchKeys(c, c.watched)
		c.watched = nil
	}
	c.dirtyCAS.Store(false)
}

// modified tells the connections watching keys that a command changed
// them (Redis's signalModifiedKey). It costs an atomic load when nobody
// watches anything.
func (c *conn) modified(keys ...string) {
	if c.s.watchCount.Load() == 0 {
		return
	}
	c.s.wmu.Lock()
	defer c.s.wmu.Unlock()
	for _, k := range keys {
		for w := range c.s.watchers[k] {
			w.dirtyCAS.Store(true)
		}
	}
}

// modifiedArgs is modified for keys given as arguments.
func (c *conn) modifiedArgs(keys [][]byte) {
	if c.s.watchCount.Load() == 0 {
		return
	}
	for _, k := range keys {
		c.modified(string(k))
	}
}

// anyWatched reports whether some connection watches a key.
func (s *Server) anyWatched() bool { return s.watchCount.Load() > 0 }

// watchedKeys returns every key some connection watches.
func (s *Server) watchedKeys() []string {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	out := make([]string, 0, len(s.watchers))
	for k := range s.watchers {
		out = append(out, k)
	}
	return out
}

func (s *Server) watchKey(c *conn, key string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	set := s.watchers[key]
	if set == nil {
		set = make(map[*conn]struct{})
		s.watchers[key] = set
		s.watchCount.Add(1)
	}
	set[c] = struct{}{}
}

func (s *Server) unwatchKeys(c *conn, keys map[string]watch) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for k := range keys {
		set := s.watchers[k]
		delete(set, c)
		if len(set) == 0 && set != nil {
			delete(s.watchers, k)
			s.watchCount.Add(-1)
		}
	}
}
