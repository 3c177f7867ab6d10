package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/s2"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/lru"
)

// The size limit (docs/ARCHITECTURE.md, "Size limit"). What a cache keeps on disk is
// its live entries plus Pebble's overheads: the WAL (recycled log files stay
// on disk), deleted entries that no compaction has dropped yet, and the
// output of compactions in flight. Disk usage lags deletions, so it cannot
// steer eviction by itself: the limiter keeps the live bytes (which it
// knows exactly, from the counts) under a budget derived from the limit,
// compacts slices of the keyspace when disk usage climbs, and makes writers
// wait and evict when disk usage nears the limit anyway. The background loop
// that does the first two is in monitor.go.
type limiter struct {
	clock *lru.AccessClock
	epoch int64 // unix nanoseconds of the clock's tick 0, kept in the store
	// savedSum is the clock's Sum when its snapshot was last saved or
	// loaded: an unchanged clock is not saved again (saveAccess).
	savedSum atomic.Uint64
	// loaded is set once the clock holds the snapshot the last Close saved
	// (or there is none): until then it is neither grown nor saved.
	loaded atomic.Bool

	now atomic.Uint32 // the current tick, refreshed by the monitor

	// steer holds the thresholds in use: a mix of lsm (for live data held
	// in Pebble) and values (held in the value log, which costs far less
	// room beside it) by the share of the bytes written that go to the
	// value log (valueShare).
	steer         atomic.Pointer[steering]
	lsm, values   steering
	wroteAll      counter // bytes of entries written (key and record or log entry)
	wroteValues   counter // of those, bytes written to the value log
	lastWrote     [2]int64
	valueShare    float64 // monitor only
	valueShareSet bool    // monitor only
	// footprint is the bytes of table the live entries in Pebble take per
	// byte counted, 1 until measured (budget.go). Monitor only.
	footprint     float64
	footprintSet  bool
	footprintBits atomic.Uint64 // footprint's bits once measured, for footprintNow
	// overhead is the high-water mark of the bytes the directory holds
	// beyond the live data, once set (budget.go). Monitor only.
	overhead    float64
	overheadSet bool
	lastEvicted int64 // evictedBytes at the last resteer
	limit       int64

	disk atomic.Int64 // last disk usage the monitor saw
	// l0Backlog is set while L0 has sublevels waiting for Pebble's own
	// compactions; slice compactions then stand aside (compactNextSlice).
	l0Backlog atomic.Bool
	// unseen is what the directory holds beyond what Pebble accounts for:
	// the files a dead owner's compactions were writing (deleted only once
	// Pebble gets to them), our own small files. Measured by listing the
	// directory now and then (countUnseen).
	unseen atomic.Int64
	// refresh is closed and replaced at each refresh of disk: writers
	// waiting for room wait on it.
	refresh      atomic.Pointer[chan struct{}]
	waitLogged   atomic.Bool // a write gave up waiting since Open (logged)
	overEvicting atomic.Bool // a waiting writer evicts what is over (backpressure)
	// pressure is set by the monitor while the live bytes are near the hard
	// limit, so that a writer reads one flag, not the 16 shards of the
	// counts. The monitor looks every 10 ms: what writers add in between is
	// small beside the room between the budget and the hard limit.
	pressure atomic.Bool
	// evictIdle is the idleness (ticks) of the last entry the sampler
	// evicted, 0 before the first: the collector of the value log evicts
	// entries at least as idle instead of moving them (values.go).
	evictIdle atomic.Int64

	mu      sync.Mutex // guards sampler and source
	sampler *lru.Sampler
	source  *evictSource

	evictions    counter
	evictedBytes counter
	logged       atomic.Bool // the first eviction since Open was logged
	wake         chan struct{}
	compacting   atomic.Bool
}

var (
	metaEpoch = []byte("mepoch")
	// metaAccess is where versions before accessFile kept the clock's
	// snapshot: read when the file is missing, deleted by the next save of
	// the key state.
	metaAccess = []byte("maccess")
)

