package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/diskcache-go/diskcache/resp"
)

// Cache is a persistent cache in one directory, shared by every process
// that opens the directory. It is safe for concurrent use by many
// goroutines.
//
// One process owns the directory: it holds the owner lock, has Pebble open
// and serves a Unix socket. Every other process's Cache forwards each call
// over that socket (Pebble lets only one process open a store). When the
// owner closes or dies, a forwarding process notices, takes the lock,
// opens the store and serves; the others reconnect to it. Calls in flight
// are retried for up to Options.HandoffWindow; a call whose repeat would
// not be what it was (an Add, an IncrBy) carries a token that tells the
// next owner it was applied already (contract.go, calls.go), so a call
// answers the same from any process, across handoffs too.
type Cache struct {
	dir  string
	opts Options
	log  *slog.Logger

	role   atomic.Pointer[role] // the current role; swapped only under mu
	mu     sync.Mutex           // serializes handoffs and Close
	closed atomic.Bool
	stop   chan struct{} // closed by Close: background work of the Cache ends
	// cmdLock is the resp.Config.Lock of the owner socket's server and of
	// Serve's: see resp's multi.go.
	cmdLock sync.RWMutex
}

// role is what a Cache is at a moment: the owner, with its store and the
// socket server, or a forwarder.
type role struct {
	local *store
	srv   *ownerServer
	fwd   *forwarder
	// base is what this process's calls counted in the roles it had before
	// this one, so that Stats keeps counting across a handoff.
	base callCounts
}

// callCounts are the counters of Stats that count this process's calls.
type callCounts struct{ hits, misses, localHits, sets, deletes int64 }

// counts returns what the process's calls counted up to and in this role.
func (r *role) counts() callCounts {
	var s callCounts
	if r.local != nil {
		s = r.local.ownCounts()
	} else {
		s = r.fwd.ownCounts()
	}
	b := r.base
	return callCounts{b.hits + s.hits, b.misses + s.misses, b.localHits + s.localHits, b.sets + s.sets, b.deletes + s.deletes}
}

func (r *role) backend() backend {
	if r.local != nil {
		return r.local
	}
	return r.fwd
}

// backend is what a role answers calls with: the store in the owner, the
// forwarder elsewhere.
type backend interface {
	Get(ctx context.Context, key string) ([]byte, error)
	GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error)
	Exists(ctx context.Context, key string) (bool, error)
	TTL(ctx context.Context, key string) (time.Duration, error)
	GetMany(ctx context.Context, keys []string) (map[string][]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	SetMany(ctx context.Context, entries []Entry) error
	SetManyIfAbsent(ctx context.Context, entries []Entry) (bool, error)
	Delete(ctx context.Context, key string) error
	DeleteMany(ctx context.Context, keys ...string) (int, error)
	Touch(ctx context.Context, key string, ttl time.Duration) error
	Len(ctx context.Context) (int64, error)
	Clear(ctx context.Context) error
	SetWithOptions(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error)
	GetDelete(ctx context.Context, key string) ([]byte, error)
	GetExpire(ctx context.Context, key string, e Expiry) ([]byte, error)
	Expire(ctx context.Context, key string, e Expiry) (bool, error)
	IncrBy(ctx context.Context, key string, delta int64) (int64, error)
	Append(ctx context.Context, key string, suffix []byte) (int, error)
	Scan(ctx context.Context, cursor uint64, count int) ([]string, uint64, error)
	Stats() Stats
	Close() error
}

var (
	_ backend = (*store)(nil)
	_ backend = (*forwarder)(nil)
	_ backend = (*Cache)(nil)
)

// errOwnerGone marks a forwarded call that failed because the owner went
// away: the connection broke, or the owner answered that it is closing.
var errOwnerGone = errors.New("the owner of the directory went away")

// Open opens the cache in dir, creating dir if it does not exist. opts may
// be nil for the defaults. If no other process has the directory open, this
// one becomes its owner; otherwise the Cache forwards its calls to the
// owner. Either way it behaves the same.
func Open(dir string, opts *Options) (*Cache, error) {
	o := opts.withDefaults()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("diskcache: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("diskcache: open %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("diskcache: open %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("diskcache: open %s: not a directory", dir)
	}
	c := &Cache{dir: abs, opts: o, log: o.Logger.With("cache", abs), stop: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), o.HandoffWindow)
	defer cancel()
	r, err := c.takeRole(ctx)
	if err != nil {
		return nil, err
	}
	c.role.Store(r)
	return c, nil
}

