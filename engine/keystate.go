package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/diskcache-go/diskcache/codec"
)

// keyState is what the cache keeps in memory about its keys: the exact
// counts and the presence filter.
//
// The counts live in memory and reach the store only on Close, together
// with a clean mark and the filter. Open removes the mark, so after a crash
// the store says it is not clean and Open rebuilds counts and filter from a
// scan in the background. (Merging a count delta into every write batch
// would keep them exact without a scan, at the price of a second memtable
// insert on every Set.) Until that scan is done, Len waits for it and
// writes ask Pebble whether their key exists.
type keyState struct {
	cur  atomic.Pointer[presence] // nil until a scan or the store provides one
	next atomic.Pointer[presence] // being filled by a scan; writers add to it too

	counts liveCounts
	ready  chan struct{} // closed once counts are exact
	exact  atomic.Bool   // ready has been closed

	building atomic.Bool // a rebuild goroutine runs
	buildMu  sync.Mutex  // one scan at a time; Clear waits for it
}

var (
	metaState    = []byte("mstate")
	metaPresence = []byte("mpresence")
)

// loadKeyState reads the state Close left. If the last close was clean the
// counts and filter are ready now; otherwise a scan must rebuild them.
func (c *store) loadKeyState() (clean bool, err error) {
	c.keys.ready = make(chan struct{})
	v, closer, err := c.db.Get(metaState)
	if errors.Is(err, pebble.ErrNotFound) {
		// A new store holds nothing: it is exact as it is. An old store
		// always has a state key, since Open writes one before any write.
		if empty, err := c.dataEmpty(); err != nil || !empty {
			return false, err
		}
		c.keys.cur.Store(newPresence(presenceMinKeys))
		c.markExact()
		return true, nil
	}
	if err != nil {
		return false, err
	}
	st := append([]byte(nil), v...)
	closer.Close()
	if len(st) != 17 {
		return false, fmt.Errorf("%w: state key of %d bytes", ErrCorrupt, len(st))
	}
	if st[0] != 1 {
		return false, nil // not closed cleanly
	}
	n, err := decodeCounts(st[1:])
	if err != nil {
		return false, err
	}
	if v, closer, err := c.db.Get(metaPresence); err == nil {
		p, perr := decodePresence(v)
		closer.Close()
		if perr == nil {
			c.keys.cur.Store(p)
		}
	}
	c.keys.counts.add(0, n)
	c.markExact()
	return true, nil
}

// markDirty records that the store is open: until Close writes the state
// back, the persisted counts are stale.
func (c *store) markDirty() error {
	st := append([]byte{0}, counts{}.encode()...)
	return c.db.Set(metaState, st, pebble.Sync)
}

// saveKeyState writes the counts, the filter and the clean mark in one
// batch. Close calls it when no writer can run.
func (c *store) saveKeyState() error {
	if !c.keys.exact.Load() {
		return nil // the scan did not finish: the next Open scans again
	}
	b := c.db.NewBatch()
	defer b.Close()
	n := c.keys.counts.load()
	b.Set(metaState, append([]byte{1}, n.encode()...), nil)
	if p := c.keys.cur.Load(); p != nil {
		b.Set(metaPresence, p.encode(), nil)
	}
	return b.Commit(pebble.Sync)
}

func (c *store) markExact() {
	if c.keys.exact.CompareAndSwap(false, true) {
		close(c.keys.ready)
	}
}

func (c *store) dataEmpty() (bool, error) {
	lo, hi := dataSpan()
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, it.Close()
}

// mayExist reports whether the key with hash h may be in the store. False
// is certain; true means ask Pebble.
func (c *store) mayExist(h uint64) bool {
	p := c.keys.cur.Load()
	return p == nil || p.mayContain(h)
}

// noteKey records that the key with hash h is now in the store. The caller
// holds the key's stripe. A key the filter already shows is not added
// again, so overwrites do not wear the filter out.
func (c *store) noteKey(h uint64) {
	if p := c.keys.cur.Load(); p != nil && !p.mayContain(h) {
		p.add(h)
		// Summing the shards of added costs a little: look at one add
		// in 256, which at a million keys of capacity is soon enough.
		if h&0xff == 0 && p.full() {
			c.rebuildKeys()
		}
	}
	if p := c.keys.next.Load(); p != nil {
		p.add(h)
	}
}

