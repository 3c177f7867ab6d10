package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/ttl"
	"github.com/diskcache-go/diskcache/vlog"
)

// storeDir is the folder inside a cache directory that holds Pebble's files.
// Everything diskcache creates lives there or in owner.lock, so a cache
// directory can share its folder with other files.
const storeDir = "store"

// numStripes is the number of per-key locks. A write reads the old record
// to keep the counters exact, and the read and the write must not interleave
// with another write of the same key.
const numStripes = 512

// store is the cache of the process that owns the directory: Pebble and
// everything around it. Cache uses it directly in the owner and reaches it
// through the owner's socket elsewhere.
type store struct {
	dir         string
	opts        Options
	db          *pebble.DB
	compactions *compactionGate // Pebble's compaction scheduler (compactgate.go)
	room        cacheRoom       // the memtables' room in Pebble's cache they do not use (cacheroom.go); the monitor's
	lock        *ownerLock
	codec       *codec.Codec
	write       *pebble.WriteOptions
	durability  durability // of Pebble's files, as openPebble made it
	clock       ttl.Clock
	log         *slog.Logger

	// layout is how the data keys are laid out, by the store's format
	// (keys.go).
	layout keyLayout

	stripes [numStripes]sync.Mutex
	// knownRecords: what the last Sets of a few keys of each stripe wrote
	// (known.go), under the stripe's lock.
	knownRecords atomic.Pointer[knownTable]
	replacedSets atomic.Int64 // until there is a knownRecords table (knownAfter)
	// marks: the sequence of the last commit of each slot of data keys,
	// for the evictor (evictmarks.go).
	marks atomic.Pointer[writeMarks]
	keys  keyState
	stats statCounters
	lim   *limiter

	values *vlog.Log // large values (values.go)
	gc     collector

	sweeper *ttl.Sweeper
	reclaim reclaimer
	slices  sliceCursor // the next hash slice to compact
	health  health      // Pebble's failures (health.go)
	tier    *ownerTier  // hot values every process reads (tier.go)

	// bg runs background work (the WAL flusher, compactions after Clear);
	// Close cancels it and waits.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	// gate is passed by every call and closed by Close, which so waits
	// for calls in flight before it closes the store. closed is written
	// with every gate shard held.
	gate    gate
	closed  bool
	closing atomic.Bool // Close has begun

	// unflushed: this session wrote to Pebble, so Close flushes the
	// memtable and the next Open has no log to replay (and flush) first.
	unflushed atomic.Bool
	// openedClean: the last Close was clean, so what it saved beside the
	// counts (the footprint's estimate) holds. Set before the monitor runs.
	openedClean bool
}

// openStore opens the store of the directory abs, whose owner lock the
// caller holds; the store releases it on Close.
func openStore(abs string, o Options, lock *ownerLock) (*store, error) {
	cd, err := codec.New(codec.Config{
		Compression: o.Compression,
		MinSize:     o.CompressMinSize,
		MaxValue:    o.MaxValueSize,
	})
	if err != nil {
		return nil, fmt.Errorf("diskcache: open %s: %w", abs, err)
	}
	c := &store{
		dir:   abs,
		opts:  o,
		lock:  lock,
		codec: cd,
		clock: o.Clock,
		log:   o.Logger.With("cache", abs),
		lim:   newLimiter(&o),
	}
	if c.tier, err = openOwnerTier(c, o.HotTierSize, o.CacheSize); err != nil {
		return nil, fmt.Errorf("diskcache: open %s: %w", abs, err)
	}
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	if err := c.openPebbleOrReset(); err != nil {
		c.bgCancel()
		return nil, err
	}
	c.sweeper = ttl.NewSweeper(c, ttl.Config{
		Interval: o.SweepInterval,
		Clock:    o.Clock,
		OnError: func(err error) {
			if c.bgCtx.Err() == nil {
				c.log.Error("diskcache: expiry sweep failed", "err", err)
			}
		},
	})
	c.sweeper.Start()
	c.bg.Add(1)
	go c.monitorLoop()
	if o.FlushInterval > 0 && !o.Sync {
		c.bg.Add(1)
		go c.flushLoop()
	}
	return c, nil
}

