package lru

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"

	"github.com/diskcache-go/diskcache/internal/offheap"
)

// zipf draws ranks in [0, n) with P(k) proportional to 1/(k+1)^s. Unlike
// math/rand's Zipf it accepts s <= 1.
type zipf struct {
	cdf []float64
	rng *rand.Rand
}

func newZipf(n int, s float64, rng *rand.Rand) *zipf {
	cdf := make([]float64, n)
	var sum float64
	for k := range cdf {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return &zipf{cdf: cdf, rng: rng}
}

func (z *zipf) next() int {
	return sort.SearchFloat64s(z.cdf, z.rng.Float64())
}

// memStore is a Source over a set of hashes, kept in 4096 buckets by the top
// bits of the hash so that finding the entry at a position is cheap. With
// perSeek 0, At gives the n entries from pos on, as a store ordered by hash
// does; otherwise it gives whole buckets from pos's on until it has n and
// perSeek, as the engine's bucketed keyspace does (about 5 entries a bucket
// here, for 20,000 keys cached).
type memStore struct {
	buckets [4096][]uint64
	n       int
	perSeek int
}

func bucketOf(h uint64) int { return int(h >> 52) }

func (m *memStore) add(h uint64) {
	b := &m.buckets[bucketOf(h)]
	i, found := slices.BinarySearch(*b, h)
	if !found {
		*b = slices.Insert(*b, i, h)
		m.n++
	}
}

func (m *memStore) remove(h uint64) {
	b := &m.buckets[bucketOf(h)]
	if i, found := slices.BinarySearch(*b, h); found {
		*b = slices.Delete(*b, i, i+1)
		m.n--
	}
}

func (m *memStore) At(dst []Candidate, pos uint64, n int) ([]Candidate, error) {
	start := bucketOf(pos)
	if m.perSeek > 0 {
		want := len(dst) + max(n, m.perSeek)
		for j := 0; j < len(m.buckets) && len(dst) < want; j++ {
			for _, h := range m.buckets[(start+j)%len(m.buckets)] {
				dst = append(dst, Candidate{Hash: h})
			}
		}
		return dst, nil
	}
	n = min(n, m.n)
	for j := 0; len(dst) < n; j++ {
		b := m.buckets[(start+j)%len(m.buckets)]
		i := 0
		if j == 0 {
			i, _ = slices.BinarySearch(b, pos)
		}
		for ; i < len(b) && len(dst) < n; i++ {
			dst = append(dst, Candidate{Hash: b[i]})
		}
	}
	return dst, nil
}

// exactLRU is the reference.
type exactLRU struct {
	ll    *list.List
	items map[uint64]*list.Element
	cap   int
}

func (l *exactLRU) access(h uint64) bool {
	if e, ok := l.items[h]; ok {
		l.ll.MoveToFront(e)
		return true
	}
	l.items[h] = l.ll.PushFront(h)
	if l.ll.Len() > l.cap {
		old := l.ll.Back()
		l.ll.Remove(old)
		delete(l.items, old.Value.(uint64))
	}
	return false
}

// simulate replays a zipf trace through an exact LRU and through the
// sampler over an AccessClock, and returns both hit ratios.
func simulate(t testing.TB, keys, capacity, requests int, s float64, samples, pool, slots, perSeek int) (exact, approx float64) {
	rng := rand.New(rand.NewPCG(11, uint64(s*100)))
	hashes := make([]uint64, keys)
	for i := range hashes {
		hashes[i] = rng.Uint64()
	}
	z := newZipf(keys, s, rng)
	ref := &exactLRU{ll: list.New(), items: map[uint64]*list.Element{}, cap: capacity}
	store := &memStore{perSeek: perSeek}
	cached := map[uint64]bool{}
	clock := NewAccessClock(slots)
	sampler := NewSampler(store, clock, samples, pool, 5)
	var exactHits, approxHits int
	for i := 0; i < requests; i++ {
		h := hashes[z.next()]
		now := Tick(i + 1)
		if ref.access(h) {
			exactHits++
		}
		if cached[h] {
			approxHits++
			clock.Touch(h, now)
			continue
		}
		cached[h] = true
		store.add(h)
		clock.Touch(h, now)
		for store.n > capacity {
			c, ok, err := sampler.Next(now)
			if err != nil || !ok {
				t.Fatalf("sampler: %v, %v", ok, err)
			}
			if !cached[c.Hash] {
				continue // evicted already: the pool held it twice
			}
			delete(cached, c.Hash)
			store.remove(c.Hash)
		}
	}
	return float64(exactHits) / float64(requests), float64(approxHits) / float64(requests)
}

// TestApproximationMatchesExactLRU: on zipf traces (s = 0.9 and 1.1, 1M
// requests over 200k keys, capacity 10% of the keys) the sampled LRU's hit
// ratio is within 2 points of an exact LRU's, with the engine's defaults:
// 10 samples, a pool of 16, and an access clock with fewer slots than
// twice the keys (so collisions are part of the test).
func TestApproximationMatchesExactLRU(t *testing.T) {
	if testing.Short() {
		t.Skip("1M requests per trace")
	}
	for _, s := range []float64{0.9, 1.1} {
		t.Run(fmt.Sprintf("s=%.1f", s), func(t *testing.T) {
			exact, approx := simulate(t, 200_000, 20_000, 1_000_000, s, DefaultSamples, DefaultPoolSize, 1<<18, 0)
			t.Logf("hit ratio: exact LRU %.4f, sampled %.4f (%+.2f points)", exact, approx, 100*(approx-exact))
			_, twelve := simulate(t, 200_000, 20_000, 1_000_000, s, 12, DefaultPoolSize, 1<<18, 0)
			t.Logf("with 12 samples instead of %d: %.4f", DefaultSamples, twelve)
			if approx < exact-0.02 {
				t.Fatalf("sampled LRU hit ratio %.4f is more than 2 points below exact LRU's %.4f", approx, exact)
			}
			// Whole buckets, CandidatesPerSeek or more a seek, as the
			// engine reads them: a seek's candidates pay for several picks.
			_, whole := simulate(t, 200_000, 20_000, 1_000_000, s, DefaultSamples, DefaultPoolSize, 1<<18, CandidatesPerSeek)
			t.Logf("with whole buckets, %d candidates a seek: %.4f (%+.2f points)", CandidatesPerSeek, whole, 100*(whole-exact))
			if whole < exact-0.0035 {
				t.Fatalf("with whole buckets the sampled LRU hit ratio %.4f is more than 0.35 points below exact LRU's %.4f", whole, exact)
			}
		})
	}
}

func TestAccessClock(t *testing.T) {
	c := NewAccessClock(1000)
	if c.Slots() != 1024 {
		t.Fatalf("slots = %d", c.Slots())
	}
	// The slot is the top bits of the hash.
	a, b := uint64(42)<<54, uint64(43)<<54
	if _, ok := c.Last(a); ok {
		t.Fatal("fresh clock has an access")
	}
	c.Touch(a, 7)
	if got, ok := c.Last(a); !ok || got != 7 {
		t.Fatalf("Last = %d, %v", got, ok)
	}
	c.Touch(b, 0) // 0 is stored as 1, never as "no access"
	if _, ok := c.Last(b); !ok {
		t.Fatal("touch at tick 0 lost")
	}
	restored := func(slots int, from *AccessClock) *AccessClock {
		t.Helper()
		r := NewAccessClock(slots)
		if err := r.Restore(from.Snapshot()); err != nil {
			t.Fatal(err)
		}
		return r
	}
	d := restored(1024, c)
	if got, _ := d.Last(a); got != 7 {
		t.Fatalf("restored Last = %d", got)
	}
	// Sum tells a changed table from an unchanged one.
	if sum := d.Sum(); sum != c.Sum() {
		t.Fatal("a restored clock sums differently from its source")
	} else if d.Touch(a, 8); d.Sum() == sum {
		t.Fatal("a touch did not change the sum")
	}
	// A snapshot of another size is split or folded: every key keeps its
	// last access, or a newer one of a key it now shares a slot with.
	big := restored(4096, c)
	if got, _ := big.Last(a); got != 7 {
		t.Fatalf("Last after a split = %d", got)
	}
	if got, _ := big.Last(a + 3<<52); got != 7 { // the last of a's four new slots
		t.Fatalf("Last of a split slot = %d", got)
	}
	big.Touch(b, 9)
	big.Touch(a+1<<52, math.MaxUint32) // just before the wrap: older than 7 and 9
	small := restored(16, big)
	if got, _ := small.Last(a); got != 9 { // a and b fold into one slot
		t.Fatalf("Last after a fold = %d, want 9", got)
	}
	if _, ok := small.Last(1 << 63); ok {
		t.Fatal("fold invented an access")
	}
	for _, bad := range [][]byte{{1, 2, 3}, {3, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {0, 0, 0, 0, 0, 0, 0, 0}, {2, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}} {
		if err := d.Restore(bad); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("restored garbage %v: %v", bad, err)
		}
	}
	// Ages wrap: a tick just before the wrap is young just after it.
	if age := Tick(math.MaxUint32 - 1).Age(3); age != 5 {
		t.Fatalf("age across the wrap = %d", age)
	}
	if SlotsFor(1<<30, 64<<20) != 1<<18 || SlotsFor(1<<30, 1<<40) != MaxSlots || SlotsFor(0, 1<<40) != MinSlots || SlotsFor(1000, 1<<40) != 16384 {
		t.Fatalf("SlotsFor: %d %d %d %d", SlotsFor(1<<30, 64<<20), SlotsFor(1<<30, 1<<40), SlotsFor(0, 1<<40), SlotsFor(1000, 1<<40))
	}
}

func TestSamplerPrefersExpiredAndIdle(t *testing.T) {
	store := &memStore{}
	clock := NewAccessClock(1 << 10)
	for h := uint64(1); h <= 100; h++ {
		store.add(h << 56)
		clock.Touch(h<<56, Tick(h))
	}
	s := NewSampler(store, clock, 100, 16, 1)
	c, ok, err := s.Next(1000)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if c.Hash>>56 > 10 {
		t.Fatalf("with 100 samples the pick was touched at %d, want one of the idlest", c.Hash>>56)
	}
}

// TestAccessClockGrow: a clock that grows with the keys keeps every
// recorded access, and touches after the growth land in the new table.
func TestAccessClockGrow(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	c := NewAccessClock(MinSlots)
	hashes := make([]uint64, 1000)
	for i := range hashes {
		hashes[i] = rng.Uint64()
		c.Touch(hashes[i], Tick(i+1))
	}
	before := make([]Tick, len(hashes))
	for i, h := range hashes {
		before[i], _ = c.Last(h)
	}
	if c.Grow(MinSlots) || c.Grow(MinSlots/2) {
		t.Fatal("Grow to no more slots grew")
	}
	if !c.Grow(3*MinSlots) || c.Slots() != 4*MinSlots {
		t.Fatalf("Grow(3 x MinSlots): %d slots, want %d", c.Slots(), 4*MinSlots)
	}
	for i, h := range hashes {
		// A slot of the smaller table covered keys that now have slots of
		// their own: each keeps the newest access of the keys it shared with.
		if got, ok := c.Last(h); !ok || got != before[i] {
			t.Fatalf("key %d: Last = %d, %v after Grow, want %d", i, got, ok, before[i])
		}
	}
	c.Touch(hashes[0], 5000)
	if got, _ := c.Last(hashes[0]); got != 5000 {
		t.Fatalf("a touch after Grow: Last = %d", got)
	}
	if SlotsFor(1000, 1<<30) != 16384 || SlotsFor(1<<30, 1<<30) != 1<<22 {
		t.Fatalf("SlotsFor: %d, %d", SlotsFor(1000, 1<<30), SlotsFor(1<<30, 1<<30))
	}
}

// TestReadFromMerges: a snapshot loaded into a clock that was touched in
// the meantime keeps the newer tick of each slot.
func TestReadFromMerges(t *testing.T) {
	old := NewAccessClock(MinSlots)
	a, b := uint64(1)<<63, uint64(1)<<62
	old.Touch(a, 10)
	old.Touch(b, 10)
	live := NewAccessClock(2 * MinSlots) // sized for more keys: the snapshot is split
	live.Touch(a, 20)
	if err := live.Restore(old.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if got, _ := live.Last(a); got != 20 {
		t.Fatalf("a touch made while loading was overwritten: Last = %d, want 20", got)
	}
	if got, _ := live.Last(b); got != 10 {
		t.Fatalf("Last of a key only the snapshot knows = %d, want 10", got)
	}
	// The same size, slot to slot (ReadFrom's fast path).
	same := NewAccessClock(MinSlots)
	c := uint64(1) << 61
	same.Touch(a, 20)
	same.Touch(b, 5)
	if err := same.Restore(old.Snapshot()); err != nil {
		t.Fatal(err)
	}
	wantLast(t, "same size", same, lastOf{a, 20}, lastOf{b, 10}, lastOf{c, 0})
}

// lastOf is a hash and the tick Last should give it.
type lastOf struct {
	h    uint64
	want Tick
}

func wantLast(t *testing.T, when string, c *AccessClock, keys ...lastOf) {
	t.Helper()
	for _, k := range keys {
		if got, _ := c.Last(k.h); got != k.want {
			t.Errorf("%s: Last(%#x) = %d, want %d", when, k.h, got, k.want)
		}
	}
}

// TestStageThenInstall: a staged snapshot changes nothing until it is
// installed; touches made in between survive the install when newer; a
// snapshot cut short stages nothing; Staged.Clock is the snapshot alone.
func TestStageThenInstall(t *testing.T) {
	a, b, c := uint64(1)<<63, uint64(1)<<62, uint64(1)<<61
	saved := NewAccessClock(MinSlots)
	saved.Touch(a, 10)
	saved.Touch(b, 10)
	snap := saved.Snapshot()

	live := NewAccessClock(MinSlots)
	live.Touch(b, 5)
	st, n, err := live.Stage(bytes.NewReader(snap))
	if err != nil || n != int64(len(snap)) || !st.Exact() {
		t.Fatalf("Stage: %v, %d of %d bytes, exact %v", err, n, len(snap), st != nil && st.Exact())
	}
	if got, ok := live.Last(a); ok {
		t.Fatalf("a staged snapshot changed the clock: Last = %d", got)
	}
	live.Touch(c, 30) // touches go on while the snapshot stages
	live.Touch(a, 20)
	if err := live.Install(st); err != nil {
		t.Fatal(err)
	}
	wantLast(t, "after Install", live, lastOf{a, 20}, lastOf{b, 10}, lastOf{c, 30})

	cut := NewAccessClock(MinSlots)
	cut.Touch(c, 7)
	if _, _, err := cut.Stage(bytes.NewReader(snap[:len(snap)/2])); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("Stage of a cut snapshot: %v, want ErrBadSnapshot", err)
	}
	if got, _ := cut.Last(c); got != 7 {
		t.Fatalf("a failed Stage changed the clock: Last = %d, want 7", got)
	}

	st, _, err = NewAccessClock(2 * MinSlots).Stage(bytes.NewReader(snap)) // split
	if err != nil || st.Exact() {
		t.Fatalf("Stage into a larger clock: %v, exact %v", err, st != nil && st.Exact())
	}
	alone := st.Clock()
	if got, _ := alone.Last(a); got != 10 || alone.Slots() != 2*MinSlots {
		t.Fatalf("Staged.Clock: Last = %d, %d slots", got, alone.Slots())
	}
	grown := NewAccessClock(MinSlots)
	st, _, _ = grown.Stage(bytes.NewReader(snap))
	grown.Grow(2 * MinSlots)
	if err := grown.Install(st); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("Install after Grow: %v, want ErrBadSnapshot", err)
	}
}

