package ttl

import (
	"errors"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeStore is an expiry index in memory: key -> expiry.
type fakeStore struct {
	mu       sync.Mutex
	expiry   map[string]int64
	reclaims []int64
	sweeps   int
	err      error
}

func (f *fakeStore) Sweep(now int64, max int) (Round, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweeps++
	if f.err != nil {
		return Round{}, f.err
	}
	var due []string
	for k, e := range f.expiry {
		if e <= now {
			due = append(due, k)
		}
	}
	sort.Strings(due)
	var r Round
	for _, k := range due {
		if r.Visited == max {
			r.More = true
			break
		}
		r.Visited++
		r.Expired++
		r.Bytes += 10
		delete(f.expiry, k)
	}
	return r, nil
}

func (f *fakeStore) Reclaim(freed int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reclaims = append(f.reclaims, freed)
	return nil
}

func (f *fakeStore) left() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.expiry)
}

func TestSweeperRemovesExpiredOnEachTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		store := &fakeStore{expiry: map[string]int64{}}
		for i := 0; i < 100; i++ {
			// Half expire after 1s, half after 1h.
			d := time.Second
			if i%2 == 1 {
				d = time.Hour
			}
			store.expiry[string(rune('a'+i%26))+string(rune(i))] = start.Add(d).UnixNano()
		}
		s := NewSweeper(store, Config{Interval: 200 * time.Millisecond})
		s.Start()
		defer s.Stop()

		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		if got := store.left(); got != 100 {
			t.Fatalf("before expiry: %d entries left, want 100", got)
		}
		time.Sleep(400 * time.Millisecond)
		synctest.Wait()
		if got := store.left(); got != 50 {
			t.Fatalf("after 1.3s: %d entries left, want 50", got)
		}
	})
}

func TestSweeperBoundsWorkPerTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &fakeStore{expiry: map[string]int64{}}
		for i := 0; i < 1000; i++ {
			store.expiry[string(rune(i))] = 1
		}
		s := NewSweeper(store, Config{Interval: time.Second, RoundSize: 10, MaxRounds: 5})
		r, err := s.Tick()
		if err != nil {
			t.Fatal(err)
		}
		if r.Expired != 50 || !r.More {
			t.Fatalf("one tick: %+v, want 50 expired and more", r)
		}
		if got := store.left(); got != 950 {
			t.Fatalf("%d left after one tick, want 950", got)
		}
		if len(store.reclaims) != 1 || store.reclaims[0] != 500 {
			t.Fatalf("reclaims %v, want [500]", store.reclaims)
		}
	})
}

func TestSweeperReportsErrorsAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &fakeStore{expiry: map[string]int64{}, err: errors.New("disk on fire")}
		var mu sync.Mutex
		var errs []error
		s := NewSweeper(store, Config{Interval: time.Second, OnError: func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}})
		s.Start()
		time.Sleep(2500 * time.Millisecond)
		s.Stop()
		s.Stop() // idempotent
		mu.Lock()
		defer mu.Unlock()
		if len(errs) != 2 {
			t.Fatalf("%d errors reported, want 2", len(errs))
		}
		sweeps := store.sweeps
		time.Sleep(5 * time.Second)
		if store.sweeps != sweeps {
			t.Fatal("sweeper ran after Stop")
		}
	})
}

func TestIndexKeyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		expiry int64
		ref    string
	}{{1, ""}, {1 << 62, "\x00\x01key"}, {time.Now().UnixNano(), "abcdefgh-user-key"}} {
		k := AppendIndexKey(nil, tc.expiry, []byte(tc.ref))
		e, ref, err := ParseIndexKey(k)
		if err != nil || e != tc.expiry || string(ref) != tc.ref {
			t.Fatalf("ParseIndexKey(%q) = %d %q %v", k, e, ref, err)
		}
		_, upper := IndexBounds(tc.expiry)
		lower, _ := IndexBounds(tc.expiry - 1)
		if string(k) < string(lower) || string(k) >= string(upper) {
			t.Fatalf("key for %d outside IndexBounds", tc.expiry)
		}
	}
	for _, bad := range []string{"", "x", "y12345678", "x1234567"} {
		if _, _, err := ParseIndexKey([]byte(bad)); !errors.Is(err, ErrBadIndexKey) {
			t.Fatalf("ParseIndexKey(%q) err = %v", bad, err)
		}
	}
}

func TestManualClock(t *testing.T) {
	c := NewManualClock(time.Unix(100, 0))
	if got := c.Advance(time.Second); !got.Equal(time.Unix(101, 0)) || !c.Now().Equal(got) {
		t.Fatalf("Advance: %v", got)
	}
	c.Set(time.Unix(5, 0))
	if !c.Now().Equal(time.Unix(5, 0)) {
		t.Fatal("Set did not move the clock")
	}
}
