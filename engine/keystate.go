package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/lru"
)

// keyState is what the cache keeps in memory about its keys: the exact
// counts and the presence filter.
//
// The counts live in memory and reach the store only on Close, with a clean
// mark; the filter goes to its side file (presenceFile). The first write of
// a session removes the mark (markDirty), so after a crash the store says
// it is not clean and Open rebuilds counts and filter from a scan in the
// background. (Merging a count delta into every write batch would keep them
// exact without a scan, at the price of a second memtable insert on every
// Set.) Until that scan is done, Len waits for it and writes ask Pebble
// whether their key exists. A session that only reads leaves the mark, the
// counts and the filter as they are, and its Close writes none of them.
type keyState struct {
	cur  atomic.Pointer[presence] // nil until a scan or the store provides one
	next atomic.Pointer[presence] // being filled by a scan; writers add to it too

	counts liveCounts
	ready  chan struct{} // closed once counts are exact
	exact  atomic.Bool   // ready has been closed

	// dirty: the store holds no clean mark (this session wrote, or the
	// last one did not close cleanly). saved: the store's clean mark,
	// counts and filter file are what memory holds, so Close has nothing
	// to save.
	dirty   atomic.Bool
	saved   atomic.Bool
	dirtyMu sync.Mutex

	building atomic.Bool // a rebuild goroutine runs
	buildMu  sync.Mutex  // one scan at a time; Clear waits for it

	// covered: every key in the store has a non-zero slot in the access
	// clock, which a write touches before it commits (stageOver) and
	// nothing clears (lru.AccessClock.Seen). Then a key whose slot is
	// zero is certainly absent, and the clock, already paid for, is a
	// second filter behind the presence filter (mayExist). True from the
	// start in a new store, after Clear and after a scan, which notes
	// every key it reads in the clock; after a clean reopen, once the
	// clock holds the snapshot the last Close saved covering the store
	// (metaCovered).
	covered atomic.Bool
	// coverSum is the Sum of that snapshot, if the clean state vouches
	// for one (coverKnown); set by loadKeyState before the clock loads.
	coverSum   uint64
	coverKnown bool
}

// The state key holds the clean mark (1: closed cleanly; 0: open, or
// crashed), the counts, and the id of the presence file saved with them:
// 25 bytes. Stores written before the filter had a side file have 17 (no
// id) and their filter under metaPresence, which the next save deletes.
var (
	metaState    = []byte("mstate")
	metaPresence = []byte("mpresence")
	// metaCovered is the presence file's id and the access clock's Sum
	// when a Close saved both with the clock covering the store: the
	// next Open that finds the same id in the clean state and a clock
	// snapshot of that Sum is covered from the start. Any write since
	// removed the clean mark, so the id no longer matches; a snapshot
	// saved since has another Sum. Versions that do not know it ignore
	// it, and their Close writes another id.
	metaCovered = []byte("mcovered")
)

const (
	stateLen       = 1 + 16 + 8
	legacyStateLen = 1 + 16

	presenceFile  = "presence.filter"
	presenceMagic = "dcpres01"
)

