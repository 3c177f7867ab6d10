package engine

// The live budget (limit.go) from what the directory really holds. Two
// measures move it away from the shares of the limit: the footprint of the
// tables (below) turns bytes on disk into bytes counted, and the room the
// directory shows beside its live data (the overhead, further below) lets
// a workload whose overheads stay low keep more of the limit live.

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/cockroachdb/pebble/v2"
)

// The footprint of the live entries: bytes of table per byte counted. The
// counts give an entry its data key and record (counters.go), and the
// limiter's shares of the limit (limit.go) were measured with values that
// neither compress nor share prefixes, where a byte counted is a byte of
// table. Pebble's tables hold less: keys of a bucket share prefixes and
// blocks are compressed, so 128-byte incompressible values under 11-byte
// keys take about 114 bytes of table an entry for 152 counted
// (BenchmarkStoreSize). Budgeted as counted, such a cache settled with its
// directory at 0.70-0.74x of the limit and held only the entries its
// shorter keys saved (BenchmarkHeldAtLimit). So the monitor measures the
// footprint, and the limiter divides the live budget by it: the budget is
// then in bytes on disk, the unit the shares were measured in.
//
// A table's properties give the bytes its keys and values hold; its size
// is what it takes. Both include deleted data and tombstones, which
// compress alike. The monitor reads the tables over a random 256th of the
// data keys: every L0 table (each spans the whole hash space) and the few
// of each level below that overlap the slice. L0 holds the newest writes,
// so values that stop compressing show in the next measure after a flush,
// and the estimate rises at once and falls slowly (footprintRise,
// footprintFall): a too-high footprint only evicts early. (Until the
// session's first flush, L0 counts for the slice's share of it: see
// measureFootprint.)
const (
	// footprintEvery is the monitor ticks between measures (1 s).
	footprintEvery = 100
	// footprintSlices is how finely a measure slices the data keys: a
	// slice of a 100 GiB cache overlaps a few dozen tables.
	footprintSlices = 256
	// footprintFirstSlices is how many slices the first measure after
	// Open reads: it sets the footprint, with no estimate to smooth it,
	// and a high one would evict entries a restart should keep.
	footprintFirstSlices = 8
	// footprintMinHeld is the fewest bytes held a measure needs: below it
	// (a near-empty store) the budget stays as counted.
	footprintMinHeld = 256 << 10
	// minFootprint bounds how far a measure moves the budget: values
	// that compress well still get at most twice the budget as counted,
	// so that a switch to values that do not compress, before the
	// measure catches up, cannot put more than twice the budget on disk.
	minFootprint = 0.5

	footprintRise = 0.5
	footprintFall = 0.1
)

// metaFootprint holds the footprint's estimate at the last clean Close
// (8 bytes, a float64's bits), which the next session starts from. A reopened
// store that measured afresh set its footprint from a sample of 8 slices,
// with nothing to smooth it; a sample 1-5% higher than the estimate the
// last session had settled on shrank the budget by as much, and the first
// round evicted entries the restart should have kept
// (TestRestartKeepsEntriesAtLimit lost 4.5% in one run of 26). Resumed,
// the estimate moves by the measures as it did before the Close.
var metaFootprint = []byte("mfootprint")

// encodeFootprint is the value of metaFootprint for the estimate r.
func encodeFootprint(r float64) []byte {
	return binary.LittleEndian.AppendUint64(nil, math.Float64bits(r))
}

// decodeFootprint returns the estimate v holds, or false when v is not one
// (a footprint is within [minFootprint, 1]).
func decodeFootprint(v []byte) (float64, bool) {
	if len(v) != 8 {
		return 0, false
	}
	r := math.Float64frombits(binary.LittleEndian.Uint64(v))
	return r, r >= minFootprint && r <= 1
}

// savedFootprint returns the estimate the last clean Close saved, if any.
// The monitor reads it in place of its first measure, not Open: a short
// session (Open, a few calls, Close) never reads it.
func (c *store) savedFootprint() (float64, bool) {
	if !c.openedClean {
		return 0, false
	}
	v, closer, err := c.db.Get(metaFootprint)
	if err != nil {
		return 0, false // none saved, or unreadable: measure afresh
	}
	defer closer.Close()
	return decodeFootprint(v)
}

// measureFootprint reads the tables over n random slices of the data keys
// and returns the bytes they take per byte they hold, or false when they
// hold too little to tell.
func (c *store) measureFootprint(n int) (float64, bool) {
	var size, held float64
	for range n {
		lo, hi := c.layout.slice(rand.IntN(footprintSlices), footprintSlices)
		levels, err := c.db.SSTables(pebble.WithProperties(), pebble.WithKeyRangeFilter(lo, hi))
		if err != nil {
			return 0, false
		}
		for l, level := range levels {
			// Every L0 table counts whole: L0 holds the newest writes. But
			// until the session flushes, L0 is what the last one left (its
			// last flush, the compaction of which the gate may hold back),
			// spanning the whole hash space: counted whole in every slice
			// it outweighed the levels below and set a reopened store's
			// footprint high enough to evict 3-4% of its entries. Then it
			// counts for the slice's share of it.
			share := 1.0
			if l == 0 && c.compactions.oldL0() {
				share = 1.0 / footprintSlices
			}
			for _, t := range level {
				p := t.Properties
				if p == nil {
					continue
				}
				// RawKeySize counts Pebble's 8-byte trailer on each key;
				// the counts do not.
				raw, trailers := p.RawKeySize+p.RawValueSize, 8*p.NumEntries
				if raw <= trailers {
					continue
				}
				size += share * float64(t.Size)
				held += share * float64(raw-trailers)
			}
		}
	}
	if held < footprintMinHeld {
		return 0, false
	}
	return size / held, true
}

