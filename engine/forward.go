package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"time"

	"github.com/redis/rueidis"

	"github.com/diskcache-go/diskcache/ttl"
)

// forwarder is the Cache of a process that does not own the directory: it
// sends each call to the owner over the Unix socket as the call's private
// command (contract.go), through rueidis, whose automatic pipelining sends
// the calls of concurrent goroutines together over a few connections.
type forwarder struct {
	dir    string
	path   string
	pid    int // the owner's, for error messages
	client rueidis.Client
	stats  statCounters
	tier   *readTier // the owner's hot tier; nil when it shares none
	clock  ttl.Clock // tells the tier's entries' expiry
	// tierHits counts the Gets answered from the tier.
	tierHits counter
}

// dialOwner connects to the owner of dir.
func dialOwner(dir string, o *Options) (*forwarder, error) {
	path := socketPath(dir)
	// A cheap connect first: with no owner listening (one closing, or none)
	// the caller tries the lock again, without building a client. The
	// connection is the client's first: closed and dialled again, it would
	// leave a closing owner a moment with nobody connected, and it would
	// stop lingering for this process (ownerServer.linger).
	first, err := net.DialTimeout("unix", path, 100*time.Millisecond)
	if err != nil {
		return nil, err
	}
	firstc := make(chan net.Conn, 1)
	firstc <- first
	takeFirst := func() net.Conn {
		select {
		case c := <-firstc:
			return c
		default:
			return nil
		}
	}
	defer func() {
		if c := takeFirst(); c != nil {
			c.Close() // the client was not built
		}
	}()
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{path},
		DialCtxFn: func(ctx context.Context, _ string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
			if c := takeFirst(); c != nil {
				return c, nil
			}
			return d.DialContext(ctx, "unix", path)
		},
		ForceSingleClient: true,
		DisableCache:      true,
		DisableRetry:      true, // Cache.call decides what is retried, across owners
		ClientSetInfo:     rueidis.DisableClientSetInfo,
		ConnWriteTimeout:  o.HandoffWindow,
	})
	if err != nil {
		return nil, err
	}
	f := &forwarder{dir: dir, path: path, pid: ownerPID(filepath.Join(dir, lockName)), client: client, clock: o.Clock}
	fd, id, err := f.hello(o.HandoffWindow)
	if err != nil {
		client.Close()
		return nil, err
	}
	if fd >= 0 && o.LocalCacheSize >= 0 {
		// Without the tier the forwarder asks the owner for every read,
		// which is still correct.
		if f.tier, err = openReadTier(dir, f.pid, fd, id); err != nil {
			o.Logger.Warn("diskcache: no hot tier in this process: every read asks the owner", "cache", dir, "err", err)
		}
	}
	return f, nil
}

// hello checks that the owner speaks this binary's protocol version, and
// returns what it tells of its hot tier: its descriptor in the owner (-1
// for none) and its id.
func (f *forwarder) hello(timeout time.Duration) (int64, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var w wbuf
	w.uint(protocolVersion)
	b, err := f.client.Do(ctx, f.client.B().Arbitrary(cmdHello, rueidis.BinaryString(w.b)).Build()).AsBytes()
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		return -1, 0, fmt.Errorf("%w: the owner of %s (pid %d) does not know the private protocol (%s); it runs an older diskcache",
			ErrIncompatible, f.dir, f.pid, re.Error())
	}
	if err != nil {
		return -1, 0, err
	}
	r, err := f.reply(b)
	if err != nil {
		return -1, 0, fmt.Errorf("diskcache: %s: %w", f.dir, err)
	}
	_, pid, fd, id := r.uint(), r.int(), r.int(), r.uint()
	if err := r.done(); err != nil {
		return -1, 0, fmt.Errorf("%w: the owner of %s answered hello with %d bytes that do not decode", ErrIncompatible, f.dir, len(b))
	}
	f.pid = int(pid)
	return fd, id, nil
}

