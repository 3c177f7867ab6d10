package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/sys/unix"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/internal/hottier"
)

// The hot tier (internal/hottier) holds the values read last, in memory
// every process of the directory maps: the owner writes it, every process
// reads it without asking the owner. It is coherent with the store as
// follows.
//
//   - The owner invalidates the key of every write after the write is
//     applied and before the call returns (store.published), and Clear
//     empties it the same way. A read that began after a write returned
//     finds no older value in the tier.
//   - The owner fills the tier from its reads of the store. A fill carries
//     the tier's count of writes to the key's bucket read before the store
//     was, and the tier drops it if a write came in between: a value read
//     before a write cannot land after the write's invalidation. A Set
//     puts its own value the same way, after its invalidation (written).
//   - Entries keep the record's expiry; a reader checks it on its clock.
//   - Each owner makes a tier of its own. A tier outlives its owner in the
//     processes that mapped it, which may still read it while a new owner
//     acknowledges writes it knows nothing of. So the tier stores the
//     directory's epoch (epochName) it was shared under, every new owner
//     bumps the epoch before it serves, and a reader that finds the two
//     different misses.
//
// The memory is a memfd: the owner creates it at Open (its pages are
// allocated as they are written, so a small cache costs little), and a
// forwarder opens it through /proc/PID/fd of the owner, whose pid and
// descriptor the hello reply carries. It goes away with the last process
// that maps it, SIGKILL included; a file in /dev/shm would stay behind when
// every process of a directory is killed.

// epochName is the file, shared through mmap by the processes of a
// directory, that holds the directory's epoch: a number each new owner
// bumps before it serves. The owner creates it when the first forwarder
// connects; a cache used by one process at a time never has one.
const epochName = "owner.epoch"

// The layout of epochName, little-endian: [0:8) magic, [8:16) epoch.
const (
	epochMagic = "dcepoch\x01"
	epochSize  = 64
)

// oldGenName is the generation table of earlier versions, which the
// epoch file and the hot tier replaced; a directory may still hold one.
const oldGenName = "owner.gen"

var errBadEpoch = errors.New("not an epoch file")

// dirEpoch is a mapped epochName.
type dirEpoch struct{ mem []byte }

func (e *dirEpoch) word() *uint64 { return (*uint64)(unsafe.Pointer(&e.mem[8])) }
func (e *dirEpoch) load() uint64  { return atomic.LoadUint64(e.word()) }
func (e *dirEpoch) bump() uint64  { return atomic.AddUint64(e.word(), 1) }
func epochPath(dir string) string { return filepath.Join(dir, epochName) }

func mapEpoch(path string) (*dirEpoch, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr := make([]byte, epochSize)
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("diskcache: %s: %w", path, err)
	}
	if _, err := f.ReadAt(hdr, 0); err != nil || fi.Size() != epochSize || string(hdr[:8]) != epochMagic {
		return nil, fmt.Errorf("diskcache: %s: %w (%d bytes)", path, errBadEpoch, fi.Size())
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, epochSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("diskcache: map %s: %w", path, err)
	}
	e := &dirEpoch{mem: mem}
	// Unmapped once nothing refers to it: a read still in flight when its
	// Cache closes must not touch unmapped memory.
	runtime.AddCleanup(e, func(mem []byte) { unix.Munmap(mem) }, mem)
	return e, nil
}

// createEpoch maps dir's epoch file, creating it if it is missing or
// damaged. A new file is written beside and renamed into place, so that no
// process maps one without its header; its epoch starts at a random
// number, so that it matches no tier stamped with a file it replaced.
func createEpoch(dir string) (*dirEpoch, error) {
	path := epochPath(dir)
	if e, err := mapEpoch(path); err == nil {
		return e, nil
	} else if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errBadEpoch) {
		return nil, err
	}
	hdr := make([]byte, epochSize)
	copy(hdr, epochMagic)
	binary.LittleEndian.PutUint64(hdr[8:], randUint64())
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, hdr, 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("diskcache: create %s: %w", path, err)
	}
	return mapEpoch(path)
}

func randUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// ownerTier is the owner's side: the tier it writes, and the directory's
// epoch.
//
// A process that has its directory to itself writes a small tier
// (tierSizes): there the tier only stands in front of Pebble's block
// cache, so it takes its memory out of the block cache (reserve), and the
// process costs what the same store costs in Pebble alone. It does so only
// while it earns that memory (tierjudge.go): until then, and whenever its
// reads stop paying for it, the tier is dormant, neither read nor written,
// and the block cache has all its memory. The first forwarder to connect
// gets a tier of the full size, made then, on top of the block cache,
// which has its memory back; the small one is dropped with what it held.
//
// Coherence across dormancy: a dormant tier skips invalidations, so it is
// cleared before it wakes, and it wakes (dormant false) only after: a
// write that skipped its invalidation checked dormant after its commit,
// so before the wake, and every fill that can land in the cleared tier
// took its ticket after the wake and reads the store after that write.
// Fills and warms whose tickets predate the clear are dropped by it.
type ownerTier struct {
	cur        atomic.Pointer[tierMem]        // nil when the tier is off, could not be made, or is not made yet
	sharedSize int64                          // the size to make when shared; 0: keep cur; -1: sharedTierSize
	old        atomic.Pointer[hottier.Writer] // the lone tier's, once replaced
	// loneSize is the size of the lone tier the judge wakes, made when it
	// first wakes (under mu): a process that ends before its reads earn a
	// tier (a CLI, a cron job, W8's loop) makes none. 0 once made, or
	// when none could be.
	loneSize int64
	// reserved is what the lone tier takes of the block cache (reserve);
	// unreserve gives it back. Both under mu.
	reserved  int64
	unreserve func()
	dir       string
	log       *slog.Logger

	mu     sync.Mutex // one share at a time
	epoch  *dirEpoch  // nil until shared, unless an earlier owner left one
	shared atomic.Bool

	s      *store
	misses atomic.Int64 // reads the tier could not answer (warmAfter)

	// judge is set for the lone tier of the default size, which is
	// dormant while it does not earn its share of the block cache; cache
	// and cacheSize are that block cache (reserve).
	judge     *tierJudge
	dormant   atomic.Bool
	cache     *pebble.Cache
	cacheSize int64
}

// tierMem is one tier the owner writes.
type tierMem struct {
	w *hottier.Writer
	f *os.File // the memfd, which forwarders open through /proc
	// maxValue is the largest value kept: one value must not push out a
	// good part of the hot set.
	maxValue int
	warmed   sync.Once
}

func newTierMem(size int64) (*tierMem, error) {
	t, f, err := hottier.Create(size, randUint64())
	if err != nil {
		return nil, err
	}
	return &tierMem{w: hottier.NewWriter(t), f: f, maxValue: t.Size() / 256}, nil
}

// release unmaps m and closes its memfd.
func (m *tierMem) release() {
	m.w.Tier().Unmap()
	m.f.Close()
}

// retire releases a tier the owner no longer writes once nothing refers to
// it: reads and fills that loaded it before it was replaced may still use
// it, and every method of ownerTier keeps what it loaded alive to its end.
func (m *tierMem) retire() {
	runtime.AddCleanup(m, func(r *tierMem) { r.release() }, &tierMem{w: m.w, f: m.f})
}

// tierSizes turns Options.HotTierSize and CacheSize into the size of the
// tier a lone owner makes, of the one it makes when a second process
// connects (0: none; -1: sharedTierSize's, for what the store holds
// then), and of what the lone one takes of the block cache. Only the
// default differs between the two: a size the user set is what the owner
// makes from the start, on top of the block cache.
func tierSizes(setting, cacheSize int64) (lone, shared, reserved int64) {
	switch {
	case setting < 0:
		return 0, 0, 0
	case setting == 0:
		lone = max(min(defaultLoneTierSize, cacheSize/4), hottier.MinSize)
		return lone, -1, min(lone, cacheSize/4)
	}
	return setting, setting, 0
}

