package lru

import "math/rand/v2"

// Candidate is an entry the sampler found, as the Source describes it.
type Candidate struct {
	Hash    uint64
	Key     []byte // the store's key, opaque here
	Size    int64  // bytes it frees when evicted
	Written Tick   // when it was written: the fallback when the clock has no access
	Expired bool   // expired entries are evicted before any other
}

// Source finds entries for the sampler.
type Source interface {
	// At returns the first entry at or after pos in the hash order,
	// wrapping around at the end; ok is false when the store is empty.
	At(pos uint64) (c Candidate, ok bool, err error)
}

// Sampler picks eviction candidates: each call samples a few entries at
// uniformly random positions of the hash space, offers them to a pool of
// the idlest candidates seen so far, and returns the idlest of the pool.
// That is Redis's approximation of LRU; the simulation test checks it
// against an exact LRU on zipf traces.
//
// A Sampler is not safe for concurrent use: one evictor owns it.
type Sampler struct {
	src     Source
	clock   *AccessClock
	rng     *rand.Rand
	samples int
	pool    []scored // ascending by score: the idlest last
	max     int
}

type scored struct {
	c     Candidate
	score uint64 // higher is idler
}

// Default sampling: 10 samples a pick and a pool of 16, as Redis's
// maxmemory-samples 10 with its 16-entry pool; the simulation test shows
// what that buys over 5 samples.
const (
	DefaultSamples  = 10
	DefaultPoolSize = 16
)

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
		max:     poolSize,
	}
}

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
func (s *Sampler) Next(now Tick) (Candidate, bool, error) {
	for i := 0; i < s.samples; i++ {
		c, ok, err := s.src.At(s.rng.Uint64())
		if err != nil {
			return Candidate{}, false, err
		}
		if !ok {
			break
		}
		s.offer(c, now)
	}
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
		s.pool = s.pool[1:]
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
func (s *Sampler) Forget() { s.pool = s.pool[:0] }
