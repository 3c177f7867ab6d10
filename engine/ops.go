package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/diskcache-go/diskcache/codec"
)

// The operations in this file read a key and write it back in one step, as
// Redis's string commands do: each runs under its key's stripe lock, so no
// other write to the key comes between the read and the write. Their types
// are this package's own; the Redis-protocol adapter (serve.go) converts
// them to package resp's.

// SetOptions are the options of SetWithOptions, those of Redis SET.
type SetOptions struct {
	Expiry  Expiry // when the entry expires; zero: never (unless KeepTTL)
	KeepTTL bool   // keep the old entry's expiry
	NX      bool   // write only if key is missing
	XX      bool   // write only if key is present
	Get     bool   // return the old value in SetResult.Old
}

// SetResult is what SetWithOptions did.
type SetResult struct {
	Written bool   // false when NX or XX stopped the write
	Old     []byte // the old value, when SetOptions.Get (nil if missing)
	HadOld  bool   // the key held an entry before
}

// Expiry is a change of expiry: a TTL from now, an absolute time, or
// Persist. The zero value changes nothing.
type Expiry struct {
	TTL     time.Duration // > 0: expire this long from now
	At      time.Time     // non-zero: expire at this time
	Persist bool          // remove the expiry
}

// IsZero reports whether e changes nothing.
func (e Expiry) IsZero() bool { return e.TTL == 0 && e.At.IsZero() && !e.Persist }

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
// reads as missing. With withValue, fn sees the decoded value. fn leaves
// the call's results in res; a call that carries a token (calls.go) stores
// them with its write, and a repeat of a call already applied gets them
// back without running fn (res.replayed).
func (c *store) update(ctx context.Context, key string, withValue bool, res *callResult, fn func(cur entry, now int64) (outcome, error)) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var kb [64]byte
	dk, h := c.layout.dataKeyHash(kb[:0], key)
	mu := c.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	ci := callOf(ctx)
	if done, err := c.replay(ci, res); done || err != nil {
		return err
	}
	var old oldRecord
	present := false
	if c.mayExist(h) {
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
		if d, err = c.stageOver(b, dk, h, rec, old, present); err != nil {
			return err
		}
	case out.remove && present:
		d = c.stageDelete(b, dk, old)
	default:
		return nil
	}
	if err := c.stageCall(b, ci, res); err != nil {
		return err
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
	var res callResult
	err = c.update(ctx, key, o.Get, &res, func(cur entry, now int64) (outcome, error) {
		res.hadOld = cur.found
		res.v = cur.value
		if (o.NX && cur.found) || (o.XX && !cur.found) {
			return outcome{}, nil
		}
		expiry := expiryAt(o.Expiry, 0, now)
		if o.KeepTTL && cur.found {
			expiry = cur.expiry
		}
		res.written = true
		return outcome{write: true, value: value, expiry: expiry}, nil
	})
	if err != nil {
		return SetResult{}, err
	}
	if res.written && !res.replayed {
		c.countSets(ctx, sh, 1)
	}
	return SetResult{Written: res.written, HadOld: res.hadOld, Old: res.v}, nil
}

