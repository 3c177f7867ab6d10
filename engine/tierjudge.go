package engine

import (
	"container/list"
	"sync"

	"github.com/diskcache-go/diskcache/internal/hottier"
)

// A process alone on its directory has a small hot tier (tierSizes) whose
// memory comes out of Pebble's block cache. Whether that trade pays
// depends on the reads, measured on the engine's Compare benchmarks
// (500,000 keys of 128 B, 64 MiB CacheSize, 16 MiB tier):
//
//   - uniform Gets over a store larger than the block cache: the tier
//     answers 5% of them, and the 16 MiB it holds back from the block
//     cache turn 27% more block reads into disk reads: 9.1 us a Get
//     against 6.7 us without a tier;
//   - zipf Gets (CompareZipf, 100,000 keys): 1.8 us an op against 2.3 us.
//
// A tier entry costs about twice the bytes the same entry takes in a
// block (its way and record header), so a tier whose hits are spread like
// the block cache's misses is a loss; one that holds a hot set is a win.
// tierJudge tells the two apart by simulating the tier: its S3-FIFO rings
// (internal/hottier) at a sampleOneIn scale, fed the keys read whose hash
// falls in one sampleOneIn of the hash space (so that a sampled key is
// always sampled: SHARDS, Waldspurger et al., FAST '15), give the hit
// ratio the tier would have. It must be the tier's own policy: an LRU of
// the same size, tried first, promised 15% hits under uniform reads where
// the tier, whose small ring lets keys read once go, hit 5%. The lone tier
// is read and filled only while that ratio earns the memory (worth).
type tierJudge struct {
	mu     sync.Mutex
	rings  [2]judgeRing // small, main
	ghosts judgeGhosts
	index  map[uint64]*list.Element // of *judgeEntry, in either ring
	reads  int                      // sampled reads in the current window
	hits   int
}

// judgeRing is one of the simulated tier's rings: entries in write order,
// the newest first.
type judgeRing struct {
	fifo     list.List
	used     int64
	capacity int64
}

type judgeEntry struct {
	hash uint64
	size int64
	read bool // read since it was written or moved
}

// judgeGhosts are the hashes of keys that left the small ring unread,
// oldest first, at most max of them.
type judgeGhosts struct {
	order []uint64
	set   map[uint64]bool
	max   int
}

const (
	// sampleOneIn: a key is simulated when its hash's top bits are zero.
	sampleOneIn = 64
	sampleShift = 58 // 64 - log2(sampleOneIn)
	// judgeWindow sampled reads (about 32,000 Gets) make one verdict: the
	// hit ratio of a window of 512 is within 0.02 of the true one.
	judgeWindow = 512
	// minTierHitRatio is the hit ratio below which a tier does not pay even
	// when it takes nothing from the block cache: a miss costs a lookup and
	// a fill, about a sixth of what a hit saves (0.5 against 3 us).
	minTierHitRatio = 0.2
)

// newTierJudge simulates a tier of the geometry hottier.Tier.Geometry
// gives.
func newTierJudge(small, main uint64, ghosts int) *tierJudge {
	j := &tierJudge{index: make(map[uint64]*list.Element)}
	j.rings[0].capacity = max(int64(small/sampleOneIn), 1)
	j.rings[1].capacity = max(int64(main/sampleOneIn), 1)
	j.ghosts = judgeGhosts{set: make(map[uint64]bool), max: max(ghosts/sampleOneIn, 1)}
	return j
}

// sampled reports whether the key of the tier hash th is simulated. It is
// the only cost of the other keys' reads.
func sampled(th uint64) bool { return th>>sampleShift == 0 }

// read simulates a read of the sampled key th whose key and value are
// size bytes: a hit marks the entry read, a miss fills it, as the engine
// fills the tier. At the end of a window it returns the window's hit
// ratio and done.
func (j *tierJudge) read(th uint64, size int) (ratio float64, done bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.reads++
	if e, ok := j.index[th]; ok {
		j.hits++
		e.Value.(*judgeEntry).read = true
	} else {
		ring := 0
		if j.ghosts.set[th] {
			ring = 1
		}
		j.push(&judgeEntry{hash: th, size: int64(hottier.RecordSize(size))}, ring)
	}
	if j.reads < judgeWindow {
		return 0, false
	}
	ratio = float64(j.hits) / float64(j.reads)
	j.reads, j.hits = 0, 0
	return ratio, true
}

// push writes ent at the head of ring and evicts at the tails until
// both rings fit, as hottier.Writer does: a small-ring entry read since
// it was written moves to main, one not read leaves as a ghost; a
// main-ring entry read goes round again, one not read leaves.
func (j *tierJudge) push(ent *judgeEntry, ring int) {
	j.index[ent.hash] = j.rings[ring].push(ent)
	for {
		switch {
		case j.rings[0].used > j.rings[0].capacity && j.rings[0].fifo.Len() > 0:
			e := j.rings[0].pop()
			if e.read {
				e.read = false
				j.index[e.hash] = j.rings[1].push(e)
			} else {
				delete(j.index, e.hash)
				j.ghosts.add(e.hash)
			}
		case j.rings[1].used > j.rings[1].capacity && j.rings[1].fifo.Len() > 1:
			e := j.rings[1].pop()
			if e.read {
				e.read = false
				j.index[e.hash] = j.rings[1].push(e)
			} else {
				delete(j.index, e.hash)
			}
		default:
			return
		}
	}
}

func (r *judgeRing) push(e *judgeEntry) *list.Element {
	r.used += e.size
	return r.fifo.PushFront(e)
}

func (r *judgeRing) pop() *judgeEntry {
	e := r.fifo.Remove(r.fifo.Back()).(*judgeEntry)
	r.used -= e.size
	return e
}

func (g *judgeGhosts) add(h uint64) {
	if g.set[h] {
		return
	}
	if len(g.order) == g.max {
		delete(g.set, g.order[0])
		g.order = g.order[1:]
	}
	g.order = append(g.order, h)
	g.set[h] = true
}

// worth returns the hit ratio at which a tier of tierSize bytes, taken
// from a block cache of cacheSize bytes, earns its memory for a store of
// live bytes. When the store fits in what the block cache keeps, the tier
// takes nothing that would be read: any hit ratio above a miss's cost
// pays. Otherwise the tier costs the block cache's hits on its share of
// the store, and a tier entry is about twice a block's: the tier must hit
// twice as often as its share of the store.
func worth(tierSize, cacheSize, live int64) float64 {
	if live <= 0 || live+tierSize <= cacheSize {
		return minTierHitRatio
	}
	return max(minTierHitRatio, 2*float64(tierSize)/float64(live))
}