// accessFile is the access clock's snapshot, a side file in store/
// (sidefile.go). It is a hint: without it recency falls back to the
// records' write times.
const (
	accessFile  = "access.clock"
	accessMagic = "dcclock1"
	// accessMagicS2 is the same snapshot compressed with S2, as a clock of
	// accessCompressMin or more is saved: the table has 16 slots a key
	// held, most of them empty, so 4 bytes a slot are mostly zeros. A
	// 16 MiB snapshot of 500,000 keys came to 2.8 MB: the access clock had
	// been a sixth of W1's directory (105 MiB against raw Pebble's 81).
	accessMagicS2 = "dcclock2"
	// accessMagicLanes is the snapshot regrouped by byte lane
	// (clocklanes.go), then compressed with S2 as accessMagicS2 is, as a
	// clock of accessCompressMin or more is saved since 2026-12: a fifth
	// smaller in the same time.
	accessMagicLanes = "dcclock3"
)

// accessMagics are the clock snapshot's kinds of file Open reads.
var accessMagics = []string{accessMagic, accessMagicS2, accessMagicLanes}

// accessCompressMin is the smallest snapshot saved compressed (256Ki
// slots). Smaller ones keep their size from one save to the next, so
// their file is overwritten in place (sidefile.go), and cost little.
const accessCompressMin = 1 << 20

// accessMaxSnapshot is the largest snapshot a clock writes.
const accessMaxSnapshot = 8 + 4*lru.MaxSlots

// accessBlock is the S2 block of a compressed snapshot: small, so that
// saving and loading one holds little memory beside the clock.
const accessBlock = 64 << 10

// Limits derived from SizeLimit (newLimiter). The fixed overhead is what
// Pebble keeps on disk whatever the cache holds: the logs of the memtables
// not yet flushed (at most MemTableStopWritesThreshold + 1, each up to 1.1 x
// MemTableSize; one more, measured, where flushed logs are kept for reuse:
// durability.recycleLogs) and two target files of compaction output. Of the
// rest, the live share (shares.live) may be live data; the remainder is room
// for deleted data waiting for compaction and for the output of compactions
// in flight (sharesFor).
const (
	lowWaterShare = 0.95 // a round of eviction stops at 95% of the budget
	hardShare     = 1.05 // writers evict inline past 105%
)

// shares are the fractions of the limit the limiter steers by: live, of
// what the fixed overhead leaves; compactAt and waitAt, of the limit. A
// small limit needs more room beside its live data: one compaction's
// output is a larger part of it. They go from the small end (64 MiB and
// less) to the large end (1 GiB and more) with the log of the limit.
//
// Measured with BenchmarkSizeLimit (4 KiB values, five times the limit
// written, one writer): at 64 MiB the directory peaks at 0.88-0.97x with
// 0.44-0.46 of the limit live. At 1 GiB, with Lbase and files small enough
// that no single compaction is a tenth of the limit (pebble.go), these
// large-end shares give a peak of 1.08x and 0.755 live at 2,900 Sets/s;
// live 0.78, compactAt 0.80, waitAt 0.88 gave 0.99x and 0.73 at 2,800.
// More live data costs write speed: a slice compaction rewrites more live
// data per byte it frees.
type shares struct {
	live, compactAt, waitAt float64
	low                     float64 // of the budget; 0 means lowWaterShare
}

var (
	smallLimitShares = shares{live: 0.55, compactAt: 0.60, waitAt: 0.75}
	largeLimitShares = shares{live: 0.82, compactAt: 0.84, waitAt: 0.92}
	// valueLogShares are for live data in the value log, at any limit:
	// beside it the directory holds the collector's slack (an eighth of
	// the live bytes, values.go), two segments and the small records in
	// Pebble. TestSizeLimitHolds and BenchmarkSizeLimit measure them.
	valueLogShares = shares{live: 0.84, compactAt: 0.90, waitAt: 0.96, low: 0.98}
)

// steering is what the limiter steers by, in bytes.
type steering struct {
	budget    int64 // live bytes the evictor keeps under
	low       int64 // where a round of eviction stops
	hard      int64 // above this a writer evicts before it writes
	compactAt int64 // disk usage that starts slice compactions
	waitAt    int64 // disk usage at which writers wait
}