// rebuildKeys starts a scan that rebuilds the filter (and the counts, if
// they are not exact), unless one runs already.
func (c *store) rebuildKeys() {
	if !c.keys.building.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.keys.building.Store(false)
		if err := c.scanKeys(c.bgCtx); err != nil && c.bgCtx.Err() == nil {
			c.log.Error("diskcache: rebuilding the key filter failed", "err", err)
		}
	}()
}

// testHookAfterBarrier, if set, runs in scanKeys once the barrier is
// released and before the scan reads anything.
var testHookAfterBarrier func()

// keysPerScanIterator is how many keys scanKeys reads through one
// iterator: a few milliseconds' worth.
const keysPerScanIterator = 16 << 10

// scanKeys fills a new filter from a scan of every data key and swaps it in.
// If the counts are not exact it recounts them on the way.
func (c *store) scanKeys(ctx context.Context) error {
	c.keys.buildMu.Lock()
	defer c.keys.buildMu.Unlock()
	recount := !c.keys.exact.Load()
	p := newPresence(max(2*c.keys.counts.entries.load(), presenceMinKeys))
	c.keys.next.Store(p)
	defer c.keys.next.Store(nil)

	// Barrier: while every stripe is held no write is between its commit
	// and its count, so the snapshot and base agree: a write the snapshot
	// holds is in base, and every later one adds its key to p and its
	// change to the counts past base. The snapshot must be taken inside
	// the barrier: taken after it, a write committing in between was in
	// the scan and counted again past base (the soak test saw Len 4 high).
	unlock := c.lockAllStripes()
	base := c.keys.counts.load()
	snap := c.db.NewSnapshot()
	unlock()
	defer snap.Close()
	if testHookAfterBarrier != nil {
		testHookAfterBarrier()
	}

	// The scan reads the snapshot through a series of short iterators: an
	// iterator pins every file it can see, and one open for the whole scan
	// (seconds, after a crash at a large limit) kept every compaction's
	// inputs on disk beside its output, taking the directory past its
	// limit (the soak test saw 1.24x).
	lo, hi := dataSpan()
	var scanned counts
	var resume []byte // the first key the next iterator reads; nil: the start
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return err
		}
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		var valid bool
		if resume == nil {
			valid = it.First()
		} else {
			valid = it.SeekGE(resume)
		}
		for n := 0; valid && n < keysPerScanIterator; valid, n = it.Next(), n+1 {
			k := it.Key()
			if len(k) < dataHeader {
				continue
			}
			p.add(dataKeyHash(k))
			if recount {
				scanned.entries++
				lv := it.LazyValue()
				scanned.bytes += int64(len(k) + lv.Len())
				if lv.Len() == codec.MinHeaderSize+codec.RefSize || lv.Len() == codec.MaxHeaderSize+codec.RefSize {
					// Perhaps a reference record: add what it refers to.
					if v, _, err := lv.Value(nil); err == nil {
						scanned.bytes += int64(codec.ExternalLen(v))
					}
				}
			}
		}
		if done = !valid; !done {
			resume = append(resume[:0], it.Key()...) // not read yet
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	c.keys.cur.Store(p)
	if recount {
		c.keys.counts.add(0, counts{entries: scanned.entries - base.entries, bytes: scanned.bytes - base.bytes})
		c.markExact()
	}
	return nil
}

// waitExact waits until the counts are exact.
func (c *store) waitExact(ctx context.Context) error {
	if c.keys.exact.Load() {
		return nil
	}
	select {
	case <-c.keys.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.bgCtx.Done():
		return ErrClosed
	}
}

func (c *store) lockAllStripes() func() {
	for i := range c.stripes {
		c.stripes[i].Lock()
	}
	return func() {
		for i := range c.stripes {
			c.stripes[i].Unlock()
		}
	}
}