// takeRole becomes the owner if the owner lock is free, and otherwise
// connects to the owner, retrying until ctx is done: an owner that is
// starting up holds the lock before its socket listens.
func (c *Cache) takeRole(ctx context.Context) (*role, error) {
	var lastErr error
	for {
		lock, err := lockDir(c.dir)
		if err == nil {
			// The socket listens while the store opens: processes that
			// arrive meanwhile queue on it (listenOwner).
			ln, err := listenOwner(c.dir)
			if err != nil {
				lock.release()
				return nil, err
			}
			if testHookListening != nil {
				testHookListening(ln)
			}
			s, err := openStore(c.dir, c.opts, lock)
			if err != nil {
				ln.Close()
				lock.release()
				return nil, err
			}
			r := &role{local: s}
			reopen := func() { go c.recoverStore(r) }
			s.health.onFail.Store(&reopen)
			r.srv = serveOwner(s, ln, &c.cmdLock)
			return r, nil
		}
		if !errors.Is(err, ErrOwned) {
			return nil, err
		}
		f, err := dialOwner(c.dir, &c.opts)
		if err == nil {
			return &role{fwd: f}, nil
		}
		if errors.Is(err, ErrIncompatible) {
			return nil, err // waiting does not change the owner's version
		}
		lastErr = err
		// An owner that is starting or closing takes a few milliseconds
		// (Open and Close write nothing that grows with the cache): a
		// millisecond between tries keeps the wait close to that. A try is
		// a flock and a connect.
		select {
		case <-ctx.Done():
			pid := ownerPID(filepath.Join(c.dir, lockName))
			return nil, fmt.Errorf("%w: %s is owned by pid %d, and its socket did not answer within %v: %w",
				ErrOwned, c.dir, pid, c.opts.HandoffWindow, lastErr)
		case <-time.After(time.Millisecond):
		}
	}
}

// handoff replaces the role failed: a forwarder whose owner went away, or
// an owner whose store failed (recover.go), which lets the directory go as
// Close does. This process takes over or connects to whoever did.
// Concurrent callers that saw the same failure wait for the first one's
// handoff.
func (c *Cache) handoff(ctx context.Context, failed *role) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if c.role.Load() != failed {
		return nil // another goroutine handed off already
	}
	if failed.fwd != nil {
		failed.fwd.Close()
	} else {
		failed.srv.shutdown()
		if err := failed.local.Close(); err != nil {
			c.log.Warn("diskcache: closing the failed store", "err", err)
		}
	}
	r, err := c.takeRole(ctx)
	if err != nil {
		return err
	}
	if r.local != nil {
		c.log.Info("diskcache: took over the directory from its owner")
	}
	r.base = failed.counts() // failed is closed: its counts are final
	c.role.Store(r)
	return nil
}

// call runs fn, the method m of the contract (contract.go), on the current
// role's backend. If the owner went away, it hands off and runs fn again,
// until Options.HandoffWindow has passed. A call that is not safe to repeat
// as it is (repeatToken) carries a token from a forwarder, and its repeats
// are marked as such: an owner that finds the token answers what the first
// attempt did instead of applying it again (calls.go).
func call[T any](c *Cache, ctx context.Context, m *method, fn func(context.Context, backend) (T, error)) (T, error) {
	var deadline time.Time
	var ci *callInfo
	for {
		r := c.role.Load()
		if r == nil || c.closed.Load() {
			var zero T
			return zero, ErrClosed
		}
		if m.repeat == repeatToken && r.fwd != nil && ci == nil {
			ci = &callInfo{token: newToken()}
			ctx = withCall(ctx, ci)
		}
		v, err := fn(ctx, r.backend())
		// An owner's store that is closed while the Cache is not is being
		// reopened (recover.go): the call did nothing, and is run again.
		reopening := r.local != nil && errors.Is(err, ErrClosed) && !c.closed.Load()
		if err == nil || !(reopening || r.fwd != nil && errors.Is(err, errOwnerGone)) {
			return v, err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(c.opts.HandoffWindow)
		}
		hctx, cancel := context.WithDeadline(ctx, deadline)
		herr := c.handoff(hctx, r)
		cancel()
		if herr != nil {
			return v, fmt.Errorf("diskcache: %s: %w; no process took over within %v: %w", c.dir, err, c.opts.HandoffWindow, herr)
		}
		if ci != nil {
			ci.repeat = true
		}
	}
}

// Close closes the cache. In the owner it stops accepting forwarded calls,
// finishes those in flight, closes the store and releases the directory to
// the next process; elsewhere it closes the connections to the owner.
// Writes that returned are already durable. Close is idempotent; every
// other method fails with ErrClosed afterwards.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.stop)
	r := c.role.Load()
	if r.fwd != nil {
		return r.fwd.Close()
	}
	r.srv.linger()
	r.srv.shutdown()
	return r.local.Close()
}