// BenchmarkReadFrom loads the snapshot of a clock of 32,768 slots, two
// thirds of them set (a cache of about 2,000 keys): "new" as every Open of
// such a cache does (staged into a clock of its own), "loaded" into a
// clock in use that holds it already (staged and installed, whose pause
// for touches in flight, 1 ms, is most of it).
func BenchmarkReadFrom(b *testing.B) {
	src := NewAccessClock(1 << 15)
	for i := range uint64(1 << 15) {
		if i%3 != 0 {
			src.Touch(i<<49, Tick(1000+i%700))
		}
	}
	snap := src.Snapshot()
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			st, _, err := NewAccessClock(1 << 15).Stage(bytes.NewReader(snap))
			if err != nil {
				b.Fatal(err)
			}
			st.Clock()
		}
	})
	c := NewAccessClock(1 << 15)
	b.Run("loaded", func(b *testing.B) {
		for b.Loop() {
			if err := c.Restore(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReadFromLarge loads the snapshot of a full clock, 4Mi slots
// (16 MiB) two fifths of them set, as a reopen of a cache of 500,000 keys
// or more does in the background: 125 ms a load when it was merged slot
// by slot into the clock in use, 40-45 ms staged and installed (most of
// it the new table's pages, on this VM).
func BenchmarkReadFromLarge(b *testing.B) {
	const n = MaxSlots
	src := NewAccessClock(n)
	for i := range uint64(n) {
		if i%5 < 2 {
			src.Touch(i<<42, Tick(1000+i%700))
		}
	}
	snap := src.Snapshot()
	for b.Loop() {
		if err := NewAccessClock(n).Restore(snap); err != nil {
			b.Fatal(err)
		}
	}
}

// A Grow of a clock whose pages were all written leaves every page of the
// new table allocated (its merge writes them all, which is why Grow has
// them allocated at once: BenchmarkGrow); a Grow of a clock mostly
// untouched does not allocate the new table's other pages.
func TestGrowAllocates(t *testing.T) {
	const n = 1 << 18 // 1 MiB of slots: a table outside the heap
	resident := func(c *AccessClock) (in, all int) {
		tab := c.tab.Load()
		defer runtime.KeepAlive(tab)
		in, all, ok := offheap.CountTouched(tab.slots)
		if !ok {
			t.Skip("mincore cannot tell")
		}
		return in, all
	}
	full := NewAccessClock(n)
	for i := range uint64(n / 4) {
		full.Touch(i<<48, Tick(1000))
	}
	full.Grow(2 * n)
	if in, all := resident(full); in != all {
		t.Fatalf("a full clock grown: %d of %d pages allocated, want all", in, all)
	}
	sparse := NewAccessClock(n)
	sparse.Touch(1, Tick(1000))
	sparse.Grow(2 * n)
	if in, all := resident(sparse); in > 2 {
		t.Fatalf("a clock of one key grown: %d of %d pages allocated, want those its key's slots are on", in, all)
	}
	if !sparse.Seen(1) || !full.Seen(7<<48) {
		t.Fatal("a grown clock lost a touch")
	}
}

// BenchmarkGrow doubles a clock of 2Mi slots (8 MiB), two fifths of them
// set, to 4Mi, as the monitor does when the store holds more keys: the
// last of a fill's doublings to the largest clock.
func BenchmarkGrow(b *testing.B) {
	const n = MaxSlots / 2
	for b.Loop() {
		b.StopTimer()
		c := NewAccessClock(n)
		for i := range uint64(n) {
			if i%5 < 2 {
				c.Touch(i<<43, Tick(1000+i%700))
			}
		}
		b.StartTimer()
		c.Grow(2 * n)
	}
}

// TestTouchSurvivesGrow: a touch by a goroutine that read the clock's
// table before a Grow replaced it, and wrote the old table after the
// Grow's second pass, lands in the new table too (Seen relies on it).
func TestTouchSurvivesGrow(t *testing.T) {
	c := NewAccessClock(MinSlots)
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		if c.Slots() >= 1<<16 {
			c = NewAccessClock(MinSlots)
		}
		h := rng.Uint64()
		stale := c.tab.Load()
		c.Grow(2 * c.Slots())
		if c.Seen(h) {
			continue // another key's slot
		}
		c.write(stale, h, 9, false)
		if got, ok := c.Last(h); !ok || got != 9 {
			t.Fatalf("a touch of the table a Grow replaced: Last = %d, %v, want 9", got, ok)
		}
	}
}

// TestNoteKeepsTheLater: Note never makes a slot older, and marks an
// untouched slot as seen.
func TestNoteKeepsTheLater(t *testing.T) {
	c := NewAccessClock(MinSlots)
	const h = 0x1234_5678_9abc_def0
	if c.Seen(h) {
		t.Fatal("a new clock has seen a key")
	}
	c.Note(h, 0)
	if got, ok := c.Last(h); !ok || got != 1 {
		t.Fatalf("Note(0) of an untouched slot: Last = %d, %v, want 1", got, ok)
	}
	c.Touch(h, 50)
	c.Note(h, 40)
	if got, _ := c.Last(h); got != 50 {
		t.Fatalf("Note(40) after Touch(50): Last = %d", got)
	}
	c.Note(h, 60)
	if got, _ := c.Last(h); got != 60 {
		t.Fatalf("Note(60): Last = %d", got)
	}
}

// TestTouchSeenDuringReplace: a touch that returned before a replacement
// swapped its table in, and after the replacement's first pass read the
// slot, is seen at once, not only after the second pass (load reads
// prev): a write that took the slot for "absent" would miss its key.
func TestTouchSeenDuringReplace(t *testing.T) {
	c := NewAccessClock(MinSlots)
	const h = 0xfedc_ba98_7654_3210
	old := c.tab.Load()
	next := newClockTable(2 * MinSlots) // its first pass ran: the slot was zero
	c.Touch(h, 5)
	next.prev.Store(old)
	c.tab.Store(next)
	if !c.Seen(h) {
		t.Fatal("a touch the first pass missed is not seen before the second")
	}
	if got, ok := c.Last(h); !ok || got != 5 {
		t.Fatalf("Last = %d, %v, want 5", got, ok)
	}
}

// TestStagedSum: a snapshot staged at any size carries the Sum of the
// clock that wrote it (what a covering clock's Close records).
func TestStagedSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	a := NewAccessClock(4 * MinSlots)
	for i := range 5000 {
		a.Touch(rng.Uint64(), Tick(i+1))
	}
	var snap bytes.Buffer
	if _, err := a.WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	for _, slots := range []int{MinSlots, 4 * MinSlots, 16 * MinSlots} {
		st, _, err := NewAccessClock(slots).Stage(bytes.NewReader(snap.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if st.Sum() != a.Sum() {
			t.Fatalf("staged to %d slots: Sum %x, the clock's %x", slots, st.Sum(), a.Sum())
		}
	}
	a.Touch(rng.Uint64(), 9999)
	st, _, _ := NewAccessClock(MinSlots).Stage(bytes.NewReader(snap.Bytes()))
	if st.Sum() == a.Sum() {
		t.Fatal("the Sum of an older snapshot matches the clock touched since")
	}
}
