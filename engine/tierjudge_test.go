package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/diskcache-go/diskcache/internal/hottier"
)

// judgeRatio feeds the judge of a tier of tierSize bytes n reads of keys
// that pick chooses, values of valueLen bytes, and returns the hit ratio
// of the last window.
func judgeRatio(t *testing.T, tierSize int64, n int, valueLen int, pick func() int) float64 {
	tier, f, err := hottier.Create(tierSize, 1)
	if err != nil {
		t.Fatal(err)
	}
	j := newTierJudge(tier.Geometry())
	tier.Unmap()
	f.Close()
	last := -1.0
	for range n {
		key := fmt.Sprint("key:", pick())
		th := hottier.Hash(key)
		if !sampled(th) {
			continue
		}
		if r, done := j.read(th, len(key)+valueLen); done {
			last = r
		}
	}
	return last
}

// The simulated tier gives the hit ratio the tier would have: a few
// percent under uniform reads of ten times what it holds (its small ring
// lets keys read once go), nearly all reads when the keys fit, most of
// them under a skew.
func TestTierJudgeHitRatio(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const tierSize = 1 << 20
	const valueLen = 128
	fits := int(tierSize / hottier.RecordSize(len("key:100000")+valueLen)) // about 6,500 entries
	uniform := func(k int) func() int { return func() int { return rng.IntN(k) } }
	cases := []struct {
		name   string
		keys   int
		pick   func(keys int) func() int
		lo, hi float64
	}{
		{"uniform, 10x the tier", 10 * fits, uniform, 0.01, 0.1},
		{"uniform, half the tier", fits / 2, uniform, 0.95, 1},
		{"zipf 1.1 over 20x the tier", 20 * fits, func(k int) func() int {
			z := rand.NewZipf(rng, 1.1, 1, uint64(k-1))
			return func() int { return int(z.Uint64()) }
		}, 0.6, 0.95},
	}
	for _, tc := range cases {
		got := judgeRatio(t, tierSize, 400_000, valueLen, tc.pick(tc.keys))
		t.Logf("%s: %.3f", tc.name, got)
		if got < tc.lo || got > tc.hi {
			t.Errorf("%s: simulated hit ratio %.3f, want within [%.2f, %.2f]", tc.name, got, tc.lo, tc.hi)
		}
	}
}

func TestWorth(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		tier, cache, live int64
		want              float64
	}{
		{16 * mib, 64 * mib, 0, minTierHitRatio},
		{16 * mib, 64 * mib, 40 * mib, minTierHitRatio},   // fits beside the tier
		{16 * mib, 64 * mib, 64 * mib, 0.5},               // the tier's share is a quarter
		{16 * mib, 64 * mib, 1024 * mib, minTierHitRatio}, // a hot set is all that can pay
	}
	for _, tc := range cases {
		if got := worth(tc.tier, tc.cache, tc.live); got != tc.want {
			t.Errorf("worth(%d, %d, %d) = %v, want %v", tc.tier, tc.cache, tc.live, got, tc.want)
		}
	}
}

// A lone owner's tier sleeps until reads of a hot set wake it, sleeps
// again under uniform reads of a store larger than its block cache, and
// wakes once more without ever returning a value written while it slept.
func TestLoneTierWakesAndSleeps(t *testing.T) {
	const cacheSize = 4 << 20 // a 1 MiB tier
	c := openDir(t, t.TempDir(), &Options{SizeLimit: 1 << 30, CacheSize: cacheSize})
	o := c.local().tier
	if !o.dormant.Load() {
		t.Fatal("a new lone tier is awake before any read")
	}
	value := func(v, i int) []byte { return fmt.Appendf(make([]byte, 0, 200), "v%d:%0196d", v, i) }
	const n = 30_000 // about 7 MB: more than the block cache
	for i := 0; i < n; i += 1000 {
		var es []Entry
		for j := i; j < i+1000; j++ {
			es = append(es, Entry{Key: fmt.Sprint("k", j), Value: value(1, j)})
		}
		if err := c.SetMany(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const hot = 300
	readUntil := func(pick func() int, v func(int) int, want bool, what string) {
		t.Helper()
		for r := 0; o.dormant.Load() != want; r++ {
			if r == 40*sampleOneIn*judgeWindow {
				t.Fatalf("the tier is not %s after %d reads", what, r)
			}
			i := pick()
			mustGet(t, c, fmt.Sprint("k", i), value(v(i), i))
		}
	}
	hotPick := func() int { return rng.IntN(hot) }
	readUntil(hotPick, func(int) int { return 1 }, false, "awake")
	if localHits(c) != 0 {
		t.Fatal("a dormant tier answered reads")
	}
	for range 1000 {
		i := hotPick()
		mustGet(t, c, fmt.Sprint("k", i), value(1, i))
	}
	if localHits(c) == 0 {
		t.Fatal("the awake tier answered none of the hot reads")
	}
	readUntil(func() int { return rng.IntN(n) }, func(int) int { return 1 }, true, "dormant")

	// Writes while it sleeps skip the tier; none of them may read stale
	// once it wakes.
	for i := range hot {
		c.Set(ctx, fmt.Sprint("k", i), value(2, i), 0)
	}
	readUntil(hotPick, func(int) int { return 2 }, false, "awake again")
	for range 2000 {
		i := hotPick()
		mustGet(t, c, fmt.Sprint("k", i), value(2, i))
	}
}
