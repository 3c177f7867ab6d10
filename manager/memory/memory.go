// Package memory is a bounded in-process Backend for package manager, on
// otter (maypok86/otter/v2): a W-TinyLFU cache whose hit ratio stays close to
// optimal on skewed workloads, with an expiry time per entry.
//
// It suits a single process, tests, and the front tier of package tiered.
// Nothing survives the process.
package memory

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/ttl"
)

// DefaultMaxBytes is the budget of a cache whose Options.MaxBytes is 0.
const DefaultMaxBytes = 64 << 20

// entryOverhead approximates what otter and this package spend per entry
// beyond the key and value bytes (node, hash table slot, entry header), so
// that many small entries cannot exceed the budget by much.
const entryOverhead = 96

// maxValueFraction: a value may take at most 1/16 of MaxBytes, as in the
// disk engine. A bigger one would evict much of the cache on its own.
const maxValueFraction = 16

// Options configure a Cache. A nil *Options and the zero value are the
// defaults: 64 MiB, the system clock.
type Options struct {
	// MaxBytes bounds the keys, values and per-entry overhead the cache
	// holds; when it is full, otter evicts the entries least likely to be
	// used again. 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxValueSize is the largest value Set accepts; a larger one gets
	// manager.ErrValueTooLarge instead of being dropped silently. 0 means
	// MaxBytes/16.
	MaxValueSize int
	// Clock tells the time for expiry; nil means the system clock. Tests
	// pass a *ttl.ManualClock.
	Clock ttl.Clock
}

// Cache is an in-memory Backend. It is safe for concurrent use.
type Cache struct {
	c        *otter.Cache[string, entry]
	clock    ttl.Clock // nil: time.Now, as otter's default clock
	maxValue int
	closed   atomic.Bool
}

// entry is a stored value and its expiry in unix nanoseconds (0: never).
type entry struct {
	value  []byte
	expiry int64
}

var (
	_ manager.Backend     = (*Cache)(nil)
	_ manager.BatchGetter = (*Cache)(nil)
	_ manager.BatchSetter = (*Cache)(nil)
	_ manager.TTLGetter   = (*Cache)(nil)
)

// New returns an empty Cache.
func New(opts *Options) (*Cache, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBytes < 0 || o.MaxValueSize < 0 {
		return nil, fmt.Errorf("memory: negative MaxBytes %d or MaxValueSize %d", o.MaxBytes, o.MaxValueSize)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if limit := o.MaxBytes / maxValueFraction; o.MaxValueSize == 0 || int64(o.MaxValueSize) > limit {
		o.MaxValueSize = int(limit)
	}
	m := &Cache{clock: o.Clock, maxValue: o.MaxValueSize}
	oo := &otter.Options[string, entry]{
		MaximumWeight: uint64(o.MaxBytes),
		Weigher: func(k string, e entry) uint32 {
			return uint32(min(len(k)+len(e.value)+entryOverhead, math.MaxUint32))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, entry]) time.Duration {
			if e.Value.expiry == 0 {
				return math.MaxInt64
			}
			return time.Duration(e.Value.expiry - m.now())
		}),
	}
	if o.Clock != nil {
		oo.Clock = otterClock{o.Clock}
	}
	c, err := otter.New(oo)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	m.c = c
	return m, nil
}

func (m *Cache) now() int64 {
	if m.clock == nil {
		return time.Now().UnixNano()
	}
	return m.clock.Now().UnixNano()
}

func (m *Cache) enter(ctx context.Context) error {
	if m.closed.Load() {
		return manager.ErrClosed
	}
	return ctx.Err()
}

// Get returns a copy of the value stored under key.
func (m *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := m.GetWithTTL(ctx, key)
	return v, err
}

// GetWithTTL returns a copy of the value stored under key and the time it
// has left to live; 0 means it never expires.
func (m *Cache) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	if err := m.enter(ctx); err != nil {
		return nil, 0, err
	}
	e, ok := m.c.GetIfPresent(key)
	if !ok {
		return nil, 0, manager.ErrNotFound
	}
	// otter never shows an expired entry, but its view of time and ours
	// may differ by its clock's granularity; ours decides.
	now := m.now()
	if e.expiry != 0 && e.expiry <= now {
		return nil, 0, manager.ErrNotFound
	}
	var left time.Duration
	if e.expiry != 0 {
		left = time.Duration(e.expiry - now)
	}
	return append(make([]byte, 0, len(e.value)), e.value...), left, nil
}

// Set stores a copy of value under key. A ttl <= 0 means it never expires.
func (m *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	e, err := m.entry(key, value, ttl)
	if err != nil {
		return err
	}
	m.c.Set(key, e)
	return nil
}

func (m *Cache) entry(key string, value []byte, ttl time.Duration) (entry, error) {
	if len(value) > m.maxValue {
		return entry{}, fmt.Errorf("%w: %d bytes under %.64q, the limit is %d", manager.ErrValueTooLarge, len(value), key, m.maxValue)
	}
	e := entry{value: append(make([]byte, 0, len(value)), value...)}
	if ttl > 0 {
		e.expiry = m.now() + int64(ttl)
	}
	return e, nil
}

// SetMany stores every entry. It is not atomic: a concurrent reader may
// see some entries before others.
func (m *Cache) SetMany(ctx context.Context, entries []manager.Entry) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	es := make([]entry, len(entries))
	for i, x := range entries {
		e, err := m.entry(x.Key, x.Value, x.TTL)
		if err != nil {
			return err
		}
		es[i] = e
	}
	for i, x := range entries {
		m.c.Set(x.Key, es[i])
	}
	return nil
}

// GetMany returns copies of the values of the keys that are present.
func (m *Cache) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := m.enter(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, err := m.Get(ctx, k)
		if err == nil {
			out[k] = v
		}
	}
	return out, nil
}

// Delete removes key.
func (m *Cache) Delete(ctx context.Context, key string) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	m.c.Invalidate(key)
	return nil
}

// Exists reports whether key holds a value that has not expired.
func (m *Cache) Exists(ctx context.Context, key string) (bool, error) {
	if err := m.enter(ctx); err != nil {
		return false, err
	}
	e, ok := m.c.GetEntryQuietly(key)
	return ok && (e.Value.expiry == 0 || e.Value.expiry > m.now()), nil
}

// Clear deletes every entry.
func (m *Cache) Clear(ctx context.Context) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	m.c.InvalidateAll()
	return nil
}

// Len returns the number of entries, expired ones not yet removed included.
func (m *Cache) Len() int { return m.c.EstimatedSize() }

// Bytes returns what the entries weigh against MaxBytes. Eviction runs in
// the background, so it may exceed MaxBytes for a moment after a write.
func (m *Cache) Bytes() int64 { return int64(m.c.WeightedSize()) }

// Close drops every entry and stops otter's goroutines. It is idempotent.
func (m *Cache) Close() error {
	if m.closed.CompareAndSwap(false, true) {
		m.c.InvalidateAll()
		m.c.StopAllGoroutines()
	}
	return nil
}

// otterClock lets otter read a ttl.Clock. It never ticks: with a manual
// clock, periodic clean-ups would run on wall time anyway, so expired
// entries are dropped during reads and writes instead.
type otterClock struct{ c ttl.Clock }

func (o otterClock) NowNano() int64                      { return o.c.Now().UnixNano() }
func (o otterClock) Tick(time.Duration) <-chan time.Time { return nil }
