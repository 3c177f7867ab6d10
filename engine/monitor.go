package engine

import (
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The store's background loop (started by Open, stopped by Close through
// bgCtx and bg): every 10 ms it moves the access clock's tick, refreshes
// the disk usage the limiter steers by (limit.go), evicts past the live
// budget, compacts a slice of the keyspace past compactAt, and now and then
// saves the access clock. Writers waiting in backpressure start slice
// compactions too.

// monitorLoop refreshes the clock's tick and the disk usage, evicts when
// the live data passes its budget, compacts when the disk usage climbs, and
// snapshots the access clock now and then.
func (c *store) monitorLoop() {
	defer c.bg.Done()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	lastSnapshot := time.Now()
	ticks := 0
	wroteAtOpen := c.lim.wroteAll.load()
	defer c.room.free()
	for {
		select {
		case <-c.bgCtx.Done():
			return
		case <-t.C:
		case <-c.lim.wake:
		}
		c.lim.now.Store(uint32(c.lim.tick(c.now())))
		if c.lim.loaded.Load() {
			c.lim.clock.Grow(c.clockSlots()) // the store holds more keys: more slots
		}
		ticks++
		m := c.refreshDisk(ticks%unseenEvery == 0)
		c.room.follow(int64(m.MemTable.Size + m.MemTable.ZombieSize))
		if c.health.writable() != nil {
			continue // the disk takes no writes: nothing can be evicted or compacted (health.go)
		}
		c.refreshFootprint(ticks)
		live := c.keys.counts.bytes.load()
		c.lim.resteer(segmentSizeFor(c.opts.SizeLimit), c.valuesSize(), live, c.keys.exact.Load())
		st := c.lim.steering()
		c.lim.pressure.Store(live > st.budget)
		if live > st.budget {
			// A round evicts down to the low watermark, so that writes at
			// the limit do not start one every tick. Not in a reopened
			// store that has taken no write yet: it is over its budget
			// only by what new measures of its tables' footprint moved
			// the budget (a slice a second, from the estimate the last
			// Close saved; TestRestartKeepsEntriesAtLimit: estimates
			// 0.5-1.5% higher took a round and 5% of the entries the last
			// session held), so it evicts only the excess.
			target := st.low
			if c.lim.wroteAll.load() == wroteAtOpen {
				target = st.budget
			}
			if err := c.evictTo(target); err != nil && c.bgCtx.Err() == nil {
				c.log.Error("diskcache: eviction failed", "err", err)
			}
		}
		if c.lim.disk.Load() > st.compactAt {
			c.compactNextSlice()
		}
		c.maybeCollect()
		if time.Since(lastSnapshot) > time.Minute {
			lastSnapshot = time.Now()
			if err := c.guard(c.saveAccess); err != nil && c.bgCtx.Err() == nil {
				c.log.Error("diskcache: saving the access clock failed", "err", err)
			}
		}
	}
}

// refreshDisk reads the disk usage from Pebble's metrics, and with list
// also lists the directory for what they miss (countUnseen). It returns
// the metrics it read.
func (c *store) refreshDisk(list bool) *pebble.Metrics {
	m := c.db.Metrics()
	accounted := int64(m.DiskSpaceUsage())
	if list {
		c.countUnseen(accounted)
	}
	c.lim.disk.Store(accounted + c.valuesSize() + c.lim.unseen.Load())
	c.lim.l0Backlog.Store(m.Levels[0].Sublevels > l0BacklogSublevels)
	c.lim.announceRefresh()
	return m
}

// unseenEvery: the monitor lists the directory every 10th tick (100 ms);
// a listing of a few hundred files costs a fraction of a millisecond.
const unseenEvery = 10

// countUnseen sets unseen from a listing of the cache directory and its
// store, against the bytes Pebble accounts for: the limit is on the
// directory as du sees it, not on Pebble's own account of it.
func (c *store) countUnseen(accounted int64) {
	fsys := c.opts.filesystem()
	var total int64
	for _, dir := range []string{c.dir, filepath.Join(c.dir, storeDir), filepath.Join(c.dir, storeDir, valuesDir)} {
		names, err := fsys.List(dir)
		if err != nil {
			return
		}
		for _, n := range names {
			if fi, err := fsys.Stat(filepath.Join(dir, n)); err == nil && !fi.IsDir() {
				total += fi.Size()
			}
		}
	}
	c.lim.unseen.Store(max(total-accounted-c.valuesSize(), 0))
}

// l0BacklogSublevels: past this many L0 sublevels, Pebble's compactions
// into Lbase are behind. Pebble runs one compaction at a time here, and a
// slice compaction would hold that slot while L0 piles up; an L0 that
// deep spans the whole hash space, and its eventual compaction rewrites
// most of Lbase at once (20 MiB at a 64 MiB limit in the soak test).
const l0BacklogSublevels = 2

// compactNextSlice compacts the next of reclaimSlices hash slices in the
// background, one at a time: evicted entries are spread evenly over the
// hash space, so every slice holds a share of the garbage. The monitor
// and backpressure (limit.go) call it.
func (c *store) compactNextSlice() {
	if c.lim.l0Backlog.Load() || !c.lim.compacting.CompareAndSwap(false, true) {
		return
	}
	lo, hi := c.slices.next(c.layout)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.lim.compacting.Store(false)
		if err := c.compact(lo, hi); err != nil && c.bgCtx.Err() == nil {
			c.log.Error("diskcache: compaction failed", "err", err)
		}
		c.refreshDisk(false)
	}()
}