// roundTrip sends one call of m, its arguments encoded by args, and returns
// its results to decode. A tokened call sends its token (calls.go) first.
func (f *forwarder) roundTrip(ctx context.Context, m *method, args func(w *wbuf)) (*rbuf, error) {
	var w wbuf
	if m.repeat == repeatToken {
		if ci := callOf(ctx); ci != nil {
			w.bytes(ci.token)
			w.bool(ci.repeat)
		} else {
			w.bytes(nil)
			w.bool(false)
		}
	}
	if args != nil {
		args(&w)
	}
	b, err := f.client.Do(ctx, f.client.B().Arbitrary(m.command(), rueidis.BinaryString(w.b)).Build()).AsBytes()
	if err != nil {
		return nil, f.fail(err)
	}
	return f.reply(b)
}

// reply decodes a reply's status and tally, and returns the results to
// decode, or the error the status code stands for.
func (f *forwarder) reply(b []byte) (*rbuf, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("diskcache: the owner (pid %d) sent an empty reply", f.pid)
	}
	code := b[0]
	r := &rbuf{b: b[1:]}
	hits, misses, sets, deletes := r.int(), r.int(), r.int(), r.int()
	f.stats.hits.add(0, hits)
	f.stats.misses.add(0, misses)
	f.stats.sets.add(0, sets)
	f.stats.deletes.add(0, deletes)
	switch code {
	case codeOK:
		return r, nil
	case codeNotFound:
		return nil, ErrNotFound
	}
	msg := r.str()
	if r.err != nil {
		return nil, fmt.Errorf("diskcache: the owner (pid %d) sent a reply that does not decode", f.pid)
	}
	switch code {
	case codeClosed:
		return nil, fmt.Errorf("%w (pid %d): it is closing", errOwnerGone, f.pid)
	case codeBadRequest:
		return nil, fmt.Errorf("diskcache: the owner (pid %d) could not decode a call: %s", f.pid, msg)
	}
	if sentinel := errOfCode(code); sentinel != nil {
		return nil, fmt.Errorf("%w (from the owner, pid %d: %s)", sentinel, f.pid, msg)
	}
	return nil, fmt.Errorf("diskcache: the owner (pid %d) answered: %s", f.pid, msg)
}

// results checks that r held exactly the results read from it.
func (f *forwarder) results(r *rbuf) error {
	if err := r.done(); err != nil {
		return fmt.Errorf("diskcache: the owner (pid %d) sent results that do not decode", f.pid)
	}
	return nil
}

// lookup answers key from the hot tier if it holds it and it has not
// expired: its value (the caller's) and the time it has left (0 for
// never). A Get counts the hit (hit); other reads count none, as in the
// owner.
func (f *forwarder) lookup(key string) ([]byte, time.Duration, bool) {
	if f.tier == nil {
		return nil, 0, false
	}
	v, expiry, ok := f.tier.get(key)
	if !ok {
		return nil, 0, false
	}
	left, live := timeLeft(expiry, f.clock)
	return v, left, live
}

// hit counts a Get answered from the tier.
func (f *forwarder) hit() {
	shard := rand.Uint64() % numShards
	f.tierHits.add(shard, 1)
	f.stats.hits.add(shard, 1)
}

func (f *forwarder) Close() error {
	f.client.Close()
	return nil
}

// fail turns the connection's failure into this package's errors: a broken
// connection wraps errOwnerGone, and the caller hands off. A Redis error
// reply to a private command means the owner does not serve the contract.
func (f *forwarder) fail(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		return fmt.Errorf("diskcache: the owner (pid %d, %s) refused a call: %s", f.pid, f.path, re.Error())
	}
	return fmt.Errorf("%w (pid %d, %s): %w", errOwnerGone, f.pid, f.path, err)
}

