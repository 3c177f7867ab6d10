package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/internal/hottier"
	"github.com/diskcache-go/diskcache/ttl"
	"github.com/diskcache-go/diskcache/vlog"
)

// Get returns the value stored under key, or ErrNotFound if it is missing
// or has expired. The caller owns the returned slice.
func (c *store) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := c.GetWithTTL(ctx, key)
	return v, err
}

// GetWithTTL returns the value stored under key and the time it has left to
// live; 0 means it never expires.
func (c *store) GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer c.leave(sh)
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	v, left, err := c.read(key, true)
	c.countRead(ctx, sh, err)
	if err != nil {
		return nil, 0, err
	}
	return v, left, nil
}

// Exists reports whether key holds a value that has not expired.
func (c *store) Exists(ctx context.Context, key string) (bool, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return false, err
	}
	defer c.leave(sh)
	if err := checkKey(key); err != nil {
		return false, err
	}
	_, _, err = c.read(key, false)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// TTL returns the time key has left to live; 0 means it never expires.
// A missing or expired key gives ErrNotFound.
func (c *store) TTL(ctx context.Context, key string) (time.Duration, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer c.leave(sh)
	if err := checkKey(key); err != nil {
		return 0, err
	}
	_, left, err := c.read(key, false)
	return left, err
}