func steeringFor(limit, fixed int64, sh shares) steering {
	budget := int64(float64(limit-fixed) * sh.live)
	budget = max(budget, limit/8)
	low := lowWaterShare
	if sh.low > 0 {
		low = sh.low
	}
	return steering{
		budget:    budget,
		low:       int64(float64(budget) * low),
		hard:      int64(float64(budget) * hardShare),
		compactAt: int64(float64(limit) * sh.compactAt),
		waitAt:    int64(float64(limit) * sh.waitAt),
	}
}

// mix returns a's thresholds moved a share f of the way to b's.
func (a steering) mix(b steering, f float64) steering {
	m := func(x, y int64) int64 { return x + int64(f*float64(y-x)) }
	return steering{m(a.budget, b.budget), m(a.low, b.low), m(a.hard, b.hard), m(a.compactAt, b.compactAt), m(a.waitAt, b.waitAt)}
}

// steering returns the thresholds in use.
func (l *limiter) steering() *steering { return l.steer.Load() }

// wrote records a write of n bytes, of which toLog went to the value log.
func (l *limiter) wrote(n, toLog int64) {
	sh := rand.Uint64()
	l.wroteAll.add(sh, n)
	if toLog > 0 {
		l.wroteValues.add(sh, toLog)
	}
}

// resteer moves the thresholds toward the share of the bytes written since
// the last call that went to the value log, weighing them by their volume
// against window: a workload's mix shows within a few windows of writes.
// Before the first write it starts from the share of the live bytes the
// log holds. The live thresholds, which the shares put in bytes on disk,
// grow into the room the overhead leaves and become bytes counted:
// divided by the footprint of what Pebble holds (the value log holds
// values as counted). budget.go has both. exact says that live is the
// store's (not a recount's after a crash, still running).
func (l *limiter) resteer(window, logBytes, live int64, exact bool) {
	all, vals := l.wroteAll.load(), l.wroteValues.load()
	dAll, dVals := all-l.lastWrote[0], vals-l.lastWrote[1]
	l.lastWrote = [2]int64{all, vals}
	switch {
	case !l.valueShareSet:
		l.valueShareSet = true
		l.valueShare = min(1, float64(logBytes)/float64(max(live, 1)))
	case dAll > 0:
		w := float64(dAll) / float64(dAll+window)
		l.valueShare += w * (float64(dVals)/float64(dAll) - l.valueShare)
	}
	s := l.lsm.mix(l.values, l.valueShare)
	if s.budget != math.MaxInt64 {
		switch {
		case l.overheadSet:
			evicted := l.evictedBytes.load()
			l.observe(l.disk.Load(), live, evicted-l.lastEvicted)
			l.lastEvicted = evicted
		case exact:
			l.startOverhead(s, live)
			l.lastEvicted = l.evictedBytes.load()
		}
		room := l.room(s)
		k := float64(s.budget+room) / float64(s.budget) / l.physical()
		counted := func(n int64) int64 { return int64(float64(n) * k) }
		s.budget, s.low, s.hard = counted(s.budget), counted(s.low), counted(s.hard)
		s.compactAt += room
		s.waitAt += room
	}
	if cur := l.steer.Load(); cur == nil || *cur != s {
		l.steer.Store(&s)
	}
}

func sharesFor(limit int64) shares {
	t := (math.Log2(float64(limit)) - 26) / 4 // 0 at 64 MiB, 1 at 1 GiB
	t = min(max(t, 0), 1)
	mix := func(a, b float64) float64 { return a + t*(b-a) }
	s, l := smallLimitShares, largeLimitShares
	return shares{live: mix(s.live, l.live), compactAt: mix(s.compactAt, l.compactAt), waitAt: mix(s.waitAt, l.waitAt)}
}

