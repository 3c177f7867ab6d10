// Package redis is the Backend of package manager on a Redis server,
// through the rueidis client: the way past one machine. Any server that
// speaks the Redis protocol will do (rueidis falls back to RESP2 when HELLO
// is unknown) if it has the commands used: GET, SET with PX and NX, PTTL,
// MGET, EXISTS, UNLINK and SCAN; diskcache serve has them all.
//
// Keys, values and times to live map one to one onto Redis strings, PX
// expiry included, so other programs can read what the manager writes.
// Tags are the manager's versions, kept in ordinary keys (see
// manager.Manager.InvalidateTag): no scripts.
//
// Redis Cluster: every call works, on keys spread over every hash slot.
// The backend sends no command naming keys of two slots (rueidis panics on
// one): GetMany's MGET is split by slot, SetMany and Clear send one
// command a key. Dial a node, or give New a client made with the
// cluster's addresses; rueidis follows MOVED and ASK while slots migrate,
// and retries every call but Add on CLUSTERDOWN, TRYAGAIN and connection
// errors until ctx ends. While a replica takes over from a dead master, a
// few calls still fail with a connection error: rueidis returns one when
// refreshing its view of the cluster fails (TestClusterFailover counts
// them).
package redis

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/diskcache-go/diskcache/manager"
)

// Options configure a Cache. A nil *Options is the defaults.
type Options struct {
	// Prefix starts every key the backend stores. Clear deletes only keys
	// that start with it; with no Prefix, that is every key of the logical
	// database, whoever wrote it.
	Prefix string
}

// Cache is a manager.Backend on Redis. It is safe for concurrent use.
type Cache struct {
	client rueidis.Client
	own    bool // Close closes client
	prefix string
	closed atomic.Bool
}

var (
	_ manager.Backend     = (*Cache)(nil)
	_ manager.BatchGetter = (*Cache)(nil)
	_ manager.BatchSetter = (*Cache)(nil)
	_ manager.Adder       = (*Cache)(nil)
	_ manager.TTLGetter   = (*Cache)(nil)
)

// Dial connects to the Redis server at addr (host:port) and returns a
// Cache that owns the connection. When addr is a node of a Redis Cluster,
// rueidis finds the others from it and the Cache uses them all. For
// several seed addresses, passwords, TLS or Sentinel, build a
// rueidis.Client and use New.
func Dial(addr string, opts *Options) (*Cache, error) {
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{addr},
		// The backend never uses client-side caching; without it, servers
		// that do not track keys work too.
		DisableCache: true,
	})
	if err != nil {
		return nil, fmt.Errorf("redis: dial %s: %w", addr, err)
	}
	c := New(client, opts)
	c.own = true
	return c, nil
}

// New returns a Cache on client. The caller keeps client: Close does not
// close it.
func New(client rueidis.Client, opts *Options) *Cache {
	c := &Cache{client: client}
	if opts != nil {
		c.prefix = opts.Prefix
	}
	return c
}

// Client returns the rueidis client.
func (c *Cache) Client() rueidis.Client { return c.client }

func (c *Cache) enter(ctx context.Context) error {
	if c.closed.Load() {
		return manager.ErrClosed
	}
	return ctx.Err()
}

// Get returns the value stored under key.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	s, err := c.client.Do(ctx, c.client.B().Get().Key(c.prefix+key).Build()).ToString()
	if err != nil {
		return nil, c.fail("get", key, err)
	}
	return bytesOf(s), nil
}

// GetWithTTL returns the value stored under key and the time it has left;
// 0 means it never expires. GET and PTTL go in one round trip.
func (c *Cache) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if err := c.enter(ctx); err != nil {
		return nil, 0, err
	}
	k := c.prefix + key
	rs := c.client.DoMulti(ctx,
		c.client.B().Get().Key(k).Build(),
		c.client.B().Pttl().Key(k).Build())
	s, err := rs[0].ToString()
	if err != nil {
		return nil, 0, c.fail("get", key, err)
	}
	ms, err := rs[1].AsInt64()
	if err != nil {
		return nil, 0, c.fail("pttl", key, err)
	}
	switch {
	case ms == -2: // expired between the two commands
		return nil, 0, manager.ErrNotFound
	case ms < 0:
		return bytesOf(s), 0, nil
	}
	return bytesOf(s), time.Duration(ms) * time.Millisecond, nil
}

// GetMany returns the values of the keys that are present, with MGET (per
// hash slot on a cluster).
func (c *Cache) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	pk := make([]string, len(keys))
	for i, k := range keys {
		pk[i] = c.prefix + k
	}
	got, err := rueidis.MGet(c.client, ctx, pk)
	if err != nil {
		return nil, fmt.Errorf("redis: get %d keys: %w", len(keys), err)
	}
	out := make(map[string][]byte, len(got))
	for i, k := range keys {
		m, ok := got[pk[i]]
		if !ok || m.IsNil() {
			continue
		}
		s, err := m.ToString()
		if err != nil {
			return nil, c.fail("get", k, err)
		}
		out[k] = bytesOf(s)
	}
	return out, nil
}

