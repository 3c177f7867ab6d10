package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/resp"
)

// The operations in this file read a key and write it back in one step, as
// Redis's string commands do: each runs under its key's stripe lock, so no
// other write to the key comes between the read and the write. The Redis
// protocol server and the forwarding processes map them one to one, which
// is why their options are the protocol package's types.

// SetOptions are the options of SetWithOptions: an expiry, KeepTTL, NX
// (only if missing), XX (only if present) and Get (return the old value).
type SetOptions = resp.SetOptions

// SetResult is what SetWithOptions did.
type SetResult = resp.SetResult

// Expiry is a change of expiry: a TTL from now, an absolute time, or
// Persist. The zero value changes nothing.
type Expiry = resp.Expiry

// ErrNotInteger and ErrOverflow are IncrBy's errors.
var (
	ErrNotInteger = resp.ErrNotInteger
	ErrOverflow   = resp.ErrOverflow
)

// entry is a key's state as an update sees it.
type entry struct {
	found  bool   // present and not expired
	value  []byte // the decoded value, when the update asked for it
	expiry int64  // unix nanoseconds, 0 for never
	rec    []byte // the stored record, when found
}

// outcome is what an update does with the key.
type outcome struct {
	write  bool   // store value (or rec) with expiry
	value  []byte //
	expiry int64  //
	rec    []byte // a record to store as it is, instead of encoding value
	remove bool   // delete the key
}

// update runs fn on the current state of key and applies what it returns,
// atomically with respect to every other write of key. An expired record
// reads as missing. With withValue, fn sees the decoded value.
func (c *store) update(key string, withValue bool, fn func(cur entry, now int64) (outcome, error)) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var kb [64]byte
	dk := appendDataKey(kb[:0], key)
	mu := c.stripe(dk)
	mu.Lock()
	defer mu.Unlock()
	var old oldRecord
	present := false
	if c.mayExist(dataKeyHash(dk)) {
		var err error
		if old, present, err = c.lookup(dk, true); err != nil {
			return err
		}
	}
	now := c.now()
	var cur entry
	if present && !old.header.Expired(now) {
		cur = entry{found: true, expiry: old.header.Expiry, rec: old.rec}
		if withValue {
			_, v, err := c.decodeRecord([]byte(key), old.rec)
			if err != nil {
				return fmt.Errorf("%w: key %q in %s: %w", ErrCorrupt, truncKey(key), c.dir, err)
			}
			cur.value = v
		}
	}
	out, err := fn(cur, now)
	if err != nil {
		return err
	}
	b := c.db.NewBatch()
	defer b.Close()
	var d counts
	switch {
	case out.write:
		rec := out.rec
		if rec == nil {
			if len(out.value) > c.opts.MaxValueSize {
				return fmt.Errorf("%w: %q would be %d bytes, the limit is %d", ErrValueTooLarge, truncKey(key), len(out.value), c.opts.MaxValueSize)
			}
			p, pin, err := c.encodeEntry(key, out.value, out.expiry, now)
			if err != nil {
				return err
			}
			defer putRecord(p)
			defer pin.Release()
			rec = *p
		}
		if d, err = c.stageOver(b, dk, rec, old, present); err != nil {
			return err
		}
	case out.remove && present:
		d = c.stageDelete(b, dk, old)
	default:
		return nil
	}
	if err := c.commit(b, d); err != nil {
		return fmt.Errorf("diskcache: write %q: %w", truncKey(key), err)
	}
	return nil
}

// expiryAt turns e into an absolute expiry for an entry that had old:
// unchanged for the zero Expiry, 0 for Persist.
func expiryAt(e Expiry, old, now int64) int64 {
	switch {
	case e.Persist:
		return 0
	case !e.At.IsZero():
		return e.At.UnixNano()
	case e.TTL > 0:
		return now + int64(e.TTL)
	}
	return old
}

// SetWithOptions stores value under key with Redis SET's options. Written
// is false when NX or XX stopped the write; Old is the value it replaced
// when o.Get is set (nil if the key was missing).
func (c *store) SetWithOptions(ctx context.Context, key string, value []byte, o SetOptions) (SetResult, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return SetResult{}, err
	}
	defer c.leave(sh)
	if err := c.checkEntry(key, value); err != nil {
		return SetResult{}, err
	}
	if err := c.backpressure(ctx, entryBound(key, len(value))); err != nil {
		return SetResult{}, err
	}
	var r SetResult
	err = c.update(key, o.Get, func(cur entry, now int64) (outcome, error) {
		r.HadOld = cur.found
		r.Old = cur.value
		if (o.NX && cur.found) || (o.XX && !cur.found) {
			return outcome{}, nil
		}
		expiry := expiryAt(o.Expiry, 0, now)
		if o.KeepTTL && cur.found {
			expiry = cur.expiry
		}
		r.Written = true
		return outcome{write: true, value: value, expiry: expiry}, nil
	})
	if err != nil {
		return SetResult{}, err
	}
	if r.Written {
		c.stats.sets.add(sh, 1)
	}
	return r, nil
}

// GetDelete returns the value of key and deletes it, or ErrNotFound.
func (c *store) GetDelete(ctx context.Context, key string) ([]byte, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer c.leave(sh)
	var v []byte
	err = c.update(key, true, func(cur entry, _ int64) (outcome, error) {
		if !cur.found {
			return outcome{remove: true}, ErrNotFound
		}
		v = cur.value
		return outcome{remove: true}, nil
	})
	c.stats.countRead(sh, err)
	if err == nil {
		c.stats.deletes.add(sh, 1)
	}
	return v, err
}

