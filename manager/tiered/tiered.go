// Package tiered puts a fast Backend (usually package memory) in front of
// another one (disk, Redis), so that hot keys are served from memory while
// the back keeps everything.
//
//   - Writes go through: Set writes the back first, then the front. The
//     back is the truth; a failed back write leaves no copy in the front.
//   - Reads fill the front: a front miss reads the back and keeps a copy.
//   - A front copy never outlives its entry: its time to live is at most
//     the back's remaining one (read through manager.TTLGetter when the
//     back has it, else the one given to Set), and at most Options.FrontTTL.
//
// The front belongs to one process. Writes, deletes and tag invalidations
// made by another process that shares the back reach this one when the
// front copy expires: FrontTTL bounds that staleness. Within a process a
// Delete or Set is never undone by a read racing with it (see fill).
package tiered

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/diskcache-go/diskcache/manager"
)

// DefaultFrontTTL caps the life of a front copy when Options.FrontTTL is 0:
// other processes' writes show within a minute, and a hot key costs one
// back read a minute.
const DefaultFrontTTL = time.Minute

// numStripes is the number of write trackers that fills check (see fill).
const numStripes = 256

// Options configure a Cache. A nil *Options is the defaults.
type Options struct {
	// FrontTTL caps the time to live of front copies, and so bounds how long
	// this process may miss another's writes. 0 means DefaultFrontTTL; a
	// negative value means no cap beyond the entry's own time to live.
	FrontTTL time.Duration
}

// Cache is a two-tier manager.Backend. It is safe for concurrent use.
type Cache struct {
	front, back manager.Backend
	frontTTL    time.Duration // <= 0: no cap
	backTTL     manager.TTLGetter
	seed        maphash.Seed
	stripes     [numStripes]stripe
	closed      atomic.Bool
}

// stripe tracks the writes in flight to the keys that hash to it.
type stripe struct {
	writers atomic.Int64  // writes in progress
	gen     atomic.Uint64 // writes started, ever
	_       [48]byte      // keep stripes on separate cache lines
}

var (
	_ manager.Backend     = (*Cache)(nil)
	_ manager.BatchGetter = (*Cache)(nil)
	_ manager.BatchSetter = (*Cache)(nil)
)

// New returns a Cache with front before back. It owns both: Close closes
// them.
func New(front, back manager.Backend, opts *Options) *Cache {
	c := &Cache{front: front, back: back, frontTTL: DefaultFrontTTL, seed: maphash.MakeSeed()}
	if opts != nil && opts.FrontTTL != 0 {
		c.frontTTL = opts.FrontTTL
	}
	c.backTTL, _ = back.(manager.TTLGetter)
	return c
}

// Front returns the front tier.
func (c *Cache) Front() manager.Backend { return c.front }

// Back returns the back tier.
func (c *Cache) Back() manager.Backend { return c.back }

func (c *Cache) stripe(key string) *stripe {
	return &c.stripes[maphash.String(c.seed, key)%numStripes]
}

func (c *Cache) enter(ctx context.Context) error {
	if c.closed.Load() {
		return manager.ErrClosed
	}
	return ctx.Err()
}

// Get returns the front copy of key, or reads the back and fills the front.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	if v, err := c.front.Get(ctx, key); err == nil {
		return v, nil
	}
	s := c.stripe(key)
	gen, quiet := s.gen.Load(), s.writers.Load() == 0
	var (
		v    []byte
		left time.Duration
		err  error
	)
	if c.backTTL != nil {
		v, left, err = c.backTTL.GetWithTTL(ctx, key)
	} else {
		v, err = c.back.Get(ctx, key)
	}
	if err != nil {
		return nil, err
	}
	if quiet {
		c.fill(ctx, s, gen, key, v, left)
	}
	return v, nil
}

// fill keeps a front copy of v, read from the back, unless a write to a key
// of the same stripe began since the read started: that write may have
// changed the back after our read, and our older copy must not overwrite
// its front copy. A write that begins after the check below writes the
// front after our fill, so its value wins. The reader skips the fill if a
// write was in progress when it started, so a write that began before the
// read and ends after it is covered too.
func (c *Cache) fill(ctx context.Context, s *stripe, gen uint64, key string, v []byte, left time.Duration) {
	ttl := c.capTTL(left)
	if err := c.front.Set(ctx, key, v, ttl); err != nil {
		return // the front is only a cache
	}
	if s.gen.Load() != gen {
		c.front.Delete(context.WithoutCancel(ctx), key)
	}
}

// capTTL returns the front time to live for an entry with ttl left (<= 0:
// never expires).
func (c *Cache) capTTL(ttl time.Duration) time.Duration {
	if c.frontTTL <= 0 {
		return ttl
	}
	if ttl <= 0 || ttl > c.frontTTL {
		return c.frontTTL
	}
	return ttl
}

