package manager

import (
	"context"
	"crypto/rand"
	"time"
)

// Adder is implemented by backends that can store a value only if its key
// holds none (Redis SET NX, memcached's add). GetOrSet takes a lease with it,
// so that of all the processes sharing a backend (several processes on one
// disk cache, or on one Redis) one computes a missing value while the others
// wait for it. Within a process, concurrent callers are already collapsed
// into one flight.
type Adder interface {
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
}

// LeaseTTL bounds how long a lease lasts: if its holder dies while
// computing, another process computes after this long.
const LeaseTTL = 30 * time.Second

// leaseMarker keeps lease keys apart from entries and tag versions.
const leaseMarker = "#lease:"

func (m *Manager) leaseKey(key Key) string { return m.keys.prefix() + leaseMarker + key.Name }

// leaseOrWait takes the lease on key, or waits for the process that holds
// it to store the value, which it returns. A failing backend neither blocks
// nor fails the call: the caller computes without a lease. release gives the
// lease back when the caller held it (nil otherwise).
func (m *Manager) leaseOrWait(ctx context.Context, a Adder, key Key) (stored []byte, release func()) {
	lk := m.leaseKey(key)
	var token [16]byte
	rand.Read(token[:])
	for {
		ok, err := a.Add(ctx, lk, token[:], LeaseTTL)
		if err != nil {
			m.log.WarnContext(ctx, "manager: GetOrSet computes without a lease", "key", key.Name, "err", err)
			return nil, nil
		}
		if ok {
			return nil, func() {
				// Give the lease back only if it is still ours: it may have
				// expired and been taken while fn ran.
				if v, err := m.b.Get(ctx, lk); err == nil && string(v) == string(token[:]) {
					m.b.Delete(ctx, lk)
				}
			}
		}
		// Another process computes: wait for its value, or for its lease
		// to go (it failed, or died and the lease expired), then try again.
		for wait := 2 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
			select {
			case <-ctx.Done():
				return nil, nil
			case <-time.After(wait):
			}
			if b, err := m.b.Get(ctx, key.Name); err == nil {
				return b, nil
			}
			if held, err := m.b.Exists(ctx, lk); err != nil || !held {
				break
			}
		}
	}
}