// sharedTierSize is the default tier for processes sharing a store of
// entries entries and bytes bytes (as counted): one that holds all of it,
// within [defaultHotTierSize, maxDefaultHotTierSize]. The tier's index
// takes a quarter of it, in ways of 64 bytes, and binds for small values:
// 512 bytes a key leaves half the ways free, since a key whose 8-way
// bucket is full is not kept. W7 (500,000 values of 128 B from 4
// processes, the tier warmed once the second connected): 396k Gets/s
// with 256 MiB (ways half used), 198k with 192 MiB and 176k with 128 MiB
// (both with 32 MiB of index, the ways all but full: a Get that misses
// is a round trip to the owner, some 50 us on 2 cores shared by 4
// processes), 62k with 64 MiB. Large values bind the arena: 1.6 bytes a
// byte stored is the records' main ring (nine tenths of three quarters)
// with a sixth to spare. A power of two, as the index is.
func sharedTierSize(entries, bytes int64) int64 {
	need := max(entries*512, bytes*8/5)
	size := int64(defaultHotTierSize)
	for size < need && size < maxDefaultHotTierSize {
		size <<= 1
	}
	return size
}

// warmAfter is how many reads the tier must miss in a process that does
// not share its directory before it is filled from the store (warm): a
// process that reads that much will likely read more, and a short-lived
// one (a CLI, a cron job) is spared the work.
const warmAfter = 4096

// warmChunk is the number of records a warmer reads under one copy of the
// tier's write counts.
const warmChunk = 4096

// openOwnerTier makes the owner's tier of size bytes (none when size <= 0,
// or when the memory cannot be had: the cache works without it). If an
// earlier owner left an epoch file, its epoch is bumped now, before this
// owner serves a write: what processes of that owner read from its tier
// may miss writes it applied and never acknowledged.
func openOwnerTier(s *store, setting, cacheSize int64) (*ownerTier, error) {
	dir, log := s.dir, s.log
	o := &ownerTier{dir: dir, log: log, s: s}
	e, err := mapEpoch(epochPath(dir))
	switch {
	case err == nil:
		e.bump()
		o.epoch = e
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, errBadEpoch):
		// No process can read a tier stamped with it: share replaces it.
	default:
		return nil, err
	}
	lone, shared, reserved := tierSizes(setting, cacheSize)
	switch {
	case lone > 0 && shared != lone:
		// Judged: dormant, and made when it first wakes (loneSize).
		o.loneSize = lone
		o.sharedSize = shared
		o.reserved = reserved
		o.cacheSize = cacheSize
		o.judge = newTierJudge(hottier.GeometryOf(lone))
		o.dormant.Store(true)
	case lone > 0:
		if !o.makeTier(lone) {
			return o, nil
		}
	}
	return o, nil
}

// makeTier makes the tier of size bytes as cur, and reports whether it could.
// The caller holds mu, or is openOwnerTier.
func (o *ownerTier) makeTier(size int64) bool {
	m, err := newTierMem(size)
	if err != nil {
		o.log.Warn("diskcache: no hot tier: every read goes to the store", "err", err)
		return false
	}
	o.cur.Store(m)
	return true
}

// useCache tells the tier the block cache the store has just opened
// with: an awake lone tier takes its share out of it (reserve).
func (o *ownerTier) useCache(cache *pebble.Cache) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cache = cache
	o.reserve()
}

// reserve takes the lone tier's share of the block cache, unless it is
// dormant: the tier then holds hot values in memory the block cache would
// otherwise have held blocks in. The caller holds mu.
func (o *ownerTier) reserve() {
	if o.reserved > 0 && o.cache != nil && !o.shared.Load() && !o.dormant.Load() && o.unreserve == nil {
		o.unreserve = o.cache.Reserve(int(o.reserved))
	}
}

// saw tells the judge of a lone tier of a read of the key of tier hash th,
// whose key and value are size bytes, and follows its verdict.
func (o *ownerTier) saw(th uint64, size int) {
	if o.judge == nil || !sampled(th) || o.shared.Load() {
		return
	}
	if ratio, done := o.judge.read(th, size); done {
		o.follow(ratio)
	}
}

// opened runs once the store is open: a tier awake from the start (a
// size the user set) has its index allocated (prefault).
func (o *ownerTier) opened() {
	if m := o.cur.Load(); m != nil && !o.dormant.Load() {
		o.prefault(m)
	}
}

