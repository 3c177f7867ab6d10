package manager

import "sync/atomic"

// Counters count a manager's calls since New.
type Counters struct {
	Hits    int64 // lookups that found a value
	Misses  int64 // lookups of missing, expired or invalidated keys
	Sets    int64 // values stored, GetOrSet fills included
	Deletes int64 // Delete calls that succeeded
	Errors  int64 // backend failures and values that failed to decode
}

// HitRatio returns Hits / (Hits + Misses), or 0 before any lookup.
func (c Counters) HitRatio() float64 {
	if n := c.Hits + c.Misses; n > 0 {
		return float64(c.Hits) / float64(n)
	}
	return 0
}

func (c *Counters) add(d Counters) {
	c.Hits += d.Hits
	c.Misses += d.Misses
	c.Sets += d.Sets
	c.Deletes += d.Deletes
	c.Errors += d.Errors
}

// Stats is a snapshot of a manager's counters: in total, and by the kind of
// the keys (raw keys without a kind count under the empty kind).
type Stats struct {
	Counters
	Kinds map[Kind]Counters
}

type counters struct {
	hits, misses, sets, deletes, errors atomic.Int64
}

// counters returns kind's counters, creating them on first use. Kinds are
// few (they are constants in the caller's code), so the map stays small.
func (m *Manager) counters(kind Kind) *counters {
	if c, ok := m.kinds.Load(kind); ok {
		return c.(*counters)
	}
	c, _ := m.kinds.LoadOrStore(kind, new(counters))
	return c.(*counters)
}

// Stats returns the manager's counters. Each counter is read atomically,
// not the snapshot as a whole.
func (m *Manager) Stats() Stats {
	s := Stats{Kinds: make(map[Kind]Counters)}
	m.kinds.Range(func(k, v any) bool {
		c := v.(*counters)
		kc := Counters{
			Hits:    c.hits.Load(),
			Misses:  c.misses.Load(),
			Sets:    c.sets.Load(),
			Deletes: c.deletes.Load(),
			Errors:  c.errors.Load(),
		}
		s.Kinds[k.(Kind)] = kc
		s.Counters.add(kc)
		return true
	})
	return s
}