// GetMany returns the values of the keys that are present, by key. Missing
// and expired keys are left out.
func (c *store) GetMany(ctx context.Context, keys []string) (map[string][]byte, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer c.leave(sh)
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, err
		}
		v, _, err := c.read(k, true)
		c.countRead(ctx, sh, err)
		switch {
		case err == nil:
			out[k] = v
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// read looks key up and, if decode is set, decodes its value; it returns
// the time the entry has left to live, 0 for never. An expired record reads
// as ErrNotFound; the sweeper deletes it later (reads never write).
func (c *store) read(key string, decode bool) ([]byte, time.Duration, error) {
	var kb [64]byte
	dk, h := c.layout.dataKeyHash(kb[:0], key)
	th := hottier.HashOf(h)
	// The clock's slot is a cache miss on a large store, as are the tier's
	// lines: loaded first, with nothing waiting on it, it is fetched while
	// the tier is read, and the touch finds it in the cache (limiter.warm).
	c.lim.warm(h)
	if v, expiry, ok := c.tier.get(key, th); ok {
		left, live := c.left(expiry)
		if live {
			c.lim.touch(h)
			if decode {
				c.stats.tierHits.add(rand.Uint64()%numShards, 1)
				c.tier.saw(th, len(key)+len(v))
			}
			return v, left, nil
		}
	}
	if !c.mayExist(h) {
		return nil, 0, ErrNotFound
	}
	ft := c.tier.startFill(th)
	defer c.tier.endFill(ft)
	c.tier.missed()
	hdr, v, stored, err := c.readRecord(dk, decode)
	if err != nil {
		return nil, 0, err
	}
	left, live := c.left(hdr.Expiry)
	if !live {
		return nil, 0, ErrNotFound
	}
	if decode {
		c.tier.fill(ft, key, th, v, hdr.Expiry, stored)
		c.tier.saw(th, len(key)+len(v))
	}
	c.lim.touch(h)
	return v, left, nil
}

// readRecord reads the record under dk: its header, with decode its value,
// and the record's size when it holds its value (0 when the value is in
// the value log). A collection of the value log may move the value between
// the read of the record and the read of the value: the record is read
// again.
func (c *store) readRecord(dk []byte, decode bool) (codec.Header, []byte, int, error) {
	key := c.layout.userKey(dk)
	for try := 0; ; try++ {
		rec, closer, err := c.db.Get(dk)
		if errors.Is(err, pebble.ErrNotFound) {
			return codec.Header{}, nil, 0, ErrNotFound
		}
		if err != nil {
			return codec.Header{}, nil, 0, fmt.Errorf("diskcache: get %q: %w", truncKey(string(key)), corruptIf(err))
		}
		var hdr codec.Header
		var v []byte
		if decode {
			hdr, v, err = c.decodeRecord(key, rec)
		} else {
			hdr, err = codec.DecodeHeader(rec)
		}
		stored := 0
		if err == nil && !hdr.Ref { // recordStored, from the header just read
			stored = int(storedSize(len(rec)))
		}
		closer.Close()
		if errors.Is(err, vlog.ErrGone) && try < 3 {
			continue
		}
		if err != nil {
			return codec.Header{}, nil, 0, fmt.Errorf("%w: key %q in %s: %w", ErrCorrupt, truncKey(string(key)), c.dir, err)
		}
		return hdr, v, stored, nil
	}
}

// Set stores value under key. A ttl <= 0 means the entry never expires.
// The value is copied.
func (c *store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	sh, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer c.leave(sh)
	if err := c.checkEntry(key, value); err != nil {
		return err
	}
	var kb [64]byte
	dk, h := c.layout.dataKeyHash(kb[:0], key)
	// The clock's slot and the filter's block are cache misses on a large
	// store: loaded before the record is encoded, they are fetched while it
	// is, not when stage needs them.
	c.warmKey(h)
	now := c.now()
	expiry := expiryOf(now, ttl)
	rec, pin, err := c.encodeEntry(key, value, expiry, now)
	if err != nil {
		return err
	}
	defer putRecord(rec)
	defer pin.Release()
	if err := c.backpressure(ctx, int64(len(dk)+len(*rec))); err != nil {
		return err
	}
	mu := c.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	b := c.db.NewBatch()
	defer b.Close()
	d, err := c.stage(b, dk, h, *rec)
	if err != nil {
		return fmt.Errorf("diskcache: set %q: %w", key, err)
	}
	if err := c.commit(b, d); err != nil {
		return fmt.Errorf("diskcache: set %q: %w", key, err)
	}
	if d.entries == 0 { // it replaced a record
		c.noteRecord(h, *rec, expiry)
	}
	c.tier.written(key, h, value, expiry, *rec)
	c.countSets(ctx, sh, 1)
	return nil
}

// SetMany stores all entries in one atomic batch: after a crash either all
// of them are there or none. When a key appears twice, the last one wins.
func (c *store) SetMany(ctx context.Context, entries []Entry) error {
	_, err := c.setMany(ctx, entries, false)
	return err
}

// setMany is SetMany; with ifAbsent it writes nothing, and returns false,
// if any of the keys holds an entry that has not expired.
func (c *store) setMany(ctx context.Context, entries []Entry, ifAbsent bool) (bool, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return false, err
	}
	defer c.leave(sh)
	now := c.now()
	// The last occurrence of a key wins; stage each key once.
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		if err := c.checkEntry(e.Key, e.Value); err != nil {
			return false, err
		}
		last[e.Key] = i
	}
	keys := make([][]byte, 0, len(last))
	hashes := make([]uint64, 0, len(last))
	var size int64
	for k, i := range last {
		dk, h := c.layout.dataKeyHash(nil, k)
		keys, hashes = append(keys, dk), append(hashes, h)
		size += entryBound(k, len(entries[i].Value))
	}
	if err := c.backpressure(ctx, size); err != nil {
		return false, err
	}
	unlock := c.lockStripes(keys)
	defer unlock()
	ci := callOf(ctx)
	var res callResult
	if done, err := c.replay(ci, &res); done || err != nil {
		return res.written, err
	}
	olds := make([]oldRecord, len(keys))
	found := make([]bool, len(keys))
	for i, dk := range keys {
		if !c.mayExist(hashes[i]) {
			continue
		}
		if olds[i], found[i], err = c.lookup(dk, false); err != nil {
			return false, err
		}
		if ifAbsent && found[i] && !olds[i].header.Expired(now) {
			return false, nil
		}
	}
	b := c.db.NewBatch()
	defer b.Close()
	var total counts
	for i, dk := range keys {
		e := entries[last[string(c.layout.userKey(dk))]]
		rec, pin, err := c.encodeEntry(e.Key, e.Value, expiryOf(now, e.TTL), now)
		if err != nil {
			return false, err
		}
		defer putRecord(rec)
		defer pin.Release()
		d, err := c.stageOver(b, dk, hashes[i], *rec, olds[i], found[i])
		if err != nil {
			return false, fmt.Errorf("diskcache: set %q: %w", truncKey(e.Key), err)
		}
		total.entries += d.entries
		total.bytes += d.bytes
	}
	res.written = true
	if err := c.stageCall(b, ci, &res); err != nil {
		return false, err
	}
	if err := c.commit(b, total); err != nil {
		return false, fmt.Errorf("diskcache: set %d entries: %w", len(keys), err)
	}
	c.countSets(ctx, sh, int64(len(keys)))
	return true, nil
}

// Delete removes key. Deleting a missing key is not an error.
func (c *store) Delete(ctx context.Context, key string) error {
	_, err := c.delete(ctx, key)
	return err
}

// delete removes key and reports whether an unexpired entry was there.
func (c *store) delete(ctx context.Context, key string) (bool, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return false, err
	}
	defer c.leave(sh)
	if err := checkKey(key); err != nil {
		return false, err
	}
	var kb [64]byte
	dk, h := c.layout.dataKeyHash(kb[:0], key)
	if !c.mayExist(h) {
		return false, nil
	}
	mu := c.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	old, found, err := c.lookup(dk, false)
	if err != nil || !found {
		return false, err
	}
	if _, err := c.deleteRecord(dk, old); err != nil {
		return false, fmt.Errorf("diskcache: delete %q: %w", key, err)
	}
	c.countDeletes(ctx, sh, 1)
	return !old.header.Expired(c.now()), nil
}