// prefault has m's index allocated in the background when the store holds
// keys enough to touch most of its pages (hottier.Writer.PrefaultIndex),
// so that the first reads of a tier that just woke do not each pay a
// page's allocation (a warm does it first thing, Prefault). Close stops
// it within a megabyte. The caller is inside the store's gate, or
// opening the store.
func (o *ownerTier) prefault(m *tierMem) {
	n := o.s.keys.counts.entries.load()
	o.s.bg.Add(1)
	go func() {
		defer o.s.bg.Done()
		m.w.PrefaultIndex(n, o.s.stopping)
	}()
}

// wake ends m's dormancy: it clears m first, since a dormant tier skipped
// invalidations, and only then lets reads and fills in (see ownerTier).
// The caller holds mu.
func (o *ownerTier) wake(m *tierMem) {
	m.w.Clear()
	o.dormant.Store(false)
}

// wakeLone wakes the lone tier, made first if it was not yet: a new tier
// holds nothing, as a cleared one. It reports false when it could not be
// made (then never again tried). The caller holds mu.
func (o *ownerTier) wakeLone() bool {
	if o.cur.Load() == nil {
		size := o.loneSize
		o.loneSize = 0
		if size == 0 || !o.makeTier(size) {
			return false
		}
	}
	o.wake(o.cur.Load())
	return true
}

// none reports whether there is no tier and none to make: off, or one
// that could not be made. The caller holds mu.
func (o *ownerTier) none() bool { return o.cur.Load() == nil && o.loneSize == 0 }

// follow wakes the lone tier when a window's hit ratio earns its memory,
// and puts it to sleep when the ratio falls a quarter below that (so that
// a ratio near the line does not swap the block cache's memory back and
// forth).
func (o *ownerTier) follow(ratio float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.shared.Load() || o.none() {
		return
	}
	line := worth(o.reserved, o.cacheSize, o.s.keys.counts.bytes.load())
	switch dormant := o.dormant.Load(); {
	case dormant && ratio >= line:
		if !o.wakeLone() {
			return
		}
		o.prefault(o.cur.Load())
		o.reserve()
		o.log.Debug("diskcache: the hot tier wakes", "hit_ratio", ratio, "worth", line)
	case !dormant && ratio < 0.75*line:
		o.dormant.Store(true)
		o.giveBack()
		o.log.Debug("diskcache: the hot tier sleeps: the block cache has its memory", "hit_ratio", ratio, "worth", line)
	}
}

// giveBack returns the lone tier's share to the block cache. The caller
// holds mu.
func (o *ownerTier) giveBack() {
	if o.unreserve != nil {
		o.unreserve()
		o.unreserve = nil
	}
}

// share runs in the owner for each connection before it is served: the
// first one creates the epoch file if needed and stamps the tier with the
// epoch, before any forwarder can map the tier (hello comes later). If the
// file cannot be made, forwarders get no tier and ask the owner for every
// read, which is still coherent.
func (o *ownerTier) share() {
	if o.shared.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.shared.Load() || o.none() {
		return
	}
	if o.sharedSize != 0 {
		size := o.sharedSize
		if size < 0 {
			size = sharedTierSize(o.s.keys.counts.entries.load(), o.s.keys.counts.bytes.load())
		}
		// Coherence holds across the swap: a fill carries the tier it
		// counted writes in (fillTicket), so a value read before a write
		// never lands in the new tier, and every write after the swap
		// invalidates the new tier, which is all any process reads.
		if m, err := newTierMem(size); err != nil {
			o.log.Warn("diskcache: no larger hot tier for the processes sharing the directory", "err", err)
		} else {
			if old := o.cur.Swap(m); old != nil {
				o.old.Store(old.w)
				old.retire()
			}
			o.loneSize = 0
			o.giveBack()
		}
		o.sharedSize = 0
	}
	// The new tier, or the lone one kept (or made now) when it could not
	// be: awake for good.
	if o.dormant.Load() && !o.wakeLone() {
		return
	}
	if o.epoch == nil {
		e, err := createEpoch(o.dir)
		if err != nil {
			o.log.Warn("diskcache: no epoch file: other processes read without the hot tier", "err", err)
			return
		}
		o.epoch = e
	}
	o.cur.Load().w.Tier().SetOwnerEpoch(o.epoch.load())
	o.shared.Store(true)
	if sh, err := o.s.enter(context.Background()); err == nil {
		o.warm()
		o.s.leave(sh)
	}
}