// measured takes a measure r of the footprint into the estimate: the
// first as it is, then rising fast and falling slowly, within
// [minFootprint, 1]. Only the monitor calls it.
func (l *limiter) measured(r float64) {
	r = min(max(r, minFootprint), 1)
	switch {
	case !l.footprintSet:
		l.footprintSet = true
		l.footprint = r
	case r > l.footprint:
		l.footprint += footprintRise * (r - l.footprint)
	default:
		l.footprint += footprintFall * (r - l.footprint)
	}
	l.footprintBits.Store(math.Float64bits(l.footprint))
}

// footprintNow returns the estimate of the footprint, 0 before the first
// measure: for tests and benchmarks, from any goroutine.
func (l *limiter) footprintNow() float64 { return math.Float64frombits(l.footprintBits.Load()) }

// refreshFootprint measures the footprint, every footprintEvery ticks of
// the monitor from its first, which starts from the saved estimate if
// there is one.
func (c *store) refreshFootprint(tick int) {
	if tick%footprintEvery != 1 {
		return
	}
	if !c.lim.footprintSet {
		if r, ok := c.savedFootprint(); ok {
			c.lim.measured(r)
		}
	}
	n := 1
	if !c.lim.footprintSet {
		n = footprintFirstSlices
	}
	if r, ok := c.measureFootprint(n); ok {
		c.lim.measured(r)
	}
}

// The overhead is what the directory holds beyond the live data on disk:
// the WAL, deleted data waiting for compaction, compaction output in
// flight, the value log's garbage. The shares (limit.go) leave room for
// the most of it measured in the worst case, 4 KiB values in Pebble
// written as fast as one writer can: at 64 MiB the directory peaked at
// 0.88-0.97x with 0.45 of the limit live. Other workloads need less:
// 128-byte values at 64 MiB peaked at 0.85x with 0.44 live and settled at
// 0.72x.
//
// So the monitor keeps a high-water mark of the overhead, raised at once
// to any new high and decaying toward what it sees by half for each
// limit's worth of bytes evicted: the mark is what the cache makes while
// it writes at its limit. Neither an idle spell, when compaction catches
// up, nor the first fill, when nothing is deleted, lowers it. The live
// data may take the room between the shares' budget plus that mark and
// peakTarget of the limit: the budget and both disk thresholds
// (compactAt, waitAt) move up by it, so that the garbage keeps the room
// it had, and the directory's peaks move toward peakTarget. A
// workload whose overhead rises takes the room back within a tick
// (10 ms). The shift is at most maxBoost-1 of the budget and keeps waitAt
// under maxWaitAt. The mark starts where it gives no room, or, after
// Open, where the budget holds the live bytes the store already has: a
// restart keeps its entries.
//
// maxBoost binds for small values at small limits, whose overhead leaves
// the most room: BenchmarkHeldAtLimit/128B/64MiB held 264-274k entries at
// 1.25 (peaks 0.90-0.92x), 281-297k at 1.35 (0.94-0.98x) and 292-310k at
// 1.5 (1.01x); a switch to values that stop compressing
// (TestSizeLimitHoldsWhenValuesStopCompressing) peaked at 0.96-1.01x,
// 1.00-1.03x and 1.02-1.08x. python-diskcache held 265,584 of the same
// number of such entries in the same 64 MiB (benchmarks, W11).
const (
	peakTarget = 0.95
	maxBoost   = 1.35
	maxWaitAt  = 0.96
)

// physical returns the bytes on disk the live data takes per byte counted:
// the tables' footprint for what Pebble holds, 1 for the value log.
func (l *limiter) physical() float64 {
	return (1-l.valueShare)*l.footprint + l.valueShare
}

// startOverhead sets the mark so that the thresholds st hold live bytes
// counted (within maxBoost). Only the monitor calls it.
func (l *limiter) startOverhead(st steering, live int64) {
	l.overheadSet = true
	base := float64(st.budget)
	lowShare := float64(st.low) / base
	held := min(max(float64(live)*l.physical()/lowShare, base), base*maxBoost)
	l.overhead = peakTarget*float64(l.limit) - held
}

// observe takes the directory's size and the live bytes counted into the
// overhead's mark, after evicted bytes of evictions. Only the monitor
// calls it.
func (l *limiter) observe(disk, live, evicted int64) {
	g := float64(disk) - float64(live)*l.physical()
	if g > l.overhead {
		l.overhead = g
		return
	}
	decay := min(math.Ln2*float64(evicted)/float64(l.limit), 1)
	l.overhead -= (l.overhead - g) * decay
}

// room returns the bytes on disk the overhead's mark lets the thresholds
// st (bytes on disk) move up by.
func (l *limiter) room(st steering) int64 {
	if !l.overheadSet {
		return 0
	}
	r := peakTarget*float64(l.limit) - l.overhead - float64(st.budget)
	r = min(r, (maxBoost-1)*float64(st.budget), maxWaitAt*float64(l.limit)-float64(st.waitAt))
	return int64(max(r, 0))
}
