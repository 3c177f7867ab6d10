package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// forwarder is the Cache of a process that does not own the directory: it
// sends each call to the owner over the Unix socket, through rueidis, whose
// automatic pipelining sends the calls of concurrent goroutines together
// over a few connections.
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
	// A cheap probe first: a starting owner holds the lock before it
	// listens, and the caller retries until it does.
	probe, err := net.DialTimeout("unix", path, 100*time.Millisecond)
	if err != nil {
		return nil, err
	}
	probe.Close()
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{path},
		DialCtxFn: func(ctx context.Context, _ string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
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

// fetch reads key from the owner with its expiry, through the local cache:
// the value is cached with the stamp st, read before the request.
func (f *forwarder) fetch(ctx context.Context, key string, st stamp) ([]byte, time.Duration, error) {
	start := f.near.clock.Now()
	rs := f.client.DoMulti(ctx, f.cmd("GET", key), f.cmd("PTTL", key))
	v, err := f.bytes(rs[0])
	if err != nil {
		return nil, 0, err
	}
	n, err := f.int(rs[1])
	if err != nil {
		return nil, 0, err
	}
	switch {
	case n == -1:
		f.near.put(key, st, v, 0)
		return v, 0, nil
	case n > 1:
		// PTTL is rounded to the nearest millisecond and was measured
		// after start: start + n - 1 ms is never after the real expiry.
		left := time.Duration(n-1) * time.Millisecond
		f.near.put(key, st, v, start.Add(left).UnixNano())
		return v, left, nil
	}
	// Expiring now, or gone between GET and PTTL: not worth caching.
	return v, time.Millisecond, nil
}

// nearGet answers key from the local cache, or fetches it; the value is
// the caller's.
func (f *forwarder) nearGet(ctx context.Context, key string) ([]byte, time.Duration, error) {
	e, st, ok := f.near.lookup(key)
	if !ok {
		return f.fetch(ctx, key, st)
	}
	f.nearHits.add(0, 1)
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

// fail turns what the owner said, or the connection's failure, into this
// package's errors. A broken connection, or an owner that is closing,
// wraps errOwnerGone: the caller hands off.
func (f *forwarder) fail(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		return fmt.Errorf("%w (pid %d, %s): %w", errOwnerGone, f.pid, f.path, err)
	}
	msg := strings.TrimPrefix(re.Error(), "ERR ")
	for _, sentinel := range []error{ErrClosed, ErrValueTooLarge, ErrKeyTooLarge, ErrCorrupt, ErrNotInteger, ErrOverflow, ErrStoreFailed, ErrWritesSuspended} {
		if strings.Contains(msg, sentinel.Error()) {
			if sentinel == ErrClosed {
				return fmt.Errorf("%w (pid %d): it is closing", errOwnerGone, f.pid)
			}
			return fmt.Errorf("%w (from the owner, pid %d: %s)", sentinel, f.pid, msg)
		}
	}
	return fmt.Errorf("diskcache: the owner (pid %d) answered: %s", f.pid, msg)
}

func (f *forwarder) cmd(tokens ...string) rueidis.Completed {
	return f.client.B().Arbitrary(tokens...).Build()
}

// do sends one command; a nil reply is ErrNotFound.
func (f *forwarder) do(ctx context.Context, tokens ...string) rueidis.RedisResult {
	return f.client.Do(ctx, f.cmd(tokens...))
}

func bin(b []byte) string { return rueidis.BinaryString(b) }

// ms is a duration in whole milliseconds, rounded up: an entry never
// expires before its time.
func ms(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10)
}

