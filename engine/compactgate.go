package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// compactionGate is the store's compaction scheduler for Pebble: Pebble's
// own policy (as many compactions as the DB allows without permission, one
// by default), with no compaction started while pebble.Open runs, nor after
// it until the session needs one.
//
// Pebble's Open flushes the log it replays, which starts an L0 compaction,
// and then waits for every running compaction before it lists obsolete
// files. A reopen after a crash, or after a Close whose flush left tables in
// L0, paid for the whole compaction: 1.21 s against 0.16 s with compactions
// held back, for raw Pebble holding 2,000,000 keys (the same options), and
// every process taking the store over waits for that Open. Pebble's own
// scheduler, which does the same without the gate, cannot be wrapped: it is
// made inside Open.
//
// After Open (opened) the gate stays shut while what the last session left
// is small: until the session flushes a memtable (flushed), asks for a
// compaction (the size limit's, which opens the gate first), or has run for
// gateIdle. A short session (a CLI, a cron job: Open, a few calls, Close)
// then neither waits for the compaction at Close nor pays for it, and a
// reopened store's first reads do not share the machine with it. A store
// whose L0 holds as many sublevels as start an L0 compaction
// (L0CompactionThreshold) has it run at once (l0Due): held back, it cost
// the first reads after a reopen up to a fifth of their speed (W9 at
// 250,000 keys), and short sessions would pile tables up in L0. Unless
// those tables are small, as short sessions leave them: they are compacted
// at twice that depth.
//
// While Open runs the gate opens by itself after gateTimeout: a migration
// of an old format inside Open could wait for a compaction, and must not
// wait for ever.
type compactionGate struct {
	open    atomic.Bool
	armed   atomic.Bool // Open returned: a flush opens the gate
	flushes atomic.Bool // a memtable was flushed since Open returned

	mu       sync.Mutex
	db       pebble.DBForCompaction
	running  int
	poke     chan struct{}
	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
	timer    *time.Timer
}

const (
	// gateTimeout bounds how long compactions wait for Open.
	gateTimeout = 2 * time.Second
	// gateIdle bounds how long they wait after Open for a reason to run.
	gateIdle = 30 * time.Second
)

// l0Due reports whether the L0 a reopened store holds, of sublevels
// sublevels and size bytes, is to be compacted at once rather than when the
// session needs it. An L0 as deep as starts an L0 compaction is, unless its
// tables are small (smallL0): the one-key tables short sessions leave (the
// log Pebble's Open replays and flushes) cost a read a filter probe each,
// and compacting every second of them made Close wait for the compaction
// every second session (W8's Open + Set + Close loop: 0.46 ms of a 1.0 ms
// Close). Those are compacted at twice the depth.
func l0Due(sublevels int, size int64, threshold int) bool {
	return sublevels >= 2*threshold || sublevels >= threshold && size >= smallL0
}

// smallL0 is the size under which L0's tables count as small (l0Due).
const smallL0 = 1 << 20

// grantEvery is how often the gate's granter looks for waiting compactions
// without being asked, as Pebble's scheduler does.
const grantEvery = 100 * time.Millisecond

var _ pebble.CompactionScheduler = (*compactionGate)(nil)

func newCompactionGate() *compactionGate {
	g := &compactionGate{
		poke:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	g.timer = time.AfterFunc(gateTimeout, g.release)
	return g
}

// opened is told once pebble.Open returned, and whether an L0 compaction
// is due: the gate opens now if it is, else when the session needs one.
func (g *compactionGate) opened(l0Due bool) {
	if l0Due || !g.timer.Stop() {
		g.release() // or it did already, after gateTimeout
		return
	}
	g.armed.Store(true)
	g.timer.Reset(gateIdle)
}

// flushed is told of every flush: after Open, one opens the gate, since
// each flush adds to L0.
func (g *compactionGate) flushed() {
	if !g.armed.Load() {
		return
	}
	g.flushes.Store(true)
	if !g.open.Load() {
		g.release()
	}
}

// oldL0 reports whether L0 holds only what the last session left: no
// flush since Open returned.
func (g *compactionGate) oldL0() bool { return g != nil && !g.flushes.Load() }

// release lets compactions start.
func (g *compactionGate) release() {
	g.timer.Stop()
	g.open.Store(true)
	g.UpdateGetAllowedWithoutPermission()
}

// Register is called by Pebble's Open; it starts the granter.
func (g *compactionGate) Register(_ int, db pebble.DBForCompaction) {
	g.mu.Lock()
	g.db = db
	g.mu.Unlock()
	go g.granter()
}

// Unregister stops the granter and waits for it: no call into the DB
// follows. Pebble calls it from Close; the store calls it too when Open
// failed after registering. It may be called more than once.
func (g *compactionGate) Unregister() {
	g.timer.Stop()
	g.stopOnce.Do(func() { close(g.stop) })
	g.mu.Lock()
	registered := g.db != nil
	g.mu.Unlock()
	if registered {
		<-g.stopped
	}
}

// TrySchedule is Pebble asking to start a compaction now.
func (g *compactionGate) TrySchedule() (bool, pebble.CompactionGrantHandle) {
	if !g.open.Load() {
		return false, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.db == nil || g.db.GetAllowedWithoutPermission() <= g.running {
		return false, nil
	}
	g.running++
	return true, g
}

// UpdateGetAllowedWithoutPermission tells the gate that more compactions
// may be allowed: the granter looks at once.
func (g *compactionGate) UpdateGetAllowedWithoutPermission() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// The grant handle: the gate itself, which only counts running compactions.
func (g *compactionGate) Started()                                          {}
func (g *compactionGate) MeasureCPU(pebble.CompactionGoroutineKind)         {}
func (g *compactionGate) CumulativeStats(pebble.CompactionGrantHandleStats) {}

// Done is a compaction finishing: the granter starts the next one waiting.
func (g *compactionGate) Done() {
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	g.UpdateGetAllowedWithoutPermission()
}

// granter starts the compactions the DB has waiting while the DB allows
// more than run, when poked and every grantEvery.
func (g *compactionGate) granter() {
	defer close(g.stopped)
	t := time.NewTicker(grantEvery)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.poke:
		case <-t.C:
		}
		g.grant()
	}
}

func (g *compactionGate) grant() {
	if !g.open.Load() {
		return
	}
	for {
		g.mu.Lock()
		db := g.db
		room := db.GetAllowedWithoutPermission() > g.running
		if room {
			g.running++ // held for the grant below; given back if refused
		}
		g.mu.Unlock()
		if !room {
			return
		}
		if waiting, _ := db.GetWaitingCompaction(); !waiting || !db.Schedule(g) {
			g.mu.Lock()
			g.running--
			g.mu.Unlock()
			return
		}
	}
}