func (f *forwarder) Get(ctx context.Context, key string) ([]byte, error) {
	if v, _, ok := f.lookup(key); ok {
		f.hit()
		return v, nil
	}
	r, err := f.roundTrip(ctx, mGet, func(w *wbuf) { w.str(key) })
	if err != nil {
		return nil, err
	}
	v := nonNil(r.bytes())
	return v, f.results(r)
}

func (f *forwarder) getWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	r, err := f.roundTrip(ctx, mGetWithTTL, func(w *wbuf) { w.str(key) })
	if err != nil {
		return nil, 0, err
	}
	v, left := nonNil(r.bytes()), time.Duration(r.int())
	return v, left, f.results(r)
}

func (f *forwarder) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if v, left, ok := f.lookup(key); ok {
		f.hit()
		return v, left, nil
	}
	return f.getWithTTL(ctx, key)
}

func (f *forwarder) Exists(ctx context.Context, key string) (bool, error) {
	if _, _, ok := f.lookup(key); ok {
		return true, nil
	}
	r, err := f.roundTrip(ctx, mExists, func(w *wbuf) { w.str(key) })
	if err != nil {
		return false, err
	}
	ok := r.bool()
	return ok, f.results(r)
}

func (f *forwarder) TTL(ctx context.Context, key string) (time.Duration, error) {
	r, err := f.roundTrip(ctx, mTTL, func(w *wbuf) { w.str(key) })
	if err != nil {
		return 0, err
	}
	left := time.Duration(r.int())
	return left, f.results(r)
}

func (f *forwarder) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	if f.tier != nil {
		missing := keys[:0:0]
		for _, k := range keys {
			if v, _, ok := f.lookup(k); ok {
				out[k] = v
				f.hit()
			} else {
				missing = append(missing, k)
			}
		}
		keys = missing
	}
	if len(keys) == 0 {
		return out, nil
	}
	r, err := f.roundTrip(ctx, mGetMany, func(w *wbuf) { w.strs(keys) })
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if v := r.bytes(); v != nil {
			out[k] = v
		}
	}
	return out, f.results(r)
}

// done finishes a call without results.
func (f *forwarder) done(r *rbuf, err error) error {
	if err != nil {
		return err
	}
	return f.results(r)
}

func (f *forwarder) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return f.done(f.roundTrip(ctx, mSet, func(w *wbuf) {
		w.str(key)
		w.bytes(value)
		w.int(int64(ttl))
	}))
}

// SetMany is one call: the owner applies the entries, expiries included,
// as one batch.
func (f *forwarder) SetMany(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	return f.done(f.roundTrip(ctx, mSetMany, func(w *wbuf) { w.entries(entries) }))
}

func (f *forwarder) SetManyIfAbsent(ctx context.Context, entries []Entry) (bool, error) {
	if len(entries) == 0 {
		return true, nil
	}
	r, err := f.roundTrip(ctx, mSetManyIfAbsent, func(w *wbuf) { w.entries(entries) })
	if err != nil {
		return false, err
	}
	ok := r.bool()
	return ok, f.results(r)
}

func (f *forwarder) Delete(ctx context.Context, key string) error {
	return f.done(f.roundTrip(ctx, mDelete, func(w *wbuf) { w.str(key) }))
}

func (f *forwarder) DeleteMany(ctx context.Context, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	r, err := f.roundTrip(ctx, mDeleteMany, func(w *wbuf) { w.strs(keys) })
	if err != nil {
		return 0, err
	}
	n := r.int()
	return int(n), f.results(r)
}

func (f *forwarder) Touch(ctx context.Context, key string, ttl time.Duration) error {
	return f.done(f.roundTrip(ctx, mTouch, func(w *wbuf) {
		w.str(key)
		w.int(int64(ttl))
	}))
}

func (f *forwarder) Len(ctx context.Context) (int64, error) {
	r, err := f.roundTrip(ctx, mLen, nil)
	if err != nil {
		return 0, err
	}
	n := r.int()
	return n, f.results(r)
}