func msAt(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// expiryArgs are the SET/GETEX arguments for e.
func expiryArgs(e Expiry) []string {
	switch {
	case e.Persist:
		return []string{"PERSIST"}
	case !e.At.IsZero():
		return []string{"PXAT", msAt(e.At)}
	case e.TTL > 0:
		return []string{"PX", ms(e.TTL)}
	}
	return nil
}

// pttl turns a PTTL reply into a remaining time: ok false for -2 (missing),
// 0 for -1 (no expiry).
func pttl(n int64) (time.Duration, bool) {
	switch {
	case n == -2:
		return 0, false
	case n < 0:
		return 0, true
	}
	return time.Duration(n) * time.Millisecond, true
}

func (f *forwarder) bytes(r rueidis.RedisResult) ([]byte, error) {
	v, err := r.AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, f.fail(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (f *forwarder) int(r rueidis.RedisResult) (int64, error) {
	n, err := r.AsInt64()
	return n, f.fail(err)
}

func (f *forwarder) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	var err error
	if f.near != nil {
		v, _, err = f.nearGet(ctx, key)
	} else {
		v, err = f.bytes(f.do(ctx, "GET", key))
	}
	f.stats.countRead(0, err)
	return v, err
}

func (f *forwarder) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if f.near != nil {
		v, left, err := f.nearGet(ctx, key)
		f.stats.countRead(0, err)
		return v, left, err
	}
	rs := f.client.DoMulti(ctx, f.cmd("GET", key), f.cmd("PTTL", key))
	v, err := f.bytes(rs[0])
	f.stats.countRead(0, err)
	if err != nil {
		return nil, 0, err
	}
	n, err := f.int(rs[1])
	if err != nil {
		return nil, 0, err
	}
	left, _ := pttl(n)
	return v, left, nil
}

func (f *forwarder) Exists(ctx context.Context, key string) (bool, error) {
	if f.near != nil {
		if _, _, ok := f.near.lookup(key); ok {
			return true, nil
		}
	}
	n, err := f.int(f.do(ctx, "EXISTS", key))
	return n == 1, err
}

func (f *forwarder) TTL(ctx context.Context, key string) (time.Duration, error) {
	n, err := f.int(f.do(ctx, "PTTL", key))
	if err != nil {
		return 0, err
	}
	left, ok := pttl(n)
	if !ok {
		return 0, ErrNotFound
	}
	return left, nil
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
	msgs, err := f.do(ctx, append([]string{"MGET"}, keys...)...).ToArray()
	if err != nil {
		return nil, f.fail(err)
	}
	for i, m := range msgs {
		if i >= len(keys) || m.IsNil() {
			f.stats.misses.add(uint64(i), 1)
			continue
		}
		v, err := m.AsBytes()
		if err != nil {
			return nil, f.fail(err)
		}
		if v == nil {
			v = []byte{}
		}
		out[keys[i]] = v
		f.stats.hits.add(uint64(i), 1)
	}
	return out, nil
}

func (f *forwarder) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	defer f.wrote(key)
	args := []string{"SET", key, bin(value)}
	if ttl > 0 {
		args = append(args, "PX", ms(ttl))
	}
	err := f.fail(f.do(ctx, args...).Error())
	if err == nil {
		f.stats.sets.add(0, 1)
	}
	return err
}

// SetMany sends MSET when no entry expires, which the owner applies as one
// batch. Entries with a TTL go as a pipeline of SETs, which the owner
// applies one by one (the protocol has no MSET with expiries).
func (f *forwarder) SetMany(ctx context.Context, entries []Entry) error {
	defer f.wroteEntries(entries)
	if len(entries) == 0 {
		return nil
	}
	if !anyTTL(entries) {
		args := []string{"MSET"}
		for _, e := range entries {
			args = append(args, e.Key, bin(e.Value))
		}
		return f.fail(f.do(ctx, args...).Error())
	}
	cmds := make(rueidis.Commands, len(entries))
	for i, e := range entries {
		args := []string{"SET", e.Key, bin(e.Value)}
		if e.TTL > 0 {
			args = append(args, "PX", ms(e.TTL))
		}
		cmds[i] = f.cmd(args...)
	}
	for _, r := range f.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return f.fail(err)
		}
	}
	return nil
}