// loadKeyState reads the state Close left. If the last close was clean the
// counts (and, if its file matches, the filter) are ready now; otherwise a
// scan must rebuild them.
func (c *store) loadKeyState() (clean bool, err error) {
	c.keys.ready = make(chan struct{})
	v, closer, err := c.db.Get(metaState)
	if errors.Is(err, pebble.ErrNotFound) {
		// A new store holds nothing: it is exact as it is. An old store
		// always has a state key, since the first write writes one.
		if empty, err := c.dataEmpty(); err != nil || !empty {
			return false, err
		}
		c.keys.cur.Store(newPresence(presenceMinKeys))
		c.keys.covered.Store(true)
		c.markExact()
		return true, nil
	}
	if err != nil {
		return false, err
	}
	st := append([]byte(nil), v...)
	closer.Close()
	if len(st) != stateLen && len(st) != legacyStateLen {
		return false, fmt.Errorf("%w: state key of %d bytes", ErrCorrupt, len(st))
	}
	if st[0] != 1 {
		c.keys.dirty.Store(true)
		return false, nil // not closed cleanly
	}
	n, err := decodeCounts(st[1:17])
	if err != nil {
		return false, err
	}
	if len(st) == stateLen {
		if p, err := readPresenceFile(c.opts.filesystem(), c.dir, st[17:]); err == nil {
			c.keys.cur.Store(p)
			c.keys.saved.Store(true)
			c.keys.coverSum, c.keys.coverKnown = c.readCovered(st[17:])
		} else if !errors.Is(err, errNoFilter) {
			c.log.Warn("diskcache: the saved key filter is not used: rebuilding it", "err", err)
		}
	} else if v, closer, err := c.db.Get(metaPresence); err == nil {
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

// readCovered reads metaCovered and returns the clock Sum it vouches for,
// if it was saved with the presence file of id id. It is a hint: a store
// that cannot read it is covered after its next scan.
func (c *store) readCovered(id []byte) (uint64, bool) {
	v, closer, err := c.db.Get(metaCovered)
	if err != nil {
		return 0, false
	}
	defer closer.Close()
	if len(v) != 16 || !bytes.Equal(v[:8], id) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(v[8:]), true
}

// coversIfSaved reports whether the staged clock snapshot st is the one
// the last Close saved covering the store (metaCovered): installed, it
// makes the clock cover the store again.
func (c *store) coversIfSaved(st *lru.Staged) bool {
	// Split or folded to another size, every slot that was set still is.
	return c.keys.coverKnown && st.Sum() == c.keys.coverSum
}

// errNoFilter: the clean state was saved without a filter (the scan
// building it had not finished).
var errNoFilter = errors.New("no filter was saved")

// readPresenceFile reads the filter of the cache in dir saved with the
// state whose id is id.
func readPresenceFile(fs vfs.FS, dir string, id []byte) (*presence, error) {
	if binary.LittleEndian.Uint64(id) == 0 {
		return nil, errNoFilter
	}
	var p *presence
	path := filepath.Join(dir, storeDir, presenceFile)
	err := readSideFile(fs, path, presenceMagic, func(r io.Reader, n int64) error {
		var got [8]byte
		if _, err := io.ReadFull(r, got[:]); err != nil {
			return err
		}
		if !bytes.Equal(got[:], id) {
			return fmt.Errorf("saved with state %x, the store's is %x", got, id)
		}
		var err error
		p, err = readPresence(r, n-int64(len(got)))
		return err
	})
	return p, err
}

// markDirty removes the clean mark before the first write of a session
// commits: until Close saves them again, the persisted counts and filter
// are stale. Pebble logs batches in commit order, so the mark is in the log
// ahead of every write it covers, whatever the durability mode.
func (c *store) markDirty() error {
	if c.keys.dirty.Load() {
		return nil
	}
	c.keys.dirtyMu.Lock()
	defer c.keys.dirtyMu.Unlock()
	if c.keys.dirty.Load() {
		return nil
	}
	st := append([]byte{0}, counts{}.encode()...)
	if err := c.db.Set(metaState, append(st, make([]byte, 8)...), c.write); err != nil {
		return err
	}
	c.unflushed.Store(true)
	c.keys.saved.Store(false)
	c.keys.dirty.Store(true)
	return nil
}

// saveKeyState saves the counts and the filter for the next Open, unless
// they are not exact or the store holds them already: the filter to its
// side file under a new id, then the counts, the id and the clean mark in
// one batch. Close calls it when no writer can run; clockSaved: the
// access clock's side file holds the clock as it is (saveState).
func (c *store) saveKeyState(clockSaved bool) error {
	if !c.keys.exact.Load() || c.keys.saved.Load() {
		return nil // not exact: the next Open scans again
	}
	id := make([]byte, 8)
	if p := c.keys.cur.Load(); p != nil {
		binary.LittleEndian.PutUint64(id, rand.Uint64()|1)
		path := filepath.Join(c.dir, storeDir, presenceFile)
		err := writeSideFile(c.opts.filesystem(), path, presenceMagic, int64(len(id))+p.fileSize(), func(w io.Writer) error {
			if _, err := w.Write(id); err != nil {
				return err
			}
			return p.writeTo(w)
		})
		if err != nil {
			// The counts are still worth saving; the next Open rebuilds
			// the filter from a scan.
			c.log.Warn("diskcache: saving the key filter failed", "err", err)
			clear(id)
		}
	}
	b := c.db.NewBatch()
	defer b.Close()
	n := c.keys.counts.load()
	st := append([]byte{1}, n.encode()...)
	b.Set(metaState, append(st, id...), nil)
	if f := c.lim.footprintNow(); f > 0 {
		b.Set(metaFootprint, encodeFootprint(f), nil)
	}
	// The next Open can trust the clock's side file to cover the store if
	// the clock covers it and the file holds it as it is (clockSaved).
	if clockSaved && c.keys.covered.Load() && binary.LittleEndian.Uint64(id) != 0 {
		b.Set(metaCovered, binary.LittleEndian.AppendUint64(append([]byte(nil), id...), c.lim.savedSum.Load()), nil)
	} else {
		b.Delete(metaCovered, nil)
	}
	b.Delete(metaPresence, nil)
	b.Delete(metaAccess, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	c.unflushed.Store(true)
	c.keys.saved.Store(true)
	return nil
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
//
// A false positive of the presence filter costs a write a Pebble Get of a
// missing key, and in a store being filled that Get reads through a deep
// L0 and the first blocks of fresh tables: 65-90 us, 0.45 s of a fill of
// 500,000 keys. When the clock covers the store, a key must also have been
// seen by the clock: about half the filter's false positives pass it (a
// growing clock copies each slot to the slots it splits into, so it keeps
// the share of set slots it had), and that fill's lookups took 0.26 s.
func (c *store) mayExist(h uint64) bool {
	p := c.keys.cur.Load()
	if p == nil {
		return true
	}
	return p.mayContain(h) && (!c.keys.covered.Load() || c.lim.clock.Seen(h))
}

// warmKey loads the access clock's slot and the presence filter's block
// of the key with hash h, ahead of the write that will touch both
// (limiter.warm): two cache misses, fetched at once and early.
func (c *store) warmKey(h uint64) {
	c.lim.warm(h)
	if p := c.keys.cur.Load(); p != nil {
		p.warm(h)
	}
}

// noteKey records that the key with hash h is now in the store. The caller
// holds the key's stripe. A key the filter already shows is not added
// again, so overwrites do not wear the filter out.
//
// It reads next before cur. A scan swaps its filter into cur and then
// clears next, so a writer that finds next cleared finds the new filter in
// cur. Read the other way round, a writer could add its key to the old
// filter, then find next cleared, and the key, committed after the scan's
// snapshot, was in neither: a Get of it answered "not found" from the
// filter (TestNoteKeyRacesSwap).
func (c *store) noteKey(h uint64) {
	next := c.keys.next.Load()
	if testHookNoteKey != nil {
		testHookNoteKey()
	}
	cur := c.keys.cur.Load()
	if cur != nil && !cur.mayContain(h) {
		cur.add(h)
		// Summing the shards of added costs a little: look at one add
		// in 256, which at a million keys of capacity is soon enough.
		if h&0xff == 0 && cur.full() {
			c.rebuildKeys()
		}
	}
	if next != nil && next != cur {
		next.add(h)
	}
}

// testHookNoteKey, when set by a test, runs in noteKey between its reads
// of next and cur.
var testHookNoteKey func()

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
	p := newPresence(presenceCapacity(c.keys.counts.entries.load()))
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
			if len(k) < c.layout.header {
				continue
			}
			h := c.layout.hash(k)
			p.add(h)
			if !c.lim.clock.Seen(h) {
				c.noteWritten(h, it.LazyValue())
			}
			if recount {
				scanned.entries++
				lv := it.LazyValue()
				scanned.bytes += int64(len(k) + lv.Len())
				if codec.MayBeRefRecord(lv.Len()) {
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
	c.keys.covered.Store(true)
	c.keys.saved.Store(false)
	if recount {
		c.keys.counts.add(0, counts{entries: scanned.entries - base.entries, bytes: scanned.bytes - base.bytes})
		c.markExact()
	}
	return nil
}

// noteWritten marks the clock's slot of a key the scan found, whose hash
// is h and whose record is lv, as seen at the record's write time: the
// recency the clock's readers fall back to for a slot of zero (or a tick
// of 1 if the record cannot be read here; its Get reports the damage).
func (c *store) noteWritten(h uint64, lv pebble.LazyValue) {
	var t lru.Tick
	if v, _, err := lv.Value(nil); err == nil {
		if hdr, err := codec.DecodeHeader(v); err == nil && hdr.WriteTime > c.lim.epoch {
			t = c.lim.tick(hdr.WriteTime)
		}
	}
	c.lim.clock.Note(h, t)
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