func (f *forwarder) Clear(ctx context.Context) error {
	return f.done(f.roundTrip(ctx, mClear, nil))
}

func (f *forwarder) SetWithOptions(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	r, err := f.roundTrip(ctx, mSetWithOptions, func(w *wbuf) {
		w.str(key)
		w.bytes(value)
		w.setOptions(o)
	})
	if err != nil {
		return SetResult{}, err
	}
	res := SetResult{Written: r.bool(), HadOld: r.bool(), Old: r.bytes()}
	return res, f.results(r)
}

func (f *forwarder) GetDelete(ctx context.Context, key string) ([]byte, error) {
	r, err := f.roundTrip(ctx, mGetDelete, func(w *wbuf) { w.str(key) })
	if err != nil {
		return nil, err
	}
	v := nonNil(r.bytes())
	return v, f.results(r)
}

func (f *forwarder) GetExpire(ctx context.Context, key string, e Expiry) ([]byte, error) {
	r, err := f.roundTrip(ctx, mGetExpire, func(w *wbuf) {
		w.str(key)
		w.expiry(e)
	})
	if err != nil {
		return nil, err
	}
	v := nonNil(r.bytes())
	return v, f.results(r)
}

func (f *forwarder) Expire(ctx context.Context, key string, e Expiry) (bool, error) {
	r, err := f.roundTrip(ctx, mExpire, func(w *wbuf) {
		w.str(key)
		w.expiry(e)
	})
	if err != nil {
		return false, err
	}
	ok := r.bool()
	return ok, f.results(r)
}

func (f *forwarder) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	r, err := f.roundTrip(ctx, mIncrBy, func(w *wbuf) {
		w.str(key)
		w.int(delta)
	})
	if err != nil {
		return 0, err
	}
	n := r.int()
	return n, f.results(r)
}

func (f *forwarder) Append(ctx context.Context, key string, suffix []byte) (int, error) {
	r, err := f.roundTrip(ctx, mAppend, func(w *wbuf) {
		w.str(key)
		w.bytes(suffix)
	})
	if err != nil {
		return 0, err
	}
	n := r.int()
	return int(n), f.results(r)
}

func (f *forwarder) Scan(ctx context.Context, cursor uint64, count int) ([]string, uint64, error) {
	r, err := f.roundTrip(ctx, mScan, func(w *wbuf) {
		w.uint(cursor)
		w.int(int64(count))
	})
	if err != nil {
		return nil, 0, err
	}
	keys, next := r.strs(), r.uint()
	return keys, next, f.results(r)
}

// ownCounts is what this process's calls counted, as the owner counted
// them, and the Gets the hot tier answered.
func (f *forwarder) ownCounts() callCounts {
	return callCounts{hits: f.stats.hits.load(), misses: f.stats.misses.load(), localHits: f.tierHits.load(),
		sets: f.stats.sets.load(), deletes: f.stats.deletes.load()}
}

// Stats counts this process's calls as the owner counted them (each reply
// carries what the call added to the owner's counters), and asks the owner
// for the rest, with a short timeout: Stats has no context.
func (f *forwarder) Stats() Stats {
	s := Stats{
		Hits:      f.stats.hits.load(),
		Misses:    f.stats.misses.load(),
		LocalHits: f.tierHits.load(),
		Sets:      f.stats.sets.load(),
		Deletes:   f.stats.deletes.load(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := f.roundTrip(ctx, mStats, nil)
	if err != nil {
		return s
	}
	var o [11]int64
	for i := range o {
		o[i] = r.int()
	}
	if f.results(r) != nil {
		return s
	}
	s.Expirations, s.Evictions, s.EvictedBytes, s.Entries, s.Bytes, s.DiskBytes = o[5], o[6], o[7], o[8], o[9], o[10]
	// roundTrip added the Stats call's tally, which is zero.
	return s
}