// Dir returns the cache's directory as an absolute path.
func (c *Cache) Dir() string { return c.dir }

// IsOwner reports whether this process owns the directory now (it may
// change when the owner goes away).
func (c *Cache) IsOwner() bool {
	r := c.role.Load()
	return r != nil && r.local != nil
}

// Serve serves the cache over the Redis protocol on ln until ctx is done
// (then it finishes the commands in flight and returns nil) or ln fails. It
// works in the owner and in forwarding processes alike; the diskcache serve
// command uses it on TCP.
func (c *Cache) Serve(ctx context.Context, ln net.Listener, cfg resp.Config) error {
	rs := respStore{c: c, dir: c.dir, opts: c.opts, started: time.Now()}
	if cfg.Lock == nil {
		cfg.Lock = &c.cmdLock
	}
	return resp.NewServer(rs, cfg).Serve(ctx, ln)
}

// Get returns the value stored under key, or ErrNotFound if it is missing
// or has expired. The caller owns the returned slice.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	return call(c, ctx, mGet, func(ctx context.Context, b backend) ([]byte, error) { return b.Get(ctx, key) })
}

// GetWithTTL returns the value stored under key and the time it has left to
// live; 0 means it never expires.
func (c *Cache) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	type vt struct {
		v []byte
		t time.Duration
	}
	r, err := call(c, ctx, mGetWithTTL, func(ctx context.Context, b backend) (vt, error) {
		v, t, err := b.GetWithTTL(ctx, key)
		return vt{v, t}, err
	})
	return r.v, r.t, err
}

// Exists reports whether key holds a value that has not expired.
func (c *Cache) Exists(ctx context.Context, key string) (bool, error) {
	return call(c, ctx, mExists, func(ctx context.Context, b backend) (bool, error) { return b.Exists(ctx, key) })
}

// TTL returns the time key has left to live; 0 means it never expires.
// A missing or expired key gives ErrNotFound.
func (c *Cache) TTL(ctx context.Context, key string) (time.Duration, error) {
	return call(c, ctx, mTTL, func(ctx context.Context, b backend) (time.Duration, error) { return b.TTL(ctx, key) })
}

// GetMany returns the values of the keys that are present, by key. Missing
// and expired keys are left out.
func (c *Cache) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	return call(c, ctx, mGetMany, func(ctx context.Context, b backend) (map[string][]byte, error) { return b.GetMany(ctx, keys) })
}

// Set stores value under key. A ttl <= 0 means the entry never expires.
// The value is copied.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := call(c, ctx, mSet, func(ctx context.Context, b backend) (struct{}, error) { return struct{}{}, b.Set(ctx, key, value, ttl) })
	return err
}

// Entry is one key and value for SetMany.
type Entry struct {
	Key   string
	Value []byte
	TTL   time.Duration // <= 0: never expires
}

// SetMany stores all entries in one atomic batch: after a crash either all
// of them are there or none. When a key appears twice, the last one wins.
func (c *Cache) SetMany(ctx context.Context, entries []Entry) error {
	_, err := call(c, ctx, mSetMany, func(ctx context.Context, b backend) (struct{}, error) { return struct{}{}, b.SetMany(ctx, entries) })
	return err
}

// SetManyIfAbsent stores all entries atomically if none of their keys holds
// an entry (Redis MSETNX), and reports whether it did.
func (c *Cache) SetManyIfAbsent(ctx context.Context, entries []Entry) (bool, error) {
	return call(c, ctx, mSetManyIfAbsent, func(ctx context.Context, b backend) (bool, error) { return b.SetManyIfAbsent(ctx, entries) })
}

// Delete removes key. Deleting a missing key is not an error.
func (c *Cache) Delete(ctx context.Context, key string) error {
	_, err := call(c, ctx, mDelete, func(ctx context.Context, b backend) (struct{}, error) { return struct{}{}, b.Delete(ctx, key) })
	return err
}

// DeleteMany deletes keys and returns how many of them held an entry that
// had not expired.
func (c *Cache) DeleteMany(ctx context.Context, keys ...string) (int, error) {
	return call(c, ctx, mDeleteMany, func(ctx context.Context, b backend) (int, error) { return b.DeleteMany(ctx, keys...) })
}

// Touch sets a new time to live on key without rewriting its value; ttl <= 0
// makes it never expire. A missing or expired key gives ErrNotFound.
func (c *Cache) Touch(ctx context.Context, key string, ttl time.Duration) error {
	_, err := call(c, ctx, mTouch, func(ctx context.Context, b backend) (struct{}, error) { return struct{}{}, b.Touch(ctx, key, ttl) })
	return err
}

