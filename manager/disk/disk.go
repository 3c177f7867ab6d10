// Package disk is the Backend of package manager on the disk engine: a
// persistent cache in one directory, bounded by size, that survives
// restarts.
//
// *engine.Cache already has the Backend method set. Cache wraps it for one
// reason: the manager is kept free of Pebble (importing it would add some
// 20 MiB to a program that only uses Redis), so it cannot know the engine's
// sentinel errors. Cache makes them match the manager's too: a missing key
// matches both engine.ErrNotFound and manager.ErrNotFound.
//
// GetOrSet computes a missing value once across every process that shares
// the directory: the engine's Add (through the owner) takes a lease.
package disk

import (
	"context"
	"errors"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
)

// Cache is a manager.Backend on an *engine.Cache. It is safe for concurrent
// use.
type Cache struct {
	c *engine.Cache
}

var (
	_ manager.Backend     = (*Cache)(nil)
	_ manager.BatchGetter = (*Cache)(nil)
	_ manager.BatchSetter = (*Cache)(nil)
	_ manager.TTLGetter   = (*Cache)(nil)
	_ manager.Adder       = (*Cache)(nil)
)

// Open opens the cache in dir with engine.Open (opts may be nil) and wraps
// it.
func Open(dir string, opts *engine.Options) (*Cache, error) {
	c, err := engine.Open(dir, opts)
	if err != nil {
		return nil, translate(err)
	}
	return New(c), nil
}

// New wraps an open engine cache. Closing the Cache closes c.
func New(c *engine.Cache) *Cache { return &Cache{c: c} }

// Engine returns the engine cache, for what the Backend interface leaves
// out: Stats, Len, Touch, TTL.
func (d *Cache) Engine() *engine.Cache { return d.c }

// Get returns the value stored under key.
func (d *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := d.c.Get(ctx, key)
	return v, translate(err)
}

// GetWithTTL returns the value stored under key and the time it has left.
func (d *Cache) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	v, left, err := d.c.GetWithTTL(ctx, key)
	return v, left, translate(err)
}

// GetMany returns the values of the keys that are present.
func (d *Cache) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	m, err := d.c.GetMany(ctx, keys)
	return m, translate(err)
}

// Add stores value under key only if key holds no entry; GetOrSet leases
// with it, so that one process of those sharing the directory computes a
// missing value.
func (d *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := d.c.Add(ctx, key, value, ttl)
	return ok, translate(err)
}

// Set stores value under key; a ttl <= 0 means it never expires.
func (d *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return translate(d.c.Set(ctx, key, value, ttl))
}

// SetMany stores every entry in one atomic batch.
func (d *Cache) SetMany(ctx context.Context, entries []manager.Entry) error {
	es := make([]engine.Entry, len(entries))
	for i, e := range entries {
		es[i] = engine.Entry{Key: e.Key, Value: e.Value, TTL: e.TTL}
	}
	return translate(d.c.SetMany(ctx, es))
}

// Delete removes key.
func (d *Cache) Delete(ctx context.Context, key string) error {
	return translate(d.c.Delete(ctx, key))
}

// Exists reports whether key holds a value that has not expired.
func (d *Cache) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := d.c.Exists(ctx, key)
	return ok, translate(err)
}

// Clear deletes every entry.
func (d *Cache) Clear(ctx context.Context) error { return translate(d.c.Clear(ctx)) }

// Close closes the engine cache. It is idempotent.
func (d *Cache) Close() error { return translate(d.c.Close()) }

// notFound is what a miss returns: the engine's sentinel, matching the
// manager's too. It is one value, so the miss path does not allocate.
var notFound error = &both{err: engine.ErrNotFound, also: manager.ErrNotFound}

// translate makes the engine's sentinel errors also match the manager's.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case err == engine.ErrNotFound:
		return notFound
	case errors.Is(err, engine.ErrNotFound):
		return &both{err: err, also: manager.ErrNotFound}
	case errors.Is(err, engine.ErrClosed):
		return &both{err: err, also: manager.ErrClosed}
	case errors.Is(err, engine.ErrValueTooLarge):
		return &both{err: err, also: manager.ErrValueTooLarge}
	}
	return err
}

// both is err, which also matches the manager's sentinel also.
type both struct{ err, also error }

func (b *both) Error() string   { return b.err.Error() }
func (b *both) Unwrap() []error { return []error{b.err, b.also} }