// SetManyIfAbsent sends MSETNX, and then the expiries of the entries that
// have one: from a forwarding process those are set just after the values.
func (f *forwarder) SetManyIfAbsent(ctx context.Context, entries []Entry) (bool, error) {
	defer f.wroteEntries(entries)
	if len(entries) == 0 {
		return true, nil
	}
	args := []string{"MSETNX"}
	for _, e := range entries {
		args = append(args, e.Key, bin(e.Value))
	}
	n, err := f.int(f.do(ctx, args...))
	if err != nil || n == 0 {
		return false, err
	}
	for _, e := range entries {
		if e.TTL > 0 {
			if err := f.fail(f.do(ctx, "PEXPIRE", e.Key, ms(e.TTL)).Error()); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

func anyTTL(entries []Entry) bool {
	for _, e := range entries {
		if e.TTL > 0 {
			return true
		}
	}
	return false
}

func (f *forwarder) Delete(ctx context.Context, key string) error {
	_, err := f.DeleteMany(ctx, key)
	return err
}

func (f *forwarder) DeleteMany(ctx context.Context, keys ...string) (int, error) {
	defer f.wrote(keys...)
	if len(keys) == 0 {
		return 0, nil
	}
	n, err := f.int(f.do(ctx, append([]string{"DEL"}, keys...)...))
	f.stats.deletes.add(0, n)
	return int(n), err
}

func (f *forwarder) Touch(ctx context.Context, key string, ttl time.Duration) error {
	defer f.wrote(key)
	if ttl > 0 {
		n, err := f.int(f.do(ctx, "PEXPIRE", key, ms(ttl)))
		if err == nil && n == 0 {
			err = ErrNotFound
		}
		return err
	}
	rs := f.client.DoMulti(ctx, f.cmd("EXISTS", key), f.cmd("PERSIST", key))
	n, err := f.int(rs[0])
	if err == nil && n == 0 {
		err = ErrNotFound
	}
	if err == nil {
		err = f.fail(rs[1].Error())
	}
	return err
}

func (f *forwarder) Len(ctx context.Context) (int64, error) {
	return f.int(f.do(ctx, "DBSIZE"))
}

func (f *forwarder) Clear(ctx context.Context) error {
	if f.near != nil {
		defer f.near.clear()
	}
	return f.fail(f.do(ctx, "FLUSHDB").Error())
}

func (f *forwarder) SetWithOptions(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	defer f.wrote(key)
	args := append([]string{"SET", key, bin(value)}, expiryArgs(o.Expiry)...)
	if o.Expiry.Persist {
		args = args[:3] // SET has no PERSIST: no expiry is its default
	}
	if o.NX {
		args = append(args, "NX")
	}
	if o.XX {
		args = append(args, "XX")
	}
	if o.KeepTTL {
		args = append(args, "KEEPTTL")
	}
	if !o.Get {
		err := f.do(ctx, args...).Error()
		if rueidis.IsRedisNil(err) { // NX or XX stopped it
			return SetResult{HadOld: o.NX}, nil
		}
		if err != nil {
			return SetResult{}, f.fail(err)
		}
		f.stats.sets.add(0, 1)
		return SetResult{Written: true, HadOld: o.XX}, nil
	}
	old, err := f.bytes(f.do(ctx, append(args, "GET")...))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return SetResult{}, err
	}
	r := SetResult{Old: old, HadOld: old != nil}
	r.Written = !(o.NX && r.HadOld) && !(o.XX && !r.HadOld)
	if r.Written {
		f.stats.sets.add(0, 1)
	}
	return r, nil
}

func (f *forwarder) GetDelete(ctx context.Context, key string) ([]byte, error) {
	defer f.wrote(key)
	return f.bytes(f.do(ctx, "GETDEL", key))
}

func (f *forwarder) GetExpire(ctx context.Context, key string, e Expiry) ([]byte, error) {
	defer f.wrote(key)
	return f.bytes(f.do(ctx, append([]string{"GETEX", key}, expiryArgs(e)...)...))
}

func (f *forwarder) Expire(ctx context.Context, key string, e Expiry) (bool, error) {
	defer f.wrote(key)
	var n int64
	var err error
	switch {
	case e.Persist:
		n, err = f.int(f.do(ctx, "PERSIST", key))
	case !e.At.IsZero():
		n, err = f.int(f.do(ctx, "PEXPIREAT", key, msAt(e.At)))
	case e.TTL > 0:
		n, err = f.int(f.do(ctx, "PEXPIRE", key, ms(e.TTL)))
	}
	return n == 1, err
}

func (f *forwarder) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	defer f.wrote(key)
	return f.int(f.do(ctx, "INCRBY", key, strconv.FormatInt(delta, 10)))
}

func (f *forwarder) Append(ctx context.Context, key string, suffix []byte) (int, error) {
	defer f.wrote(key)
	n, err := f.int(f.do(ctx, "APPEND", key, bin(suffix)))
	return int(n), err
}

func (f *forwarder) Scan(ctx context.Context, cursor uint64, count int) ([]string, uint64, error) {
	if count <= 0 {
		count = 10
	}
	e, err := f.do(ctx, "SCAN", strconv.FormatUint(cursor, 10), "COUNT", strconv.Itoa(count)).AsScanEntry()
	if err != nil {
		return nil, 0, f.fail(err)
	}
	return e.Elements, e.Cursor, nil
}

// Stats counts this process's reads and writes, and asks the owner for the
// rest (with a short timeout: Stats has no context).
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
	info, err := f.do(ctx, "INFO").ToString()
	if err != nil {
		return s
	}
	for _, line := range strings.Split(info, "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimPrefix(value, "keys="), 10, 64)
		switch name {
		case "db0":
			s.Entries = n
		case "expired_keys":
			s.Expirations = n
		case "evicted_keys":
			s.Evictions = n
		case "diskcache_evicted_bytes":
			s.EvictedBytes = n
		case "diskcache_stored_bytes":
			s.Bytes = n
		case "diskcache_disk_bytes":
			s.DiskBytes = n
		}
	}
	return s
}