// missed counts a read the tier did not answer, and starts warming it
// after warmAfter. The caller is inside the store's gate.
func (o *ownerTier) missed() {
	if o.dormant.Load() {
		return
	}
	// Counted up to warmAfter only: past it every miss would write the
	// same shared cache line for nothing.
	if o.misses.Load() < warmAfter && o.misses.Add(1) == warmAfter {
		o.warm()
	}
}

// warm starts filling the tier from the store in the background, once.
// The caller is inside the store's gate, so Close waits for the filler
// (store.bg) only after it was added.
func (o *ownerTier) warm() {
	m := o.cur.Load()
	if m == nil {
		return
	}
	m.warmed.Do(func() {
		o.s.bg.Add(1)
		go func() {
			defer o.s.bg.Done()
			o.s.warmTier(m.w)
		}()
	})
}

// replaced reports whether w is the lone tier share replaced: warming it
// is wasted work.
func (o *ownerTier) replaced(w *hottier.Writer) bool { return o.old.Load() == w }

// warmTier reads the store's records into the tier until it is full
// (hottier.Writer.Warm), so that other processes, and this one, read at
// memory speed before they have read each key once: without it, a tier
// large enough for the working set still misses on every key's first read
// (63% of W7's uniform Gets).
func (c *store) warmTier(w *hottier.Writer) {
	w.StartFill()
	defer w.EndFill()
	defer c.tier.holdCache(c.opts.CacheSize)()
	w.Prefault(c.keys.counts.entries.load(), c.stopping)
	var full atomic.Bool
	var wg sync.WaitGroup
	for i := range warmers {
		lo, hi := c.layout.slice(i, warmers)
		wg.Go(func() { c.warmSlice(w, lo, hi, &full) })
	}
	wg.Wait()
}

// stopping reports whether Close has begun: background work ends.
func (c *store) stopping() bool { return c.bgCtx.Err() != nil }

// warmCacheRoom is what a warm's blocks may take of the block cache
// beyond what it already holds (holdCache).
const warmCacheRoom = 4 << 20

// holdCache keeps a warm from growing the block cache past what it holds
// now and warmCacheRoom (and what the memtables leave of their room,
// cacheRoom), until the returned func is called; blocks is what it may
// hold (Options.CacheSize). A warm reads every block of the
// store once, and the tier, not the block cache, is what keeps their
// values. In a process whose block cache is still filling (one that has
// just opened, the case of most warms) each block the warm brought in
// would be memory the cache never had: a page allocated at its first
// write, 11-15 us a page on the 2-core VM, a third of a warm's CPU.
// Measured, 500,000 records of 128 B into 256 MiB in a process that had
// just opened the store: 0.53-0.66 s and 0.8-1.0 s of CPU with the hold
// (4 MiB of room; 0 to 16 MiB alike), 0.78-0.83 s and 1.2 s without. The
// blocks the cache holds stay; a cache already full holds nothing back.
func (o *ownerTier) holdCache(blocks int64) (release func()) {
	o.mu.Lock()
	cache := o.cache
	if o.unreserve != nil {
		blocks -= o.reserved // the lone tier's share, held already
	}
	o.mu.Unlock()
	if cache == nil {
		return func() {}
	}
	n := blocks - cache.Size() - warmCacheRoom
	if n <= 0 {
		return func() {}
	}
	return cache.Reserve(int(n))
}

// warmers is the number of goroutines that warm the tier, each over a
// slice of the store: reading and decoding the store, about 40% of a
// warm's CPU, runs beside the other's writes into the tier, which hold
// the writer's lock; more would wait for the lock.
const warmers = 2

// warmBatch is the number of records a warmer hands Warm at once.
const warmBatch = 128