func newLimiter(o *Options) *limiter {
	d := o.durability()
	po := pebbleOptions(o, d)
	logs := po.MemTableStopWritesThreshold + 1
	if d.recycleLogs {
		logs++ // measured with logs reused
	}
	wal := int64(1.1 * float64(po.MemTableSize) * float64(logs))
	fixed := wal + 2*po.TargetFileSizes[0]
	l := &limiter{
		lsm:    steeringFor(o.SizeLimit, fixed, sharesFor(o.SizeLimit)),
		values: steeringFor(o.SizeLimit, fixed+2*segmentSizeFor(o.SizeLimit), valueLogShares),
		wake:   make(chan struct{}, 1),

		footprint: 1,
		limit:     o.SizeLimit,
	}
	if o.unlimited {
		l.lsm = steering{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}
		l.values = l.lsm
	}
	s := l.lsm
	l.steer.Store(&s)
	l.announceRefresh()
	return l
}

// tick converts unix nanoseconds to the access clock's ticks.
func (l *limiter) tick(unixNanos int64) lru.Tick { return lru.TickAt(unixNanos, l.epoch) }

// touch records an access of the key with hash h now.
func (l *limiter) touch(h uint64) { l.clock.Touch(h, lru.Tick(l.now.Load())) }

// warm loads the clock's slot for h ahead of a touch. The slot and the
// presence filter's block are each a cache miss on a large cache; loaded
// one right after the other, with nothing waiting on the first, the CPU
// fetches both at once, and the touch finds the slot in its cache.
func (l *limiter) warm(h uint64) { l.clock.Last(h) }

// loadLimiter reads the clock's epoch (creating it in a new store) and the
// access clock's snapshot.
func (c *store) loadLimiter() error {
	l := c.lim
	v, closer, err := c.db.Get(metaEpoch)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		l.epoch = c.now()
		c.unflushed.Store(true)
		if err := c.db.Set(metaEpoch, binary.LittleEndian.AppendUint64(nil, uint64(l.epoch)), pebble.Sync); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if len(v) != 8 {
			closer.Close()
			return fmt.Errorf("%w: clock epoch of %d bytes", ErrCorrupt, len(v))
		}
		l.epoch = int64(binary.LittleEndian.Uint64(v))
		closer.Close()
	}
	l.now.Store(uint32(l.tick(c.now())))
	l.clock = c.loadAccess()
	l.source = &evictSource{c: c}
	l.sampler = lru.NewSampler(l.source, l.clock, 0, 0, uint64(c.now()))
	return nil
}

// clockSlots is the access clock's size for what the store holds now.
func (c *store) clockSlots() int {
	return lru.SlotsFor(c.keys.counts.entries.load(), c.opts.SizeLimit)
}

// accessLoadInline is the largest clock snapshot Open loads before it
// returns (256Ki slots); a larger one loads in the background while calls
// are served, so that reopening a cache of millions of keys does not wait
// for 16 MiB to be read and faulted in. So does the snapshot of a store
// whose clock is sized for that many slots: its file is compressed
// (saveAccess) and may be small on disk. Open decides by the sizes it
// has, without reading the file's kind. Touches made meanwhile are kept
// (lru.AccessClock.ReadFrom merges).
const accessLoadInline = 1 << 20

// loadAccess returns the access clock, sized by what the store holds, with
// the recency the last Close saved, or starts loading it. A snapshot of
// another size (the store held another number of keys, or SizeLimit
// changed) is split or folded to fit. A damaged or missing one is done
// without: the records' write times stand in.
func (c *store) loadAccess() *lru.AccessClock {
	clock := lru.NewAccessClock(c.clockSlots())
	fs := c.opts.filesystem()
	path := filepath.Join(c.dir, storeDir, accessFile)
	fi, err := fs.Stat(path)
	switch {
	case err == nil && (fi.Size() > accessLoadInline || clock.SnapshotSize() >= accessCompressMin):
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			// Read into a table of its own and checked whole before it
			// is installed: the clock is in use. A Close stops the load
			// (ctxReader): it would otherwise wait for a snapshot of up
			// to 16 MiB, and a clock that is not loaded is not saved
			// either.
			st, err := c.readAccess(c.bgCtx, clock, fs, path)
			if err == nil && c.bgCtx.Err() == nil {
				covers := c.coversIfSaved(st)
				if err = clock.Install(st); err == nil {
					c.noteSaved(st)
					if covers {
						c.keys.covered.Store(true)
					}
				}
			}
			if err != nil && c.bgCtx.Err() == nil {
				c.log.Warn("diskcache: access clock snapshot not used", "err", err)
			}
			if c.bgCtx.Err() == nil {
				c.lim.loaded.Store(true)
			}
		}()
		return clock
	case err == nil:
		st, err := c.readAccess(context.Background(), clock, fs, path)
		if err != nil {
			c.log.Warn("diskcache: access clock snapshot not used", "err", err)
			break
		}
		if c.coversIfSaved(st) {
			c.keys.covered.Store(true)
		}
		clock = st.Clock() // no one else has it yet
		c.noteSaved(st)
	case errors.Is(err, os.ErrNotExist):
		c.loadLegacyAccess(clock)
	}
	c.lim.loaded.Store(true)
	return clock
}

