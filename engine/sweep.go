package engine

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/diskcache-go/diskcache/ttl"
)

// Sweep implements ttl.Target: it walks up to max expiry index entries that
// are due at now and deletes the records that really expired. An index entry
// whose record was overwritten with another expiry, or deleted, is dropped
// on its own. It is called by the sweeper only.
func (c *store) Sweep(now int64, max int) (ttl.Round, error) {
	var r ttl.Round
	lower, upper := ttl.IndexBounds(now)
	it, err := c.db.NewIter(nil)
	if err != nil {
		return r, err
	}
	type due struct {
		ikey   []byte
		dk     []byte
		expiry int64
	}
	var found []due
	for valid := it.SeekGE(lower); valid && bytes.Compare(it.Key(), upper) < 0; valid = it.Next() {
		if len(found) == max {
			r.More = true
			break
		}
		ik := append([]byte(nil), it.Key()...)
		expiry, ref, err := ttl.ParseIndexKey(ik)
		if err != nil || len(ref) < c.layout.header-1 {
			// Not ours to interpret: drop the entry rather than stall on it.
			found = append(found, due{ikey: ik})
			continue
		}
		found = append(found, due{ikey: ik, dk: append([]byte{dataPrefix}, ref...), expiry: expiry})
	}
	if err := it.Close(); err != nil {
		return r, err
	}
	r.Visited = len(found)
	if len(found) == 0 {
		return r, nil
	}

	keys := make([][]byte, 0, len(found))
	for _, f := range found {
		if f.dk != nil {
			keys = append(keys, f.dk)
		}
	}
	unlock := c.lockStripes(keys)
	defer unlock()
	b := c.db.NewBatch()
	defer b.Close()
	var total counts
	for _, f := range found {
		if f.dk != nil {
			old, ok, err := c.lookup(f.dk, false)
			if err != nil {
				return r, err
			}
			if ok && old.header.Expiry == f.expiry && old.header.Expired(now) {
				d := c.stageDelete(b, f.dk, old) // also deletes f.ikey
				total.entries += d.entries
				total.bytes += d.bytes
				r.Expired++
				r.Bytes += -d.bytes
				continue
			}
		}
		b.Delete(f.ikey, nil)
	}
	if err := c.commit(b, total); err != nil {
		return r, fmt.Errorf("diskcache: sweep %s: %w", c.dir, err)
	}
	c.stats.expirations.Add(int64(r.Expired))
	return r, nil
}

// Reclaim implements ttl.Target: it gives back the space of the records the
// sweeper deleted. Pebble drops a deleted value only when a compaction
// carries its tombstone to the bottom level, which on an idle store may
// never happen. Records are spread evenly over the hash space, so each of
// reclaimSlices slices holds about the same share of the garbage; compacting
// a number of slices proportional to the garbage fraction keeps the work in
// line with what it frees.
func (c *store) Reclaim(freed int64) error {
	n := c.reclaim.plan(freed, c.keys.counts.bytes.load())
	for i := 0; i < n; i++ {
		lo, hi := c.slices.next(c.layout)
		if err := c.compact(lo, hi); err != nil {
			return fmt.Errorf("diskcache: compact %s: %w", c.dir, err)
		}
	}
	if n > 0 {
		lo, hi := ttl.IndexSpan()
		if err := c.compact(lo, hi); err != nil {
			return fmt.Errorf("diskcache: compact %s: %w", c.dir, err)
		}
	}
	return nil
}

const reclaimSlices = 16

// sliceCursor hands out the hash slices in turn to whoever compacts next,
// the expiry sweeper or the size limiter, so that between them every slice
// gets its turn.
type sliceCursor struct{ n atomic.Uint32 }

func (s *sliceCursor) next(l keyLayout) (lo, hi []byte) {
	return l.slice(int((s.n.Add(1)-1)%reclaimSlices), reclaimSlices)
}

// reclaimer tracks deleted bytes that compaction has not yet given back.
// Only the sweeper goroutine calls plan; cleared may race with it, which at
// worst costs one extra compaction.
type reclaimer struct {
	garbage int64 // estimated deleted bytes not yet compacted away
}

// plan adds freed to the garbage and returns how many slices to compact
// now: none while the garbage is under 1/8 of the live data, all of them
// when everything was deleted.
func (r *reclaimer) plan(freed, live int64) int {
	r.garbage += freed
	if r.garbage <= 0 || r.garbage*8 < live {
		return 0
	}
	n := int((r.garbage*reclaimSlices + r.garbage + live - 1) / (r.garbage + live))
	n = min(max(n, 1), reclaimSlices)
	r.garbage -= r.garbage * int64(n) / reclaimSlices
	return n
}

func (r *reclaimer) cleared() { r.garbage = 0 }

// compactInBackground compacts [lo, hi) on a goroutine that Close waits for.
func (c *store) compactInBackground(lo, hi []byte) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		if err := c.compact(lo, hi); err != nil && c.bgCtx.Err() == nil {
			c.log.Error("diskcache: compaction failed", "err", err)
		}
	}()
}

// flushLoop pushes Pebble's WAL buffer to the operating system every
// FlushInterval, bounding what a kill -9 can lose in that mode.
func (c *store) flushLoop() {
	defer c.bg.Done()
	t := time.NewTicker(c.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-c.bgCtx.Done():
			return
		case <-t.C:
			// A synced empty write makes Pebble write(2) its WAL buffer;
			// the sync itself is a no-op on processSafeFS.
			if err := c.guard(func() error { return c.db.LogData(nil, pebble.Sync) }); err != nil {
				c.log.Error("diskcache: flush WAL failed", "err", err)
			}
		}
	}
}