// warmSlice warms the records of [lo, hi) in key order, until the tier is
// full (full, which it sets when it finds so). Each chunk is read from an
// iterator (a snapshot) opened after the tier's write counts were
// copied, so a value a write replaced since is dropped.
func (c *store) warmSlice(w *hottier.Writer, lo, hi []byte, full *atomic.Bool) {
	var gens hottier.Gens
	batch := make([]hottier.Record, 0, warmBatch)
	// values holds the batch's values, one after the other: Warm copies
	// them into the tier, and a value each would be 500,000 allocations
	// for as many records.
	values := make([]byte, 0, 32<<10)
	flush := func() {
		if !w.Warm(batch) {
			full.Store(true)
		}
		batch, values = batch[:0], values[:0]
	}
	var next []byte // the key after the last one read; lo is the iterator's
	now := c.now()
	for c.bgCtx.Err() == nil && !full.Load() && !c.tier.replaced(w) && !c.tier.dormant.Load() {
		w.Gens(&gens)
		it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return
		}
		n := 0
		for ok := it.First(); ok && n < warmChunk && !full.Load(); ok = it.Next() {
			n++
			k := it.Key()
			// Past every key read, the expired and damaged ones too: a
			// chunk of them must not be read again and again.
			next = append(append(next[:0], k...), 0)
			if !c.layout.isData(k) {
				continue
			}
			rec, err := it.ValueAndErr()
			if err != nil {
				break
			}
			key := c.layout.userKey(k)
			start := len(values)
			hdr, out, err := c.decodeRecordTo(values, key, rec)
			if err != nil || hdr.Expired(now) {
				continue
			}
			// A values that grew left the batch's earlier values where
			// they were, in the memory it grew from.
			values = out
			h := hottier.HashOf(c.layout.hash(k))
			batch = append(batch, hottier.Record{Key: string(key), Hash: h, Value: out[start:len(out):len(out)], Expiry: hdr.Expiry, Gen: gens.Of(h), Stored: recordStored(rec)})
			if len(batch) == warmBatch {
				flush()
			}
		}
		err = it.Close()
		if len(batch) > 0 {
			// The records carry the counts taken before the iterator: they
			// hold after it is closed.
			flush()
		}
		lo, next = next, lo
		if n < warmChunk || err != nil {
			return
		}
	}
}

// handle is what the hello reply tells a forwarder of the tier: this
// process's descriptor of it (-1 for none) and its id.
func (o *ownerTier) handle() (int64, uint64) {
	m := o.cur.Load()
	if m == nil || !o.shared.Load() {
		return -1, 0
	}
	return int64(m.f.Fd()), m.w.Tier().ID()
}

// get returns key's value and expiry from the tier.
func (o *ownerTier) get(key string, hash uint64) ([]byte, int64, bool) {
	m := o.cur.Load()
	if m == nil || o.dormant.Load() {
		return nil, 0, false
	}
	v, exp, ok := m.w.Tier().Get(key, hash)
	runtime.KeepAlive(m)
	return v, exp, ok
}

// fillTicket is what a fill checks: the tier whose write counts it read
// before reading the store, and the count.
type fillTicket struct {
	m   *tierMem
	gen uint64
}

// startFill announces a fill of hash's key (hottier.Writer.Gen): call it
// before reading the store, fill with the value read, and endFill.
func (o *ownerTier) startFill(hash uint64) fillTicket {
	m := o.cur.Load()
	if m == nil || o.dormant.Load() {
		return fillTicket{}
	}
	m.w.StartFill()
	return fillTicket{m: m, gen: m.w.Gen(hash)}
}

func (o *ownerTier) endFill(ft fillTicket) {
	if ft.m != nil {
		ft.m.w.EndFill()
	}
}

// fill puts a value read from the store, whose record there takes stored
// bytes (0: unknown), unless a write of its bucket came since the ticket
// was taken.
func (o *ownerTier) fill(ft fillTicket, key string, hash uint64, value []byte, expiry int64, stored int) {
	if ft.m != nil && len(value) <= ft.m.maxValue {
		ft.m.w.TryPut(hottier.Record{Key: key, Hash: hash, Value: value, Expiry: expiry, Gen: ft.gen, Stored: storedSize(stored)})
	}
}

// storedSize is the record size the tier keeps for the owner's Sets
// (hottier.Record.Stored): records whose value is in the value log are not
// kept, as in the known records (known.go).
func storedSize(rec int) uint32 {
	if rec <= 0 || rec > 1<<30 {
		return 0
	}
	return uint32(rec)
}