// Len returns the number of entries stored. Expired entries count until the
// sweeper deletes them. It is O(1) and exact after a crash.
func (c *store) Len(ctx context.Context) (int64, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer c.leave(sh)
	if err := c.waitExact(ctx); err != nil {
		return 0, err
	}
	return c.keys.counts.entries.load(), nil
}

// Clear deletes every entry. It touches nothing but the cache's own keys;
// the space comes back as Pebble drops the deleted files, in the background.
func (c *store) Clear(ctx context.Context) error {
	sh, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer c.leave(sh)
	// A scan in progress would count what Clear deletes: let it finish.
	c.keys.buildMu.Lock()
	defer c.keys.buildMu.Unlock()
	unlock := c.lockAllStripes()
	defer unlock()
	b := c.db.NewBatch()
	defer b.Close()
	dl, du := dataSpan()
	xl, xu := ttl.IndexSpan()
	if err := b.DeleteRange(dl, du, nil); err != nil {
		return err
	}
	if err := b.DeleteRange(xl, xu, nil); err != nil {
		return err
	}
	err = c.apply(b)
	c.tier.clear()
	c.forgetAll()
	c.markAll()
	if err != nil {
		return fmt.Errorf("diskcache: clear %s: %w", c.dir, err)
	}
	c.keys.counts.entries.store(0)
	c.keys.counts.bytes.store(0)
	c.keys.cur.Store(newPresence(presenceMinKeys))
	c.keys.covered.Store(true) // the store is empty; every later write touches the clock
	c.markExact()
	c.reclaim.cleared()
	c.compactInBackground(dl, du)
	return nil
}

// oldRecord is what a write needs to know of the record it replaces.
type oldRecord struct {
	size   int // bytes of the stored record
	ext    int // bytes of the value log entry it refers to, if any
	header codec.Header
	rec    []byte // a copy of the record, only when asked for
}

// lookup reads the header of the record stored under dk, and a copy of the
// whole record if withRecord is set. The caller holds dk's stripe.
func (c *store) lookup(dk []byte, withRecord bool) (oldRecord, bool, error) {
	// Nothing here may keep dk: Set builds it on its stack, and a key that
	// escapes is moved to the heap on every Set, not only on those that
	// ask Pebble. Pebble's Get keeps its key past the call, so it gets a
	// copy; the errors quote the key as a string.
	v, closer, err := c.db.Get(bytes.Clone(dk))
	if errors.Is(err, pebble.ErrNotFound) {
		return oldRecord{}, false, nil
	}
	if err != nil {
		return oldRecord{}, false, fmt.Errorf("diskcache: read %q: %w", string(c.layout.userKey(dk)), corruptIf(err))
	}
	defer closer.Close()
	h, err := codec.DecodeHeader(v)
	if err != nil {
		return oldRecord{}, false, fmt.Errorf("%w: key %q in %s: %w", ErrCorrupt, string(c.layout.userKey(dk)), c.dir, err)
	}
	old := oldRecord{size: len(v), ext: codec.ExternalLen(v), header: h}
	if withRecord {
		old.rec = append([]byte(nil), v...)
	}
	return old, true, nil
}

// stage adds the writes that store rec under dk, whose user key's hash is
// kh, to b and returns the change in counts. The caller holds dk's stripe
// until the batch commits.
func (c *store) stage(b *pebble.Batch, dk []byte, kh uint64, rec []byte) (counts, error) {
	var old oldRecord
	found := false
	if old, found = c.known(kh); !found {
		old, found = c.tier.stored(kh, len(c.layout.userKey(dk)))
	}
	if !found && c.mayExist(kh) {
		var err error
		if old, found, err = c.lookup(dk, false); err != nil {
			return counts{}, err
		}
	}
	return c.stageOver(b, dk, kh, rec, old, found)
}

// stageOver is stage when the caller has looked up the record rec replaces:
// old, if found. Every write of a record comes through here: its touch of
// the access clock, before the commit, is what keyState.covered relies on.
func (c *store) stageOver(b *pebble.Batch, dk []byte, kh uint64, rec []byte, old oldRecord, found bool) (counts, error) {
	c.forget(kh)
	c.noteKey(kh)
	c.lim.touch(kh)
	h, err := codec.DecodeHeader(rec)
	if err != nil {
		return counts{}, err
	}
	d := counts{entries: 1, bytes: int64(len(dk) + recordSize(rec))}
	if found {
		d.entries = 0
		d.bytes -= int64(len(dk) + old.size + old.ext)
		if old.header.Expiry != 0 && old.header.Expiry != h.Expiry {
			b.Delete(ttl.AppendIndexKey(nil, old.header.Expiry, dk[1:]), nil)
		}
	}
	if err := b.Set(dk, rec, nil); err != nil {
		return counts{}, err
	}
	if h.Expiry != 0 {
		if err := b.Set(ttl.AppendIndexKey(nil, h.Expiry, dk[1:]), nil, nil); err != nil {
			return counts{}, err
		}
	}
	return d, nil
}