// GetExpire returns the value of key and changes its expiry as e says (a
// zero Expiry changes nothing), or ErrNotFound. An expiry time that is not
// in the future deletes the key after reading it.
func (c *store) GetExpire(ctx context.Context, key string, e Expiry) ([]byte, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer c.leave(sh)
	var v []byte
	err = c.update(key, true, func(cur entry, now int64) (outcome, error) {
		if !cur.found {
			return outcome{}, ErrNotFound
		}
		v = cur.value
		return c.reexpire(cur, e, now)
	})
	c.stats.countRead(sh, err)
	return v, err
}

// Expire changes the expiry of key as e says and reports whether it did:
// false for a missing key, and for Persist on a key without an expiry. An
// expiry time that is not in the future deletes the key.
func (c *store) Expire(ctx context.Context, key string, e Expiry) (bool, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return false, err
	}
	defer c.leave(sh)
	changed := false
	err = c.update(key, false, func(cur entry, now int64) (outcome, error) {
		if !cur.found || (e.Persist && cur.expiry == 0) || e.IsZero() {
			return outcome{}, nil
		}
		changed = true
		return c.reexpire(cur, e, now)
	})
	return changed, err
}

// Touch sets a new time to live on key without rewriting its value; ttl <= 0
// makes it never expire. A missing or expired key gives ErrNotFound.
func (c *store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	e := Expiry{TTL: ttl}
	if ttl <= 0 {
		e = Expiry{Persist: true}
	}
	sh, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer c.leave(sh)
	return c.update(key, false, func(cur entry, now int64) (outcome, error) {
		if !cur.found {
			return outcome{}, ErrNotFound
		}
		return c.reexpire(cur, e, now)
	})
}

// reexpire is the outcome that gives cur the expiry e: the stored record
// with a new expiry, its payload untouched, or a deletion when the new
// expiry has passed.
func (c *store) reexpire(cur entry, e Expiry, now int64) (outcome, error) {
	if e.IsZero() {
		return outcome{}, nil
	}
	expiry := expiryAt(e, cur.expiry, now)
	if expiry != 0 && expiry <= now {
		return outcome{remove: true}, nil
	}
	rec, err := codec.SetExpiry(cur.rec, expiry)
	if err != nil {
		return outcome{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, c.dir, err)
	}
	return outcome{write: true, rec: rec}, nil
}

// IncrBy adds delta to the decimal integer stored under key and returns
// the result, keeping the entry's expiry. A missing key counts as 0 and is
// created without an expiry. A value that is not a decimal int64 gives
// ErrNotInteger; a result past the int64 range gives ErrOverflow.
func (c *store) IncrBy(ctx context.Context, key string, delta int64) (int64, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer c.leave(sh)
	var n int64
	if err := c.backpressure(ctx, 0); err != nil {
		return 0, err
	}
	err = c.update(key, true, func(cur entry, _ int64) (outcome, error) {
		if cur.found {
			var err error
			if n, err = parseInt(cur.value); err != nil {
				return outcome{}, err
			}
		}
		if (delta > 0 && n > maxInt64-delta) || (delta < 0 && n < minInt64-delta) {
			return outcome{}, ErrOverflow
		}
		n += delta
		return outcome{write: true, value: strconv.AppendInt(nil, n, 10), expiry: cur.expiry}, nil
	})
	if err == nil {
		c.stats.sets.add(sh, 1)
	}
	return n, err
}

const (
	maxInt64 = 1<<63 - 1
	minInt64 = -1 << 63
)

// parseInt parses a value as Redis does for INCR: a decimal int64 with no
// spaces, no plus sign and no leading zeros.
func parseInt(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 20 || (len(v) > 1 && v[0] == '0') || v[0] == '+' ||
		(len(v) > 1 && v[0] == '-' && v[1] == '0') {
		return 0, ErrNotInteger
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, ErrNotInteger
	}
	return n, nil
}

// Append appends suffix to the value of key, creating it if it is missing,
// keeps its expiry, and returns the new length.
func (c *store) Append(ctx context.Context, key string, suffix []byte) (int, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer c.leave(sh)
	var n int
	if err := c.backpressure(ctx, int64(len(suffix))); err != nil {
		return 0, err
	}
	err = c.update(key, true, func(cur entry, _ int64) (outcome, error) {
		v := append(cur.value, suffix...)
		n = len(v)
		return outcome{write: true, value: v, expiry: cur.expiry}, nil
	})
	if err == nil {
		c.stats.sets.add(sh, 1)
	}
	return n, err
}

// DeleteMany deletes keys and returns how many of them held an entry that
// had not expired.
func (c *store) DeleteMany(ctx context.Context, keys ...string) (int, error) {
	n := 0
	for _, k := range keys {
		ok, err := c.delete(ctx, k)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// SetManyIfAbsent stores all entries atomically if none of their keys holds
// an entry (Redis MSETNX), and reports whether it did.
func (c *store) SetManyIfAbsent(ctx context.Context, entries []Entry) (bool, error) {
	return c.setMany(ctx, entries, true)
}