// Set stores value under key; a ttl <= 0 means it never expires.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	if err := c.client.Do(ctx, c.setCmd(key, value, ttl)).Error(); err != nil {
		return c.fail("set", key, err)
	}
	return nil
}

// Add stores value under key only if key holds none (SET NX); GetOrSet
// leases with it, so that one client of those sharing the server computes
// a missing value.
func (c *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := c.enter(ctx); err != nil {
		return false, err
	}
	s := c.client.B().Set().Key(c.prefix + key).Value(rueidis.BinaryString(value)).Nx()
	var cmd rueidis.Completed
	if ttl > 0 {
		cmd = s.PxMilliseconds(millis(ttl)).Build()
	} else {
		cmd = s.Build()
	}
	err := c.client.Do(ctx, cmd).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, c.fail("add", key, err)
	}
	return true, nil
}

// setCmd is SET of key, retryable: rueidis retries only read-only commands
// unless told otherwise, but a SET sent twice stores what it stored once,
// so through a failover Set waits for the new master (within ctx) instead
// of failing. (Add's SET NX is not: a retry would find its own value.)
func (c *Cache) setCmd(key string, value []byte, ttl time.Duration) rueidis.Completed {
	// BinaryString aliases value: rueidis has written it when Do returns,
	// and the Backend contract forbids keeping it longer.
	s := c.client.B().Set().Key(c.prefix + key).Value(rueidis.BinaryString(value))
	if ttl > 0 {
		return s.PxMilliseconds(millis(ttl)).Build().ToRetryable()
	}
	return s.Build().ToRetryable()
}

// SetMany stores every entry, pipelined in one round trip. It is not
// atomic: after an error some entries may be stored.
func (c *Cache) SetMany(ctx context.Context, entries []manager.Entry) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, len(entries))
	for i, e := range entries {
		cmds[i] = c.setCmd(e.Key, e.Value, e.TTL)
	}
	for i, r := range c.client.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return c.fail("set", entries[i].Key, err)
		}
	}
	return nil
}

// Delete removes key (UNLINK: Redis frees a large value in the background).
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	// Retryable for the reason setCmd is: UNLINK twice is UNLINK once.
	if err := c.client.Do(ctx, c.client.B().Unlink().Key(c.prefix+key).Build().ToRetryable()).Error(); err != nil {
		return c.fail("delete", key, err)
	}
	return nil
}

// Exists reports whether key holds a value that has not expired.
func (c *Cache) Exists(ctx context.Context, key string) (bool, error) {
	if err := c.enter(ctx); err != nil {
		return false, err
	}
	n, err := c.client.Do(ctx, c.client.B().Exists().Key(c.prefix+key).Build()).AsInt64()
	if err != nil {
		return false, c.fail("exists", key, err)
	}
	return n > 0, nil
}

// Clear deletes every key that starts with Options.Prefix, scanning (SCAN
// does not block the server as KEYS or FLUSHDB would) every node.
func (c *Cache) Clear(ctx context.Context) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	pattern := globEscape(c.prefix) + "*"
	nodes := map[string]rueidis.Client{"": c.client}
	if c.client.Mode() == rueidis.ClientModeCluster {
		nodes = c.client.Nodes()
	}
	for addr, node := range nodes {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			if err != nil {
				return fmt.Errorf("redis: clear %s: %w", addr, err)
			}
			if len(e.Elements) > 0 {
				// One UNLINK per key: on a cluster the keys of one page
				// may live in different slots.
				cmds := make(rueidis.Commands, len(e.Elements))
				for i, k := range e.Elements {
					cmds[i] = c.client.B().Unlink().Key(k).Build().ToRetryable()
				}
				for _, r := range c.client.DoMulti(ctx, cmds...) {
					if err := r.Error(); err != nil {
						return fmt.Errorf("redis: clear: %w", err)
					}
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// Close marks the Cache closed and, if Dial made the client, closes it. It
// is idempotent.
func (c *Cache) Close() error {
	if c.closed.CompareAndSwap(false, true) && c.own {
		c.client.Close()
	}
	return nil
}

// fail turns a miss into manager.ErrNotFound and names the key in other
// errors.
func (c *Cache) fail(op, key string, err error) error {
	if rueidis.IsRedisNil(err) {
		return manager.ErrNotFound
	}
	if err == rueidis.ErrClosing {
		err = fmt.Errorf("%w: %w", manager.ErrClosed, err)
	}
	return fmt.Errorf("redis: %s %.64q: %w", op, key, err)
}

// bytesOf copies s into a slice the caller owns: rueidis's AsBytes would
// alias the reply's string. An empty value stays a non-nil empty slice.
func bytesOf(s string) []byte {
	return append(make([]byte, 0, len(s)), s...)
}

// millis rounds ttl up to whole milliseconds, Redis's resolution, so that
// a short TTL never becomes 0 (which Redis refuses).
func millis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// globEscape escapes the characters SCAN's MATCH treats as patterns.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var sb strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
