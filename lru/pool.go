package lru

import "math/rand/v2"

// Candidate is an entry the sampler found, as the Source describes it.
type Candidate struct {
	Hash    uint64
	Key     []byte // the store's key, opaque here
	Size    int64  // bytes it frees when evicted
	Written Tick   // when it was written: the fallback when the clock has no access
	Expired bool   // expired entries are evicted before any other
	// Tag is the Source's own description of the entry, opaque here and
	// returned with it (the engine keeps what it needs to evict the entry
	// without reading it again).
	Tag [3]uint64
}

// Source finds entries for the sampler.
type Source interface {
	// At appends to dst entries from pos on in the hash order, wrapping
	// around at the end: n of them, or all there are when fewer, or more
	// when they come at no extra cost (the engine reads a bucket of its
	// keyspace whole); none when the store is empty.
	At(dst []Candidate, pos uint64, n int) ([]Candidate, error)
}

// Sampler picks eviction candidates: each call samples a few entries at
// uniformly random positions of the hash space, offers them to a pool of
// the idlest candidates seen so far, and returns the idlest of the pool.
// That is Redis's approximation of LRU; the simulation test checks it
// against an exact LRU on zipf traces.
//
// Entries are ordered by a hash of their key, so neighbours are as random
// as any two entries: the sampler takes a short run of neighbours at each
// position. On disk a seek costs a block read and its neighbours come with
// it. (A store need not be sorted by the hash itself: the engine's keeps
// keys in buckets of the hash and orders a bucket when it reads one.)
//
// A Sampler is not safe for concurrent use: one evictor owns it.
type Sampler struct {
	src     Source
	clock   *AccessClock
	rng     *rand.Rand
	samples int
	run     int
	// credit is the candidates offered beyond what the picks so far
	// used: a seek that brought many pays for the samples of the next
	// picks too (Next).
	credit int
	pool   []scored // ascending by score: the idlest last
	max    int
	buf    []Candidate
}

type scored struct {
	c     Candidate
	score uint64 // higher is idler
}

// Default sampling: 10 candidates a pick, in runs of 3 neighbours (4
// seeks), and a pool of 16 (Redis keeps 16 and samples 5 to 10). On the
// simulation's zipf traces that is 0.32 (s=0.9) and 0.15 (s=1.1) points
// below an exact LRU's hit ratio (6 candidates: 0.48 and 0.21). The
// simulation's traces hardly tell them apart; a cache whose old keys are a
// small part of its entries does: with 6, a hot set read before a restart
// lost 3-7% of its keys to the eviction after it (TestRecencySurvivesRestart,
// once the value log let the cache hold half again as many entries), with
// 10 none. Every seek is a block read, but next to the writes that make
// eviction necessary, a few more are cheap.
const (
	DefaultSamples  = 10
	DefaultRun      = 3
	DefaultPoolSize = 16
)

// CandidatesPerSeek is how many candidates a Source whose seeks cost more
// than its steps (the engine's) reads at a seek at least, whole buckets of
// its keyspace one after the other: the candidates beyond a pick's samples
// pay for the next picks.
const CandidatesPerSeek = 32

// NewSampler returns a Sampler over src that reads recency from clock.
// samples and poolSize <= 0 take the defaults; seed makes it repeatable.
func NewSampler(src Source, clock *AccessClock, samples, poolSize int, seed uint64) *Sampler {
	if samples <= 0 {
		samples = DefaultSamples
	}
	if poolSize <= 0 {
		poolSize = DefaultPoolSize
	}
	return &Sampler{
		src:     src,
		clock:   clock,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		samples: samples,
		run:     min(DefaultRun, samples),
		max:     poolSize,
	}
}

// Idleness is how long before now c was last used, in ticks: what the
// sampler orders candidates by (expired ones are idlest of all).
func (s *Sampler) Idleness(c Candidate, now Tick) uint64 { return s.idleness(c, now) }

// idleness scores c at now: its age in ticks since its last access (or
// write), with expired entries above every live one.
func (s *Sampler) idleness(c Candidate, now Tick) uint64 {
	if c.Expired {
		return 1 << 40
	}
	last := c.Written
	if t, ok := s.clock.Last(c.Hash); ok && t.Age(now) < last.Age(now) {
		last = t
	}
	return uint64(last.Age(now))
}

// Next returns the idlest candidate after sampling, or ok == false when the
// store is empty. The candidate leaves the pool; the caller evicts it if it
// still holds what the Candidate says.
//
// Each pick is paid for with samples candidates. A source that gives more
// than asked at one position (whole buckets of the engine's keyspace,
// CandidatesPerSeek or more) pays for the next picks too, which then take the
// idlest of the pool without a seek: a pick is still the idlest of its
// share of random candidates, and a full cache of small values, which
// evicts about one entry a write, seeks once for several evictions instead
// of four times for each. Filled past a 1 GiB limit with 128-byte values,
// a cache wrote at most 2,000 a second, at times under 200, with the four
// seeks; with whole buckets, 24,000 a second on average over 2.5 minutes.
func (s *Sampler) Next(now Tick) (Candidate, bool, error) {
	for s.credit < s.samples || len(s.pool) == 0 {
		var err error
		s.buf, err = s.src.At(s.buf[:0], s.rng.Uint64(), min(s.run, max(s.samples-s.credit, 1)))
		if err != nil {
			return Candidate{}, false, err
		}
		if len(s.buf) == 0 {
			break
		}
		for _, c := range s.buf {
			s.offer(c, now)
		}
		s.credit += len(s.buf)
	}
	s.credit = max(s.credit-s.samples, 0)
	// Scores in the pool were computed when offered; an entry used since
	// then is rescored and, if it is no longer the idlest, goes back.
	for len(s.pool) > 0 {
		top := s.pool[len(s.pool)-1]
		s.pool = s.pool[:len(s.pool)-1]
		if fresh := s.idleness(top.c, now); fresh < top.score && len(s.pool) > 0 && fresh < s.pool[len(s.pool)-1].score {
			s.insert(scored{top.c, fresh})
			continue
		}
		return top.c, true, nil
	}
	return Candidate{}, false, nil
}

// offer adds c to the pool if it is idler than the least idle entry of a
// full pool, replacing an entry for the same key.
func (s *Sampler) offer(c Candidate, now Tick) {
	sc := scored{c, s.idleness(c, now)}
	for i := range s.pool {
		if s.pool[i].c.Hash == c.Hash && string(s.pool[i].c.Key) == string(c.Key) {
			s.pool = append(s.pool[:i], s.pool[i+1:]...)
			break
		}
	}
	if len(s.pool) == s.max {
		if sc.score <= s.pool[0].score {
			return
		}
		s.pool = append(s.pool[:0], s.pool[1:]...)
	}
	s.insert(sc)
}

func (s *Sampler) insert(sc scored) {
	i := len(s.pool)
	for i > 0 && s.pool[i-1].score > sc.score {
		i--
	}
	s.pool = append(s.pool, scored{})
	copy(s.pool[i+1:], s.pool[i:])
	s.pool[i] = sc
}

// Forget empties the pool, for when the store changed under it (Clear).
func (s *Sampler) Forget() { s.pool, s.credit = s.pool[:0], 0 }