// stageDelete adds the deletion of dk's record old to b and returns the
// change in counts. DeleteSized tells Pebble's compaction picker how many
// bytes the tombstone frees.
func (c *store) stageDelete(b *pebble.Batch, dk []byte, old oldRecord) counts {
	c.forgetKey(dk)
	b.DeleteSized(dk, uint32(old.size), nil)
	if old.header.Expiry != 0 {
		b.Delete(ttl.AppendIndexKey(nil, old.header.Expiry, dk[1:]), nil)
	}
	return counts{entries: -1, bytes: -int64(len(dk) + old.size + old.ext)}
}

// deleteRecord deletes dk's record old on its own and returns the change
// in counts. The caller holds dk's stripe.
func (c *store) deleteRecord(dk []byte, old oldRecord) (counts, error) {
	b := c.db.NewBatch()
	defer b.Close()
	d := c.stageDelete(b, dk, old)
	return d, c.commit(b, d)
}

// commit commits b and applies its change d to the counts. The caller
// holds the stripes of b's keys, so no other writer sees the counts between
// the commit and the update.
func (c *store) commit(b *pebble.Batch, d counts) error {
	err := c.apply(b)
	c.published(b)
	if err != nil {
		return err
	}
	c.keys.counts.add(rand.Uint64(), d)
	return nil
}

// published runs after b's commit, before the call returns, and after a
// failed commit too. For each data key b writes or deletes, hashed once, it
// drops the key from the hot tier (tier.go: a needless miss costs a read
// of the store, a missed invalidation a stale read) and raises its write
// mark for the evictor (evictmarks.go: a needless mark costs the evictor a
// read). A store whose tier is idle and that never evicted walks nothing.
func (c *store) published(b *pebble.Batch) {
	tier, m := !c.tier.idle(), c.marks.Load()
	if !tier && m == nil {
		return
	}
	var seq uint64
	if m != nil {
		seq = m.seq.Add(1)
	}
	r := b.Reader()
	for {
		_, k, _, ok, err := r.Next()
		if !ok || err != nil {
			return
		}
		if !c.layout.isData(k) {
			continue
		}
		h := c.layout.hash(k)
		if tier {
			c.tier.invalidate(h)
		}
		if m != nil {
			m.raise(markSlot(h), seq)
		}
	}
}

// stripe is the lock of the keys whose hash is h. Callers pass the hash
// they computed with the data key: in format 2 the data key does not hold
// it, and hashing the key again for each step of a Set was waste.
func (c *store) stripe(h uint64) *sync.Mutex {
	return &c.stripes[h%numStripes]
}

// lockStripes locks the stripes of all keys in index order, so that two
// multi-key writers never wait for each other in a cycle, and returns the
// unlock.
func (c *store) lockStripes(keys [][]byte) func() {
	idx := make([]int, 0, len(keys))
	seen := make(map[int]bool, len(keys))
	for _, dk := range keys {
		i := int(c.layout.hash(dk) % numStripes)
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	for _, i := range idx {
		c.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			c.stripes[i].Unlock()
		}
	}
}

var recordPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// putRecord returns a record buffer to the pool unless it grew large: a few
// big values must not pin their buffers for the life of the process.
func putRecord(p *[]byte) {
	if cap(*p) <= 64<<10 {
		recordPool.Put(p)
	}
}

func (c *store) now() int64 { return c.clock.Now().UnixNano() }

// left is timeLeft on the store's clock.
func (c *store) left(expiry int64) (time.Duration, bool) { return timeLeft(expiry, c.clock) }

// timeLeft returns the time an entry with expiry (unix nanoseconds, 0 for
// none) has left to live on clock (0 for never), and whether it is still
// alive. The clock is read only for entries that expire.
func timeLeft(expiry int64, clock ttl.Clock) (time.Duration, bool) {
	if expiry == 0 {
		return 0, true
	}
	left := time.Duration(expiry - clock.Now().UnixNano())
	return left, left > 0
}

func (c *store) checkEntry(key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > c.opts.MaxValueSize {
		return fmt.Errorf("%w: %q is %d bytes, the limit is %d (1/%d of SizeLimit %d)",
			ErrValueTooLarge, truncKey(key), len(value), c.opts.MaxValueSize, maxValueFraction, c.opts.SizeLimit)
	}
	return nil
}

func checkKey(key string) error {
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrKeyTooLarge, len(key), MaxKeySize)
	}
	return nil
}

// truncKey shortens a key for an error message.
func truncKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "..."
	}
	return k
}

func expiryOf(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + int64(ttl)
}
