package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/diskcache-go/diskcache/resp"
)

// respStore makes a backend a resp.Store: the Redis protocol handler
// reports a missing key with an ok flag, since it cannot import this
// package's ErrNotFound. The owner serves its socket with one over its
// store; Cache.Serve uses one over the Cache, whatever its role.
type respStore struct {
	c       backend
	dir     string
	opts    Options
	started time.Time
}

var _ resp.Store = respStore{}

// found turns ErrNotFound into ok == false.
func found(err error) (bool, error) {
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s respStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.c.Get(ctx, key)
	ok, err := found(err)
	return v, ok, err
}

func (s respStore) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	m, err := s.c.GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out, nil
}

func (s respStore) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	d, err := s.c.TTL(ctx, key)
	ok, err := found(err)
	return d, ok, err
}

func (s respStore) Exists(ctx context.Context, key string) (bool, error) {
	return s.c.Exists(ctx, key)
}

func (s respStore) Set(ctx context.Context, key string, value []byte, o resp.SetOptions) (resp.SetResult, error) {
	r, err := s.c.SetWithOptions(ctx, key, value, SetOptions{
		Expiry: expiryOfResp(o.Expiry), KeepTTL: o.KeepTTL, NX: o.NX, XX: o.XX, Get: o.Get,
	})
	return resp.SetResult{Written: r.Written, Old: r.Old, HadOld: r.HadOld}, err
}

func expiryOfResp(e resp.Expiry) Expiry { return Expiry{TTL: e.TTL, At: e.At, Persist: e.Persist} }

// respErr gives IncrBy's errors the protocol's sentinels, which the handler
// answers with Redis's wording; the engine's error stays in the chain.
func respErr(err error) error {
	switch {
	case errors.Is(err, ErrNotInteger):
		return fmt.Errorf("%w: %w", resp.ErrNotInteger, err)
	case errors.Is(err, ErrOverflow):
		return fmt.Errorf("%w: %w", resp.ErrOverflow, err)
	}
	return err
}

func (s respStore) SetMany(ctx context.Context, entries []resp.Entry, onlyIfNoneExist bool) (bool, error) {
	es := make([]Entry, len(entries))
	for i, e := range entries {
		es[i] = Entry{Key: e.Key, Value: e.Value}
	}
	if onlyIfNoneExist {
		return s.c.SetManyIfAbsent(ctx, es)
	}
	return true, s.c.SetMany(ctx, es)
}

func (s respStore) Delete(ctx context.Context, keys ...string) (int, error) {
	return s.c.DeleteMany(ctx, keys...)
}

func (s respStore) GetDelete(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.c.GetDelete(ctx, key)
	ok, err := found(err)
	return v, ok, err
}

func (s respStore) GetExpire(ctx context.Context, key string, e resp.Expiry) ([]byte, bool, error) {
	v, err := s.c.GetExpire(ctx, key, expiryOfResp(e))
	ok, err := found(err)
	return v, ok, err
}

func (s respStore) Expire(ctx context.Context, key string, e resp.Expiry) (bool, error) {
	return s.c.Expire(ctx, key, expiryOfResp(e))
}

func (s respStore) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	n, err := s.c.IncrBy(ctx, key, delta)
	return n, respErr(err)
}

func (s respStore) Append(ctx context.Context, key string, suffix []byte) (int, error) {
	return s.c.Append(ctx, key, suffix)
}

func (s respStore) Len(ctx context.Context) (int64, error) { return s.c.Len(ctx) }
func (s respStore) Clear(ctx context.Context) error        { return s.c.Clear(ctx) }

func (s respStore) Scan(ctx context.Context, cursor uint64, match string, count int) ([]string, uint64, error) {
	keys, next, err := s.c.Scan(ctx, cursor, count)
	if err != nil || match == "" || match == "*" {
		return keys, next, err
	}
	kept := keys[:0]
	for _, k := range keys {
		if resp.Match(match, k) {
			kept = append(kept, k)
		}
	}
	return kept, next, nil
}

func (s respStore) Info(ctx context.Context) (map[string][][2]string, error) {
	n, err := s.c.Len(ctx)
	if err != nil {
		return nil, err
	}
	st := s.c.Stats()
	itoa := func(v int64) string { return strconv.FormatInt(v, 10) }
	mode := "process-crash-safe"
	switch {
	case s.opts.Sync:
		mode = "fsync"
	case s.opts.FlushInterval > 0:
		mode = "flush-every-" + s.opts.FlushInterval.String()
	}
	info := map[string][][2]string{
		"server": {
			{"diskcache_dir", s.dir},
			{"process_id", strconv.Itoa(os.Getpid())},
			{"uptime_in_seconds", itoa(int64(time.Since(s.started).Seconds()))},
		},
		"stats": {
			{"keyspace_hits", itoa(st.Hits)},
			{"keyspace_misses", itoa(st.Misses)},
			{"expired_keys", itoa(st.Expirations)},
			{"evicted_keys", itoa(st.Evictions)},
			{"diskcache_evicted_bytes", itoa(st.EvictedBytes)},
			{"diskcache_sets", itoa(st.Sets)},
			{"diskcache_deletes", itoa(st.Deletes)},
		},
		"persistence": {
			{"diskcache_durability", mode},
			{"diskcache_disk_bytes", itoa(st.DiskBytes)},
			{"diskcache_stored_bytes", itoa(st.Bytes)},
			{"diskcache_size_limit", itoa(s.opts.SizeLimit)},
		},
	}
	// Redis leaves an empty database out of the keyspace section. The
	// expiry index is not counted, so the line has no expires or avg_ttl.
	if n > 0 {
		info["keyspace"] = [][2]string{{"db0", "keys=" + itoa(n)}}
	}
	return info, nil
}