// openPebble opens Pebble and loads what the last Close left of the key
// state; after a crash it starts the scan that rebuilds it.
func (c *store) openPebble() error {
	d := c.opts.durability()
	c.write, c.durability = d.write, d
	path := filepath.Join(c.dir, storeDir)
	po := c.health.attach(pebbleOptions(&c.opts, d), c.log, c.dir)
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		// Flushes, compactions and table deletions, one line each: what
		// someone asking where the directory's bytes went needs to see.
		tee := pebble.TeeEventListener(*po.EventListener, pebble.MakeLoggingEventListener(po.Logger))
		po.EventListener = &tee
	}
	// Space comes back when Pebble deletes a table: the monitor looks at
	// once, and writers waiting for room (backpressure) go on.
	deleted := po.EventListener.TableDeleted
	po.EventListener.TableDeleted = func(info pebble.TableDeleteInfo) {
		if deleted != nil {
			deleted(info)
		}
		c.lim.poke()
	}
	if err := preflight(po.FS, path, 2*po.MemTableSize); err != nil {
		return fmt.Errorf("diskcache: open %s: %w", c.dir, err)
	}
	// The block cache is made here so that the hot tier can take its
	// share of it (ownerTier.reserve); Pebble holds a reference of its own.
	po.Cache = pebble.NewCache(po.CacheSize)
	defer po.Cache.Unref()
	c.room = cacheRoom{cache: po.Cache, room: po.CacheSize - c.opts.CacheSize, borrow: c.opts.CacheSize / 8}
	gate := newCompactionGate()
	po.Experimental.CompactionScheduler = gate
	flushed := po.EventListener.FlushEnd
	po.EventListener.FlushEnd = func(info pebble.FlushInfo) {
		if flushed != nil {
			flushed(info)
		}
		gate.flushed()
	}
	opened := d.opening()
	db, err := openPebbleDB(path, po, c.log)
	opened()
	if err != nil {
		gate.Unregister()
		return fmt.Errorf("diskcache: open %s: %w", c.dir, damaged(po.FS, path, err))
	}
	l0 := db.Metrics().Levels[0]
	gate.opened(l0Due(int(l0.Sublevels), l0.TablesSize, po.L0CompactionThreshold))
	c.db, c.compactions = db, gate
	if err := c.checkFormat(); err != nil {
		db.Close()
		return fmt.Errorf("diskcache: open %s: %w", c.dir, err)
	}
	if err := c.openValues(path); err != nil {
		db.Close()
		return fmt.Errorf("diskcache: open %s: %w", c.dir, err)
	}
	clean, err := c.loadKeyState()
	if err == nil {
		err = c.loadLimiter()
	}
	if err != nil {
		db.Close()
		c.closeValues()
		return fmt.Errorf("diskcache: open %s: %w", c.dir, err)
	}
	c.openedClean = clean
	if !clean || c.keys.cur.Load() == nil {
		c.rebuildKeys()
	}
	c.tier.useCache(po.Cache)
	c.tier.opened()
	return nil
}

// Close waits for calls in flight, stops the background work, closes
// Pebble and releases the owner lock. It is idempotent; every other method
// fails with ErrClosed afterwards.
func (c *store) Close() error {
	if !c.closing.CompareAndSwap(false, true) {
		return nil
	}
	// Background work first: a Len waiting for the key scan gives up, and
	// the sweeper stops between rounds.
	c.bgCancel()
	c.sweeper.Stop()
	c.gate.lockAll()
	c.closed = true
	c.gate.unlockAll()
	c.bg.Wait()
	c.tier.close()
	err := c.saveState()
	flushed := false
	if err == nil {
		flushed, err = c.flushAtClose()
	}
	if cerr := c.closePebble(); err == nil {
		err = cerr
	}
	if flushed && err == nil {
		dropOldLogs(c.opts.durability().fs, filepath.Join(c.dir, storeDir))
	}
	c.closeValues()
	if lerr := c.lock.release(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("diskcache: close %s: %w", c.dir, err)
	}
	return nil
}

// enter starts a call: it fails if ctx is done or the cache is closed.
// Every successful enter is paired with leave of the shard it returns; the
// shard is also the one to update counters in. It is random: goroutines on
// different cores mostly pick different shards.
func (c *store) enter(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	sh := rand.Uint64() % numShards
	c.gate.enter(sh)
	if c.closed {
		c.gate.leave(sh)
		return 0, ErrClosed
	}
	return sh, nil
}

func (c *store) leave(sh uint64) { c.gate.leave(sh) }