// readAccess reads the snapshot at path into a table of clock's size
// (lru.AccessClock.Stage), until ctx is done; the side file's checksum
// has been checked when it returns.
func (c *store) readAccess(ctx context.Context, clock *lru.AccessClock, fs vfs.FS, path string) (*lru.Staged, error) {
	var st *lru.Staged
	err := readSideFileOf(fs, path, accessMagics, func(r io.Reader, _ int64, magic string) error {
		var body io.Reader = ctxReader{ctx, r}
		var limited *io.LimitedReader
		if magic != accessMagic {
			// A few bytes of stream can claim gigabytes of zeros: no
			// more is read than the largest snapshot a clock saves.
			body = s2.NewReader(body, s2.ReaderMaxBlockSize(accessBlock))
			if magic == accessMagicLanes {
				body = newLaneReader(body)
			}
			limited = &io.LimitedReader{R: body, N: accessMaxSnapshot + 1}
			body = limited
		}
		var err error
		if st, _, err = clock.Stage(body); err != nil || limited == nil {
			return err
		}
		// The stream ends with the snapshot; reading to its end lets
		// readSideFile check that the body was read whole.
		if more, err := io.Copy(io.Discard, limited); err != nil || more != 0 {
			return fmt.Errorf("%d bytes past the snapshot: %v", more, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// noteSaved records the Sum of the side file's snapshot st, when it was
// staged at the clock's very size: a Close that finds the clock's Sum
// unchanged need not save it again. The Sum was taken as st was read, so
// Open does not read the clock again for it; and touches merged in by a
// background Install make the clock differ from the file, which the next
// Close then saves.
func (c *store) noteSaved(st *lru.Staged) {
	if st.Exact() {
		c.lim.savedSum.Store(st.Sum())
	}
}

// loadLegacyAccess restores the snapshot that versions before accessFile
// kept in the store.
func (c *store) loadLegacyAccess(clock *lru.AccessClock) {
	v, closer, err := c.db.Get(metaAccess)
	if err != nil {
		return
	}
	defer closer.Close()
	if err := clock.Restore(v); err != nil {
		c.log.Warn("diskcache: access clock snapshot not used", "err", err)
	}
}

// saveAccess writes the access clock's snapshot to its side file, so that
// recency survives a restart, unless the clock is as it was last saved or
// loaded: an idle cache writes nothing. The snapshot is 4 bytes a slot,
// and the clock has SlotsPerKey slots a key up to its ceiling (16 MiB).
func (c *store) saveAccess() error {
	if !c.lim.loaded.Load() {
		return nil // the file still holds more than the clock
	}
	sum := c.lim.clock.Sum()
	if sum == c.lim.savedSum.Load() {
		return nil
	}
	path := filepath.Join(c.dir, storeDir, accessFile)
	magic, size := accessMagic, c.lim.clock.SnapshotSize()
	body := func(w io.Writer) error {
		_, err := c.lim.clock.WriteTo(w)
		return err
	}
	if size >= accessCompressMin {
		magic, size = accessMagicLanes, -1 // its size is known once written
		body = func(w io.Writer) error { return writeAccessLanes(w, c.lim.clock) }
	}
	if err := writeSideFile(c.opts.filesystem(), path, magic, size, body); err != nil {
		return err
	}
	c.lim.savedSum.Store(sum)
	return nil
}

// writeAccessLanes writes clock's snapshot to w by byte lane, compressed
// with S2 (accessMagicLanes).
func writeAccessLanes(w io.Writer, clock *lru.AccessClock) error {
	return writeAccessS2Of(w, func(zw io.Writer) error {
		lw := newLaneWriter(zw)
		_, err := clock.WriteTo(lw)
		if cerr := lw.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// writeAccessS2Of writes what body writes to w compressed with S2 in
// blocks of accessBlock, the framing readAccess reads.
func writeAccessS2Of(w io.Writer, body func(io.Writer) error) error {
	zw := s2.NewWriter(w, s2.WriterConcurrency(1), s2.WriterBlockSize(accessBlock))
	err := body(zw)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	return err
}

// evictTo deletes entries, expired ones first and then the least recently
// used, until the live bytes are at most target or the cache is empty.
// The excess is read once the evictor's lock is held: the monitor and
// writers past the hard limit evict at the same time, and each used to
// take the excess it saw before waiting for the other's round, so that
// the second evicted it again (TestConcurrentEvictionsTakeTheExcessOnce;
// likely what made TestRecencySurvivesRestart fail once in a full CI run:
// 2,187 entries evicted where about 1,500 were to go, 158 of them hot; a
// round's excess there is about 600 entries).
func (c *store) evictTo(target int64) error {
	l := c.lim
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.source.close()
	want := c.keys.counts.bytes.load() - target
	var freed int64
	// Expired entries go first: the sweeper's walk of the expiry index
	// finds them without sampling.
	for freed < want {
		r, err := c.Sweep(c.now(), 256)
		if err != nil {
			return err
		}
		freed += r.Bytes
		if !r.More {
			break
		}
	}
	now := lru.Tick(l.now.Load())
	for freed < want {
		cand, ok, err := l.sampler.Next(now)
		if err != nil || !ok {
			return err
		}
		if !cand.Expired {
			l.evictIdle.Store(int64(l.sampler.Idleness(cand, now)))
		}
		n, err := c.evictOne(cand)
		if err != nil {
			return err
		}
		freed += n
	}
	return nil
}

// evictOne deletes the candidate if it still holds the record the sampler
// saw, and returns the bytes freed. Unless the write marks tell that it
// does (evictmarks.go), it reads the record again to find out.
func (c *store) evictOne(cand lru.Candidate) (int64, error) {
	dk := cand.Key
	mu := c.stripe(cand.Hash)
	mu.Lock()
	defer mu.Unlock()
	old, ok := c.sampled(cand)
	if !ok {
		var err error
		if old, ok, err = c.lookup(dk, false); err != nil || !ok {
			return 0, err
		}
		if int64(len(dk)+old.size+old.ext) != cand.Size || (!cand.Expired && c.lim.tick(old.header.WriteTime) != cand.Written) {
			return 0, nil // rewritten since it was sampled
		}
	}
	d, err := c.deleteRecord(dk, old)
	if err != nil {
		return 0, fmt.Errorf("diskcache: evict %q: %w", truncKey(string(c.layout.userKey(dk))), err)
	}
	c.countEviction(cand.Hash, -d.bytes)
	return -d.bytes, nil
}

// countEviction counts an eviction of n bytes, and logs the first.
func (c *store) countEviction(h uint64, n int64) {
	c.lim.evictions.add(h, 1)
	c.lim.evictedBytes.add(h, n)
	if c.lim.logged.CompareAndSwap(false, true) {
		c.log.Info("diskcache: size limit reached, evicting least recently used entries",
			"size_limit", c.opts.SizeLimit, "live_budget", c.lim.steering().budget)
	}
}

// backpressure runs before a write of n bytes: past the hard live limit the
// writer evicts first, and while the disk is near the limit it waits for
// compaction to give space back. Writers that outrun compaction so slow
// down to its pace instead of pushing the directory past its limit. The
// wait ends with ctx, and after maxWriteWait (logged): a compaction that
// is stuck must not stop writes for good.
func (c *store) backpressure(ctx context.Context, n int64) error {
	l := c.lim
	st := l.steering()
	if l.pressure.Load() {
		if live := c.keys.counts.bytes.load() + n; live > st.hard {
			if err := c.evictTo(st.low - n); err != nil {
				return err
			}
		}
	}
	if l.disk.Load() <= st.waitAt {
		return nil
	}
	start := time.Now()
	deadline := start.Add(maxWriteWait)
	for disk := l.disk.Load(); disk > l.steering().waitAt; {
		c.compactNextSlice()
		c.maybeCollect()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.bgCtx.Done():
			return ErrClosed
		case <-l.refreshed():
		}
		// A write that has waited evictAfter, and then a refresh that
		// finds the directory no smaller, say that compaction has nothing
		// left to give back: what is over is live data the budget let in
		// (the budget follows a workload's mix of writes, and a few keys
		// rewritten with large values in the value log passed for a mix
		// that needs less room beside its live data than the small values
		// being filled do). Waiting on, each write waited maxWriteWait.
		// Evicting what is over lets compaction give it back. One writer
		// evicts at a time, a sixteenth of the live bytes at the most in a
		// round.
		now := l.disk.Load()
		if over := now - l.steering().waitAt; over > 0 && now >= disk && time.Since(start) >= evictAfter && l.overEvicting.CompareAndSwap(false, true) {
			live := c.keys.counts.bytes.load()
			err := c.evictTo(live - min(over, live/16))
			l.overEvicting.Store(false)
			if err != nil {
				return err
			}
		}
		disk = now
		if time.Now().After(deadline) {
			if l.waitLogged.CompareAndSwap(false, true) {
				// The writes go on past waitAt, which is below the limit:
				// the directory may then pass the limit itself.
				c.log.Warn("diskcache: compaction does not keep up with writes; writing on without waiting for it",
					"size_limit", c.opts.SizeLimit, "disk_bytes", l.disk.Load(), "wait_at", l.steering().waitAt)
			}
			return nil
		}
	}
	return nil
}

// entryBound is the most bytes an entry of key and a value of n bytes takes
// in the store (its data key and an uncompressed record): what a write
// that has not encoded its record yet tells backpressure.
func entryBound(key string, n int) int64 {
	return int64(maxDataHeader + len(key) + codec.MaxHeaderSize + n)
}

// evictAfter is how long a write waits for compaction before it evicts
// what is over (backpressure). A slice compaction takes well under it; the
// fill of small values at 64 MiB (BenchmarkHeldAtLimit) held 6% fewer
// entries when a writer evicted at the first refresh without progress.
const evictAfter = 500 * time.Millisecond

// maxWriteWait bounds one write's wait for compaction. A slice compaction
// takes well under a second at any limit.
const maxWriteWait = 10 * time.Second

// refreshed returns a channel that is closed at the next refresh of the
// disk usage.
func (l *limiter) refreshed() <-chan struct{} { return *l.refresh.Load() }

// poke makes the monitor look now rather than at its next tick.
func (l *limiter) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// announceRefresh wakes the writers waiting in backpressure.
func (l *limiter) announceRefresh() {
	next := make(chan struct{})
	if old := l.refresh.Swap(&next); old != nil {
		close(*old)
	}
}

// evictSource finds eviction candidates in the store. Opening an iterator
// costs more than a seek, so one serves many samples; it is reopened now and
// then, because an open iterator pins the files it reads, and the point of
// evicting is that those files go away.
type evictSource struct {
	c    *store
	it   *pebble.Iterator
	uses int
	seen uint64 // the write marks' sequence before it was made (evictmarks.go)
}

// seeksPerIterator is how many seeks an iterator serves: some 2,000
// candidates in a store of format 2 (lru.CandidatesPerSeek and more a
// seek), about what 256 seeks of a few candidates each read before.
const seeksPerIterator = 64

// At implements lru.Source: n entries from pos on in the order of their
// hash64.
func (s *evictSource) At(dst []lru.Candidate, pos uint64, n int) ([]lru.Candidate, error) {
	c := s.c
	if s.it == nil || s.uses >= seeksPerIterator {
		if err := s.close(); err != nil {
			return dst, err
		}
		lo, hi := dataSpan()
		seen := c.marksForEviction().seq.Load()
		it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return dst, err
		}
		s.it, s.uses, s.seen = it, 0, seen
	}
	s.uses++
	if c.layout.bucketed() {
		return s.atBucketed(dst, pos, n)
	}
	it := s.it
	from := c.layout.seek(pos)
	valid := it.SeekGE(from)
	now := c.now()
	for wrapped := false; len(dst) < n; valid = it.Next() {
		if !valid {
			if wrapped {
				break
			}
			wrapped = true
			if valid = it.First(); !valid {
				break
			}
		}
		k := it.Key()
		if wrapped && bytes.Compare(k, from) >= 0 {
			break // fewer than n entries in all: each once
		}
		if len(k) < c.layout.header {
			return dst, fmt.Errorf("%w: data key of %d bytes in %s", ErrCorrupt, len(k), c.dir)
		}
		cand, err := s.candidate(k, c.layout.hash(k), now)
		if err != nil {
			return dst, err
		}
		dst = append(dst, cand)
	}
	return dst, it.Error()
}

// atBucketed is At in a store of format 2, where the keys of a bucket are
// in their own order, not by hash. It reads whole buckets, pos's and the
// ones after it, until it has n candidates and lru.CandidatesPerSeek: the
// seek is the cost, the steps after it cheap, and the keys of a bucket
// (about one in 65,536 of the entries) are as random as any, so every key
// is as likely to be read as any other and the sampler counts them all
// toward its next picks (lru.Sampler.Next; lru's simulation models this
// read). A cache of 128-byte values full at a 128 MiB limit (some 750,000
// entries, 11 a bucket) wrote a Set in 51 us on average past the limit
// when a seek gave pos's bucket from pos on (6 candidates, 1.7 seeks an
// eviction, each seek stepping over the tombstones of earlier evictions),
// in 36 us with the bucket whole, and in 20 us with 32 candidates a seek.
func (s *evictSource) atBucketed(dst []lru.Candidate, pos uint64, n int) ([]lru.Candidate, error) {
	c, it := s.c, s.it
	now := c.now()
	want := len(dst) + max(n, lru.CandidatesPerSeek)
	start := pos >> 48
	valid := it.SeekGE(c.layout.seek(pos))
	// After the end, from the start up to pos's bucket: wrapped, so that a
	// store of fewer than want entries gives each once.
	wrapped := false
	for len(dst) < want {
		if !valid {
			if wrapped {
				break
			}
			wrapped = true
			if valid = it.First(); !valid {
				break
			}
		}
		k := it.Key()
		if len(k) < c.layout.header {
			return dst, fmt.Errorf("%w: data key of %d bytes in %s", ErrCorrupt, len(k), c.dir)
		}
		bucket := binary.BigEndian.Uint16(k[1:3])
		if wrapped && uint64(bucket) >= start {
			break
		}
		for ; valid; valid = it.Next() {
			k := it.Key()
			if len(k) < c.layout.header {
				return dst, fmt.Errorf("%w: data key of %d bytes in %s", ErrCorrupt, len(k), c.dir)
			}
			if binary.BigEndian.Uint16(k[1:3]) != bucket {
				break
			}
			cand, err := s.candidate(k, c.layout.hash(k), now)
			if err != nil {
				return dst, err
			}
			dst = append(dst, cand)
		}
	}
	return dst, it.Error()
}

// candidate describes the data key k of hash h, at the iterator, for the
// sampler.
func (s *evictSource) candidate(k []byte, h uint64, now int64) (lru.Candidate, error) {
	v, err := s.it.ValueAndErr()
	if err != nil {
		return lru.Candidate{}, err
	}
	ext := codec.ExternalLen(v)
	cand := lru.Candidate{
		Hash: h,
		Key:  append([]byte(nil), k...),
		Size: int64(len(k) + len(v) + ext),
	}
	if hdr, err := codec.DecodeHeader(v); err != nil {
		cand.Expired = true // a damaged record is the first thing to evict
	} else {
		cand.Written = s.c.lim.tick(hdr.WriteTime)
		cand.Expired = hdr.Expired(now)
		tagSampled(&cand, s.seen, len(v), ext, hdr.Expiry)
	}
	return cand, nil
}

func (s *evictSource) close() error {
	if s.it == nil {
		return nil
	}
	err := s.it.Close()
	s.it = nil
	return err
}

// ctxReader reads from r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