// Len returns the number of entries stored. Expired entries count until the
// sweeper deletes them. It is O(1) and exact after a crash.
func (c *Cache) Len(ctx context.Context) (int64, error) {
	return call(c, ctx, mLen, func(ctx context.Context, b backend) (int64, error) { return b.Len(ctx) })
}

// Clear deletes every entry. It touches nothing but the cache's own keys;
// the space comes back as Pebble drops the deleted files, in the background.
func (c *Cache) Clear(ctx context.Context) error {
	_, err := call(c, ctx, mClear, func(ctx context.Context, b backend) (struct{}, error) { return struct{}{}, b.Clear(ctx) })
	return err
}

// SetWithOptions stores value under key with Redis SET's options. Written
// is false when NX or XX stopped the write; Old is the value it replaced
// when o.Get is set (nil if the key was missing).
func (c *Cache) SetWithOptions(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	return call(c, ctx, mSetWithOptions, func(ctx context.Context, b backend) (SetResult, error) { return b.SetWithOptions(ctx, key, value, o) })
}

// GetDelete returns the value of key and deletes it, or ErrNotFound.
func (c *Cache) GetDelete(ctx context.Context, key string) ([]byte, error) {
	return call(c, ctx, mGetDelete, func(ctx context.Context, b backend) ([]byte, error) { return b.GetDelete(ctx, key) })
}

// GetExpire returns the value of key and changes its expiry as e says (a
// zero Expiry changes nothing), or ErrNotFound. An expiry time that is not
// in the future deletes the key after reading it.
func (c *Cache) GetExpire(ctx context.Context, key string, e Expiry) ([]byte, error) {
	return call(c, ctx, mGetExpire, func(ctx context.Context, b backend) ([]byte, error) { return b.GetExpire(ctx, key, e) })
}

// Expire changes the expiry of key as e says and reports whether it did:
// false for a missing key, and for Persist on a key without an expiry. An
// expiry time that is not in the future deletes the key.
func (c *Cache) Expire(ctx context.Context, key string, e Expiry) (bool, error) {
	return call(c, ctx, mExpire, func(ctx context.Context, b backend) (bool, error) { return b.Expire(ctx, key, e) })
}

// IncrBy adds delta to the decimal integer stored under key and returns
// the result, keeping the entry's expiry. A missing key counts as 0 and is
// created without an expiry. A value that is not a decimal int64 gives
// ErrNotInteger; a result past the int64 range gives ErrOverflow.
func (c *Cache) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	return call(c, ctx, mIncrBy, func(ctx context.Context, b backend) (int64, error) { return b.IncrBy(ctx, key, delta) })
}

// Append appends suffix to the value of key, creating it if it is missing,
// keeps its expiry, and returns the new length.
func (c *Cache) Append(ctx context.Context, key string, suffix []byte) (int, error) {
	return call(c, ctx, mAppend, func(ctx context.Context, b backend) (int, error) { return b.Append(ctx, key, suffix) })
}

// Scan returns up to about count keys from cursor on, in the store's order
// (by key hash), and the cursor to pass next; 0 starts a scan and a
// returned 0 ends it. The cursor is a position in the hash space, so a scan
// survives writes, restarts and handoffs: every key present for the whole
// scan is returned, keys written meanwhile may or may not be, and none
// twice. Expired entries are skipped. count <= 0 means 10.
func (c *Cache) Scan(ctx context.Context, cursor uint64, count int) ([]string, uint64, error) {
	type page struct {
		keys []string
		next uint64
	}
	p, err := call(c, ctx, mScan, func(ctx context.Context, b backend) (page, error) {
		k, n, err := b.Scan(ctx, cursor, count)
		return page{k, n}, err
	})
	return p.keys, p.next, err
}

// Stats returns the cache's counters. Hits, Misses, LocalHits, Sets and
// Deletes count this process's calls since its Open, whichever process
// answered them, and keep counting across a handoff; the rest describe the
// store, as its owner sees it.
func (c *Cache) Stats() Stats {
	r := c.role.Load()
	if r == nil {
		return Stats{}
	}
	s := r.backend().Stats()
	n := r.counts()
	s.Hits, s.Misses, s.LocalHits, s.Sets, s.Deletes = n.hits, n.misses, n.localHits, n.sets, n.deletes
	return s
}

// Add stores value under key only if key holds no entry (memcached's add,
// Redis SET NX) and reports whether it did. A ttl <= 0 means the entry
// never expires. Processes sharing a directory use it as a lease.
func (c *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	o := SetOptions{NX: true}
	if ttl > 0 {
		o.Expiry = Expiry{TTL: ttl}
	}
	r, err := c.SetWithOptions(ctx, key, value, o)
	return r.Written, err
}
