package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/redis/rueidis"
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
	near   *nearCache // nil when the local cache is off or unavailable
	// nearHits counts the Gets answered by near.
	nearHits counter
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
	f := &forwarder{dir: dir, path: path, pid: ownerPID(filepath.Join(dir, lockName)), client: client}
	if err := f.hello(o.HandoffWindow); err != nil {
		client.Close()
		return nil, err
	}
	if o.LocalCacheSize > 0 {
		// The owner created the table before it listened. Without it the
		// forwarder asks the owner for every read, which is still correct.
		if gens, err := openGenerations(dir); err == nil {
			f.near = newNearCache(gens, o.Clock, o.LocalCacheSize)
		} else {
			o.Logger.Warn("diskcache: no local cache in this process", "cache", dir, "err", err)
		}
	}
	return f, nil
}

// wrote forgets what the local cache holds of keys this process has just
// written. Coherence does not need it (the owner bumped their
// generations); it frees the memory for keys that are still good.
func (f *forwarder) wrote(keys ...string) {
	if f.near != nil {
		f.near.drop(keys...)
	}
}

func (f *forwarder) wroteEntries(entries []Entry) {
	for _, e := range entries {
		f.wrote(e.Key)
	}
}

// hello checks that the owner speaks this binary's protocol version.
func (f *forwarder) hello(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var w wbuf
	w.uint(protocolVersion)
	b, err := f.client.Do(ctx, f.client.B().Arbitrary(cmdHello, rueidis.BinaryString(w.b)).Build()).AsBytes()
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		return fmt.Errorf("%w: the owner of %s (pid %d) does not know the private protocol (%s); it runs an older diskcache",
			ErrIncompatible, f.dir, f.pid, re.Error())
	}
	if err != nil {
		return err
	}
	r, err := f.reply(b)
	if err != nil {
		return fmt.Errorf("diskcache: %s: %w", f.dir, err)
	}
	_, pid := r.uint(), r.int()
	if err := r.done(); err != nil {
		return fmt.Errorf("%w: the owner of %s answered hello with %d bytes that do not decode", ErrIncompatible, f.dir, len(b))
	}
	f.pid = int(pid)
	return nil
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

// fetch reads key from the owner with its expiry, through the local cache:
// the value is cached with the stamp st, read before the request.
func (f *forwarder) fetch(ctx context.Context, key string, st stamp) ([]byte, time.Duration, error) {
	start := f.near.clock.Now()
	v, left, err := f.getWithTTL(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	// The owner measured left after start: start + left is never after
	// the real expiry.
	var expiry int64
	if left > 0 {
		expiry = start.Add(left).UnixNano()
	}
	f.near.put(key, st, v, expiry)
	return v, left, nil
}

// nearGet answers key from the local cache, or fetches it; the value is
// the caller's.
func (f *forwarder) nearGet(ctx context.Context, key string) ([]byte, time.Duration, error) {
	e, st, ok := f.near.lookup(key)
	if !ok {
		return f.fetch(ctx, key, st)
	}
	f.nearHits.add(0, 1)
	f.stats.hits.add(0, 1)
	var left time.Duration
	if e.expiry != 0 {
		left = max(time.Duration(e.expiry-f.near.clock.Now().UnixNano()), time.Millisecond)
	}
	return append([]byte{}, e.value...), left, nil
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
	if f.near != nil {
		v, _, err := f.nearGet(ctx, key)
		return v, err
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
	if f.near != nil {
		return f.nearGet(ctx, key)
	}
	return f.getWithTTL(ctx, key)
}

func (f *forwarder) Exists(ctx context.Context, key string) (bool, error) {
	if f.near != nil {
		if _, _, ok := f.near.lookup(key); ok {
			return true, nil
		}
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
	if f.near != nil {
		missing := keys[:0:0]
		for _, k := range keys {
			if e, _, ok := f.near.lookup(k); ok {
				out[k] = append([]byte{}, e.value...)
				f.stats.hits.add(0, 1)
				f.nearHits.add(0, 1)
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
	defer f.wrote(key)
	return f.done(f.roundTrip(ctx, mSet, func(w *wbuf) {
		w.str(key)
		w.bytes(value)
		w.int(int64(ttl))
	}))
}

// SetMany is one call: the owner applies the entries, expiries included,
// as one batch.
func (f *forwarder) SetMany(ctx context.Context, entries []Entry) error {
	defer f.wroteEntries(entries)
	if len(entries) == 0 {
		return nil
	}
	return f.done(f.roundTrip(ctx, mSetMany, func(w *wbuf) { w.entries(entries) }))
}

func (f *forwarder) SetManyIfAbsent(ctx context.Context, entries []Entry) (bool, error) {
	defer f.wroteEntries(entries)
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
	defer f.wrote(key)
	return f.done(f.roundTrip(ctx, mDelete, func(w *wbuf) { w.str(key) }))
}

func (f *forwarder) DeleteMany(ctx context.Context, keys ...string) (int, error) {
	defer f.wrote(keys...)
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
	defer f.wrote(key)
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
	if f.near != nil {
		defer f.near.clear()
	}
	return f.done(f.roundTrip(ctx, mClear, nil))
}

func (f *forwarder) SetWithOptions(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	defer f.wrote(key)
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
	defer f.wrote(key)
	r, err := f.roundTrip(ctx, mGetDelete, func(w *wbuf) { w.str(key) })
	if err != nil {
		return nil, err
	}
	v := nonNil(r.bytes())
	return v, f.results(r)
}

func (f *forwarder) GetExpire(ctx context.Context, key string, e Expiry) ([]byte, error) {
	defer f.wrote(key)
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
	defer f.wrote(key)
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
	defer f.wrote(key)
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
	defer f.wrote(key)
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
// them, and the Gets its local cache answered.
func (f *forwarder) ownCounts() callCounts {
	return callCounts{hits: f.stats.hits.load(), misses: f.stats.misses.load(), localHits: f.nearHits.load(),
		sets: f.stats.sets.load(), deletes: f.stats.deletes.load()}
}

// Stats counts this process's calls as the owner counted them (each reply
// carries what the call added to the owner's counters), and asks the owner
// for the rest, with a short timeout: Stats has no context.
func (f *forwarder) Stats() Stats {
	s := Stats{
		Hits:      f.stats.hits.load(),
		Misses:    f.stats.misses.load(),
		LocalHits: f.nearHits.load(),
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