// GetDelete returns the value of key and deletes it, or ErrNotFound.
func (c *store) GetDelete(ctx context.Context, key string) ([]byte, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer c.leave(sh)
	var res callResult
	err = c.update(ctx, key, true, &res, func(cur entry, _ int64) (outcome, error) {
		if !cur.found {
			return outcome{remove: true}, ErrNotFound
		}
		res.v = cur.value
		return outcome{remove: true}, nil
	})
	if res.replayed {
		return res.v, nil
	}
	c.countRead(ctx, sh, err)
	if err == nil {
		c.countDeletes(ctx, sh, 1)
	}
	return res.v, err
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
	var res callResult
	err = c.update(ctx, key, true, &res, func(cur entry, now int64) (outcome, error) {
		if !cur.found {
			return outcome{}, ErrNotFound
		}
		res.v = cur.value
		return c.reexpire(cur, e, now)
	})
	if !res.replayed {
		c.countRead(ctx, sh, err)
	}
	return res.v, err
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
	var res callResult
	err = c.update(ctx, key, false, &res, func(cur entry, now int64) (outcome, error) {
		if !cur.found || (e.Persist && cur.expiry == 0) || e.IsZero() {
			return outcome{}, nil
		}
		res.written = true
		return c.reexpire(cur, e, now)
	})
	return res.written, err
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
	var res callResult
	return c.update(ctx, key, false, &res, func(cur entry, now int64) (outcome, error) {
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
	if err := c.backpressure(ctx, 0); err != nil {
		return 0, err
	}
	var res callResult
	err = c.update(ctx, key, true, &res, func(cur entry, _ int64) (outcome, error) {
		var n int64
		if cur.found {
			var err error
			if n, err = parseInt(cur.value); err != nil {
				return outcome{}, fmt.Errorf("%w: key %q", err, truncKey(key))
			}
		}
		if (delta > 0 && n > maxInt64-delta) || (delta < 0 && n < minInt64-delta) {
			return outcome{}, fmt.Errorf("%w: key %q holds %d, the increment is %d", ErrOverflow, truncKey(key), n, delta)
		}
		res.n = n + delta
		return outcome{write: true, value: strconv.AppendInt(nil, res.n, 10), expiry: cur.expiry}, nil
	})
	if err != nil {
		return 0, err
	}
	if !res.replayed {
		c.countSets(ctx, sh, 1)
	}
	return res.n, nil
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
	if err := c.backpressure(ctx, int64(len(suffix))); err != nil {
		return 0, err
	}
	var res callResult
	err = c.update(ctx, key, true, &res, func(cur entry, _ int64) (outcome, error) {
		v := append(cur.value, suffix...)
		res.n = int64(len(v))
		return outcome{write: true, value: v, expiry: cur.expiry}, nil
	})
	if err != nil {
		return 0, err
	}
	if !res.replayed {
		c.countSets(ctx, sh, 1)
	}
	return int(res.n), nil
}

// DeleteMany deletes keys in one atomic batch and returns how many of them
// held an entry that had not expired.
func (c *store) DeleteMany(ctx context.Context, keys ...string) (int, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer c.leave(sh)
	dks := make([][]byte, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return 0, err
		}
		if !seen[k] {
			seen[k] = true
			dks = append(dks, c.layout.dataKey(nil, k))
		}
	}
	unlock := c.lockStripes(dks)
	defer unlock()
	ci := callOf(ctx)
	var res callResult
	if done, err := c.replay(ci, &res); done || err != nil {
		return int(res.n), err
	}
	now := c.now()
	b := c.db.NewBatch()
	defer b.Close()
	var total counts
	deleted := int64(0)
	for _, dk := range dks {
		if !c.mayExist(c.layout.hash(dk)) {
			continue
		}
		old, found, err := c.lookup(dk, false)
		if err != nil {
			return 0, err
		}
		if !found {
			continue
		}
		d := c.stageDelete(b, dk, old)
		total.entries += d.entries
		total.bytes += d.bytes
		deleted++
		if !old.header.Expired(now) {
			res.n++
		}
	}
	if deleted == 0 {
		return 0, nil
	}
	if err := c.stageCall(b, ci, &res); err != nil {
		return 0, err
	}
	if err := c.commit(b, total); err != nil {
		return 0, fmt.Errorf("diskcache: delete %d keys: %w", len(dks), err)
	}
	c.countDeletes(ctx, sh, deleted)
	return int(res.n), nil
}

// SetManyIfAbsent stores all entries atomically if none of their keys holds
// an entry (Redis MSETNX), and reports whether it did.
func (c *store) SetManyIfAbsent(ctx context.Context, entries []Entry) (bool, error) {
	return c.setMany(ctx, entries, true)
}