// stored returns the size and expiry of the record the store holds under
// the key of xxhash64 kh, klen bytes long, if the tier holds the key's
// value and knows them. The caller holds the key's stripe: every write of
// the key invalidates it in the tier under that stripe, so what the tier
// holds is what the store holds. A dormant tier skips invalidations and
// answers nothing.
func (o *ownerTier) stored(kh uint64, klen int) (oldRecord, bool) {
	m := o.cur.Load()
	if m == nil || o.dormant.Load() || m.w.Idle() {
		return oldRecord{}, false
	}
	size, expiry, ok := m.w.Stored(hottier.HashOf(kh), klen)
	if !ok {
		return oldRecord{}, false
	}
	return oldRecord{size: int(size), header: codec.Header{Expiry: expiry}}, true
}

// written puts the value a Set just wrote, so that the next read of a hot
// key that was written hits. The caller holds the key's stripe, so no
// other write of the key comes between its commit and this Put, and the
// invalidation of its commit came first: a fill that read the store
// before the commit carries an older count and is dropped. A tier that is
// idle stays so: a process that only writes pays nothing. kh is the key's
// xxhash64, which the Set has computed; rec the record it stored.
func (o *ownerTier) written(key string, kh uint64, value []byte, expiry int64, rec []byte) {
	m := o.cur.Load()
	if m == nil || o.dormant.Load() || m.w.Idle() || len(value) > m.maxValue {
		return
	}
	h := hottier.HashOf(kh)
	m.w.StartFill()
	defer m.w.EndFill()
	m.w.Put(hottier.Record{Key: key, Hash: h, Value: value, Expiry: expiry, Gen: m.w.Gen(h), Stored: recordStored(rec)})
}

// recordStored is storedSize of the record rec.
func recordStored(rec []byte) uint32 {
	if codec.ExternalLen(rec) != 0 {
		return 0
	}
	return storedSize(len(rec))
}

// idle reports whether invalidations have nothing to do now
// (hottier.Writer.Idle): a process that only writes skips them.
func (o *ownerTier) idle() bool {
	m := o.cur.Load()
	return m == nil || o.dormant.Load() || m.w.Idle()
}

// invalidate drops the key whose xxhash64 is kh.
func (o *ownerTier) invalidate(kh uint64) {
	if m := o.cur.Load(); m != nil {
		m.w.Invalidate(hottier.HashOf(kh))
	}
}

func (o *ownerTier) clear() {
	if m := o.cur.Load(); m != nil {
		m.w.Clear()
	}
}

// close unmaps the owner's tier; no call of the store is in flight. The
// forwarders that mapped it keep their mappings, and the memory, until
// they let go.
func (o *ownerTier) close() {
	if m := o.cur.Swap(nil); m != nil {
		m.release()
	}
	o.mu.Lock()
	o.giveBack()
	o.mu.Unlock()
}

// readTier is a forwarder's side: the owner's tier, and the directory's
// epoch the tier must match.
type readTier struct {
	t     *hottier.Tier
	epoch *dirEpoch
}

// openReadTier maps the tier the owner (pid) told of in its hello reply.
func openReadTier(dir string, pid int, fd int64, id uint64) (*readTier, error) {
	if fd < 0 {
		return nil, errors.New("the owner shares no hot tier")
	}
	path := "/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.FormatInt(fd, 10)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open the owner's hot tier: %w", err)
	}
	defer f.Close()
	t, err := hottier.Map(f)
	if err != nil {
		return nil, err
	}
	if t.ID() != id {
		t.Unmap()
		return nil, fmt.Errorf("%s is not the owner's hot tier (id %x, want %x)", path, t.ID(), id)
	}
	e, err := mapEpoch(epochPath(dir))
	if err != nil {
		t.Unmap()
		return nil, err
	}
	r := &readTier{t: t, epoch: e}
	// As for the epoch: a read may be in flight when the forwarder closes.
	runtime.AddCleanup(r, func(t *hottier.Tier) { t.Unmap() }, t)
	return r, nil
}

// get returns key's value and expiry if the tier holds it and its owner
// is still the directory's: the epoch is read first, so a new owner's bump
// made before a write it acknowledged is seen by every read that began
// after.
func (r *readTier) get(key string) ([]byte, int64, bool) {
	if r.epoch.load() != r.t.OwnerEpoch() {
		return nil, 0, false
	}
	v, exp, ok := r.t.Get(key, hottier.Hash(key))
	runtime.KeepAlive(r)
	return v, exp, ok
}
