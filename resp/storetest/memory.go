// Package storetest provides an in-memory resp.Store for tests of the
// Redis-protocol handler and of what is built on it.
package storetest

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/diskcache-go/diskcache/resp"
)

// Memory is a resp.Store in memory, with Redis string semantics. The zero
// value is not ready: use New.
type Memory struct {
	// Now tells the time for expiry; tests may replace it before use.
	Now func() time.Time

	mu      sync.Mutex
	m       map[string]entry
	hits    int64
	misses  int64
	expired int64
}

type entry struct {
	v  []byte
	at time.Time // zero: never expires
}

// New returns an empty Memory on the system clock.
func New() *Memory {
	return &Memory{Now: time.Now, m: make(map[string]entry)}
}

var _ resp.Store = (*Memory)(nil)

// live returns key's entry if present and not expired; an expired entry is
// dropped. The caller holds mu.
func (s *Memory) live(key string) (entry, bool) {
	e, ok := s.m[key]
	if !ok {
		return entry{}, false
	}
	if !e.at.IsZero() && !e.at.After(s.Now()) {
		delete(s.m, key)
		s.expired++
		return entry{}, false
	}
	return e, true
}

// at returns the expiry time e sets, given the old one.
func (s *Memory) at(e resp.Expiry, old time.Time) time.Time {
	switch {
	case e.Persist:
		return time.Time{}
	case e.TTL > 0:
		return s.Now().Add(e.TTL)
	case !e.At.IsZero():
		return e.At
	}
	return old
}

func (s *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		s.misses++
		return nil, false, nil
	}
	s.hits++
	return slices.Clone(e.v), true, nil
}

func (s *Memory) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, ok, _ := s.Get(ctx, k)
		if ok && v == nil {
			v = []byte{}
		}
		out[i] = v
	}
	return out, nil
}

func (s *Memory) TTL(_ context.Context, key string) (time.Duration, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return 0, false, nil
	}
	if e.at.IsZero() {
		return 0, true, nil
	}
	return e.at.Sub(s.Now()), true, nil
}

func (s *Memory) Exists(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.live(key)
	return ok, nil
}

func (s *Memory) Set(_ context.Context, key string, value []byte, o resp.SetOptions) (resp.SetResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.live(key)
	r := resp.SetResult{HadOld: had}
	if o.Get && had {
		r.Old = slices.Clone(old.v)
		if r.Old == nil {
			r.Old = []byte{}
		}
	}
	if (o.NX && had) || (o.XX && !had) {
		return r, nil
	}
	var at time.Time
	if o.KeepTTL {
		at = old.at
	}
	at = s.at(o.Expiry, at)
	s.m[key] = entry{v: slices.Clone(value), at: at}
	r.Written = true
	return r, nil
}

func (s *Memory) SetMany(_ context.Context, entries []resp.Entry, onlyIfNoneExist bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if onlyIfNoneExist {
		for _, e := range entries {
			if _, ok := s.live(e.Key); ok {
				return false, nil
			}
		}
	}
	for _, e := range entries {
		s.m[e.Key] = entry{v: slices.Clone(e.Value)}
	}
	return true, nil
}

func (s *Memory) Delete(_ context.Context, keys ...string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := s.live(k); ok {
			delete(s.m, k)
			n++
		}
	}
	return n, nil
}

func (s *Memory) GetDelete(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if ok {
		delete(s.m, key)
	}
	return e.v, ok, nil
}

func (s *Memory) GetExpire(_ context.Context, key string, x resp.Expiry) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return nil, false, nil
	}
	v := slices.Clone(e.v)
	if v == nil {
		v = []byte{}
	}
	s.expire(key, e, x)
	return v, true, nil
}

func (s *Memory) Expire(_ context.Context, key string, x resp.Expiry) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok || (x.Persist && e.at.IsZero()) {
		return false, nil
	}
	s.expire(key, e, x)
	return true, nil
}

// expire applies x to the live entry e of key; a time not in the future
// deletes it.
func (s *Memory) expire(key string, e entry, x resp.Expiry) {
	if x.IsZero() {
		return
	}
	e.at = s.at(x, e.at)
	if !e.at.IsZero() && !e.at.After(s.Now()) {
		delete(s.m, key)
		return
	}
	s.m[key] = e
}

func (s *Memory) IncrBy(_ context.Context, key string, delta int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := s.live(key)
	var n int64
	if e.v != nil {
		var err error
		if n, err = parseInt(e.v); err != nil {
			return 0, err
		}
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, resp.ErrOverflow
	}
	n += delta
	e.v = strconv.AppendInt(nil, n, 10)
	s.m[key] = e
	return n, nil
}

// parseInt parses a value as Redis's string2ll does: a decimal int64 with
// no spaces, leading '+' or leading zero ("-0" is not an integer either).
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 20 || b[0] == '+' || (len(b) > 1 && b[0] == '0') || (len(b) > 1 && b[0] == '-' && b[1] == '0') {
		return 0, resp.ErrNotInteger
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, resp.ErrNotInteger
	}
	return n, nil
}

func (s *Memory) Append(_ context.Context, key string, suffix []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := s.live(key)
	e.v = append(slices.Clone(e.v), suffix...)
	if e.v == nil {
		e.v = []byte{}
	}
	s.m[key] = e
	return len(e.v), nil
}

func (s *Memory) Len(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.m)), nil
}

func (s *Memory) Clear(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.m)
	return nil
}

func hash(k string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k))
	return h.Sum64()
}

// Scan visits keys in the order of their hash; the cursor is the hash to
// go on from, so keys added or removed during a scan move no others.
func (s *Memory) Scan(_ context.Context, cursor uint64, match string, count int) ([]string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type hk struct {
		h uint64
		k string
	}
	var all []hk
	for k := range s.m {
		if h := hash(k); h >= cursor {
			all = append(all, hk{h, k})
		}
	}
	slices.SortFunc(all, func(a, b hk) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return 0
	})
	var keys []string
	for i, e := range all {
		if i >= count {
			return keys, e.h, nil
		}
		if _, ok := s.live(e.k); ok && (match == "" || resp.Match(match, e.k)) {
			keys = append(keys, e.k)
		}
	}
	return keys, 0, nil
}

func (s *Memory) Info(context.Context) (map[string][][2]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	var expires int64
	for _, e := range s.m {
		if !e.at.IsZero() {
			expires++
		}
	}
	info := map[string][][2]string{
		"server": {{"store", "memory"}},
		"stats": {
			{"keyspace_hits", itoa(s.hits)},
			{"keyspace_misses", itoa(s.misses)},
			{"expired_keys", itoa(s.expired)},
			{"evicted_keys", "0"},
		},
	}
	if len(s.m) > 0 {
		info["keyspace"] = [][2]string{{"db0", "keys=" + itoa(int64(len(s.m))) + ",expires=" + itoa(expires) + ",avg_ttl=0"}}
	}
	return info, nil
}
