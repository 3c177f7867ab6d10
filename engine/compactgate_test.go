package engine

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// fakeCompactDB is a DB with compactions waiting, for the gate alone.
type fakeCompactDB struct {
	mu        sync.Mutex
	allowed   int
	waiting   int
	scheduled int
}

func (d *fakeCompactDB) GetAllowedWithoutPermission() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.allowed
}

func (d *fakeCompactDB) GetWaitingCompaction() (bool, pebble.WaitingCompaction) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waiting > 0, pebble.WaitingCompaction{}
}

func (d *fakeCompactDB) Schedule(pebble.CompactionGrantHandle) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiting == 0 {
		return false
	}
	d.waiting--
	d.scheduled++
	return true
}

func (d *fakeCompactDB) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.scheduled
}

// TestCompactionGate: no compaction starts before release, neither asked
// for (TrySchedule) nor granted; after it, waiting compactions start up to
// what the DB allows, and the next when one is done.
func TestCompactionGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := &fakeCompactDB{allowed: 1, waiting: 3}
		g := newCompactionGate()
		g.Register(2, db)
		if ok, _ := g.TrySchedule(); ok {
			t.Fatal("a compaction was allowed while Open runs")
		}
		g.UpdateGetAllowedWithoutPermission()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := db.count(); n != 0 {
			t.Fatalf("%d compactions granted while Open runs", n)
		}
		g.release()
		synctest.Wait()
		if n := db.count(); n != 1 {
			t.Fatalf("%d compactions started after release, want the 1 allowed", n)
		}
		if ok, _ := g.TrySchedule(); ok {
			t.Fatal("a second compaction was allowed beside the running one")
		}
		g.Done()
		synctest.Wait()
		if n := db.count(); n != 2 {
			t.Fatalf("%d compactions started after one was done, want 2", n)
		}
		g.Done()
		synctest.Wait()
		g.Done()
		if ok, _ := g.TrySchedule(); !ok {
			t.Fatal("TrySchedule refused with no compaction running")
		}
		g.Unregister()
		g.Unregister() // again: Close after a failed Open's own call
	})
}

// TestCompactionGateOpensByItself: a gate Open never released (a
// migration inside Open waiting for a compaction) opens after gateTimeout.
func TestCompactionGateOpensByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := &fakeCompactDB{allowed: 1, waiting: 1}
		g := newCompactionGate()
		g.Register(2, db)
		time.Sleep(gateTimeout - time.Millisecond)
		synctest.Wait()
		if db.count() != 0 {
			t.Fatal("the gate opened before its timeout")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if db.count() != 1 {
			t.Fatal("the gate did not open after its timeout")
		}
		g.Unregister()
	})
}

// TestCompactionGateAfterOpen: after Open the gate stays shut until a
// flush, or gateIdle; Open opens it at once when an L0 compaction is due,
// or when it opened by itself during Open.
func TestCompactionGateAfterOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		l0Due bool
		slow  bool // Open took past gateTimeout
		flush bool
		open  bool // right after opened (and the flush)
	}{
		{name: "little in L0"},
		{name: "a flush", flush: true, open: true},
		{name: "L0 due", l0Due: true, open: true},
		{name: "slow Open", slow: true, open: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				db := &fakeCompactDB{allowed: 1, waiting: 1}
				g := newCompactionGate()
				g.Register(2, db)
				defer g.Unregister()
				g.flushed() // Open's own flush of the log it replays
				if tc.slow {
					time.Sleep(gateTimeout)
				}
				g.opened(tc.l0Due)
				if tc.flush {
					g.flushed()
				}
				synctest.Wait()
				if got := db.count() == 1; got != tc.open {
					t.Fatalf("a compaction started right after Open: %v, want %v", got, tc.open)
				}
				time.Sleep(gateIdle)
				synctest.Wait()
				if db.count() != 1 {
					t.Fatal("no compaction gateIdle after Open")
				}
			})
		})
	}
}

// TestShortSessionsKeepL0Small: sessions too short to flush or to reach
// gateIdle leave compactions to a later one, but not L0's: L0 never holds
// more sublevels at an Open than twice those that start an L0 compaction
// (their tables are small: l0Due), as a session that finds that many lets
// the compaction run. Twelve sessions would leave twelve without it.
func TestShortSessionsKeepL0Small(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		c := openDir(t, dir, &Options{SizeLimit: 64 << 20})
		limit := 2 * pebbleOptions(&c.local().opts, c.local().opts.durability()).L0CompactionThreshold
		if n := int(c.local().db.Metrics().Levels[0].Sublevels); n > limit {
			t.Fatalf("session %d: L0 holds %d sublevels at Open, more than %d", i, n, limit)
		}
		if err := c.Set(ctx, fmt.Sprint("k", i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestL0Due: L0 is compacted at Open when it is as deep as starts an L0
// compaction and its tables are not small, or twice that deep.
func TestL0Due(t *testing.T) {
	for _, tc := range []struct {
		sublevels int
		size      int64
		due       bool
	}{
		{0, 0, false},
		{1, 64 << 20, false},
		{2, 64 << 20, true},
		{2, smallL0, true},
		{2, smallL0 - 1, false},
		{3, 10 << 10, false},
		{4, 10 << 10, true},
		{9, 0, true},
	} {
		if got := l0Due(tc.sublevels, tc.size, 2); got != tc.due {
			t.Errorf("l0Due(%d sublevels, %d bytes) = %v, want %v", tc.sublevels, tc.size, got, tc.due)
		}
	}
}

// TestReopenCompacts: a reopened store compacts, automatically and when
// asked: the gate that held compactions back during Open let them go.
func TestReopenCompacts(t *testing.T) {
	dir := t.TempDir()
	c := openDir(t, dir, &Options{SizeLimit: 64 << 20})
	for i := range 20_000 {
		if err := c.Set(ctx, fmt.Sprint("k", i), make([]byte, 100), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openDir(t, dir, &Options{SizeLimit: 64 << 20})
	defer c.Close()
	s := c.local()
	before := s.db.Metrics().Compact.Count
	// Three memtables' worth of writes, each flushed: L0 passes its
	// compaction threshold, and only a compaction brings it back.
	for round := range 3 {
		for i := range 5_000 {
			if err := c.Set(ctx, fmt.Sprint("k", round*5_000+i), make([]byte, 100), 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.db.Metrics().Compact.Count == before {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction within 30 s of three flushes after a reopen; L0 holds %d tables", s.db.Metrics().Levels[0].TablesCount)
		}
		time.Sleep(10 * time.Millisecond)
	}
	lo, hi := dataSpan()
	if err := s.compact(lo, hi); err != nil {
		t.Fatal(err)
	}
}