// write runs a write to the keys of stripes that fills must not undo.
func (c *Cache) write(keys []string, fn func() error) error {
	ss := make([]*stripe, len(keys))
	for i, k := range keys {
		ss[i] = c.stripe(k)
		ss[i].writers.Add(1)
		ss[i].gen.Add(1)
	}
	defer func() {
		for _, s := range ss {
			s.writers.Add(-1)
		}
	}()
	return fn()
}

// Set writes value to the back, then to the front.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	return c.write([]string{key}, func() error {
		// Once the back has changed, the front must follow even if ctx
		// ends: a stale front copy would outlive the call.
		fctx := context.WithoutCancel(ctx)
		if err := c.back.Set(ctx, key, value, ttl); err != nil {
			c.front.Delete(fctx, key)
			return err
		}
		if err := c.front.Set(fctx, key, value, c.capTTL(ttl)); err != nil {
			// Too large for the front, say: an older copy must not stay.
			c.front.Delete(fctx, key)
		}
		return nil
	})
}

// SetMany writes entries to the back (in one batch when it can), then to
// the front.
func (c *Cache) SetMany(ctx context.Context, entries []manager.Entry) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return c.write(keys, func() error {
		var err error
		if bs, ok := c.back.(manager.BatchSetter); ok {
			err = bs.SetMany(ctx, entries)
		} else {
			for _, e := range entries {
				if err = c.back.Set(ctx, e.Key, e.Value, e.TTL); err != nil {
					break
				}
			}
		}
		fctx := context.WithoutCancel(ctx)
		for _, e := range entries {
			if err != nil || c.front.Set(fctx, e.Key, e.Value, c.capTTL(e.TTL)) != nil {
				c.front.Delete(fctx, e.Key)
			}
		}
		return err
	})
}

// GetMany returns the values of the keys that are present, from the front
// where it has them and from the back (in one batch when it can) for the
// rest, which it copies to the front.
func (c *Cache) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	if err := c.enter(ctx); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keys))
	var rest []string
	for _, k := range keys {
		if v, err := c.front.Get(ctx, k); err == nil {
			out[k] = v
		} else {
			rest = append(rest, k)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	bg, ok := c.back.(manager.BatchGetter)
	if !ok {
		for _, k := range rest {
			v, err := c.Get(ctx, k)
			if err == nil {
				out[k] = v
			} else if !errors.Is(err, manager.ErrNotFound) {
				return nil, err
			}
		}
		return out, nil
	}
	type mark struct {
		gen   uint64
		quiet bool
	}
	marks := make([]mark, len(rest))
	for i, k := range rest {
		s := c.stripe(k)
		marks[i] = mark{s.gen.Load(), s.writers.Load() == 0}
	}
	got, err := bg.GetMany(ctx, rest)
	if err != nil {
		return nil, err
	}
	for i, k := range rest {
		v, ok := got[k]
		if !ok {
			continue
		}
		out[k] = v
		if marks[i].quiet {
			// The batch does not say how long each entry has left: the
			// copy gets the front cap, which is why FrontTTL must be set
			// (it is, unless negative) to keep copies from outliving
			// entries by much.
			c.fill(ctx, c.stripe(k), marks[i].gen, k, v, 0)
		}
	}
	return out, nil
}

// Delete removes key from the back, then the front.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	return c.write([]string{key}, func() error {
		err := c.back.Delete(ctx, key)
		if ferr := c.front.Delete(context.WithoutCancel(ctx), key); err == nil {
			err = ferr
		}
		return err
	})
}

// Exists reports whether key holds a value in the front or the back.
func (c *Cache) Exists(ctx context.Context, key string) (bool, error) {
	if err := c.enter(ctx); err != nil {
		return false, err
	}
	if ok, err := c.front.Exists(ctx, key); err == nil && ok {
		return true, nil
	}
	return c.back.Exists(ctx, key)
}

// Clear clears the back, then the front.
func (c *Cache) Clear(ctx context.Context) error {
	if err := c.enter(ctx); err != nil {
		return err
	}
	// Every key is written: no fill racing with Clear may keep a copy.
	for i := range c.stripes {
		c.stripes[i].writers.Add(1)
		c.stripes[i].gen.Add(1)
	}
	defer func() {
		for i := range c.stripes {
			c.stripes[i].writers.Add(-1)
		}
	}()
	if err := c.back.Clear(ctx); err != nil {
		return err
	}
	return c.front.Clear(context.WithoutCancel(ctx))
}

// Close closes both tiers. It is idempotent.
func (c *Cache) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	ferr := c.front.Close()
	if err := c.back.Close(); err != nil {
		return fmt.Errorf("tiered: close back: %w", err)
	}
	if ferr != nil {
		return fmt.Errorf("tiered: close front: %w", ferr)
	}
	return nil
}
