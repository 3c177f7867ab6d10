package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/diskcache-go/diskcache/benchmarks/internal/lifecycle"
	"github.com/diskcache-go/diskcache/engine"
)

// A child is the harness binary re-executed to run one workload against one
// Go peer, so that peak RSS, the Go heap and the block cache are that peer's
// alone. It prints its result as the last line of stdout; during W7 it also
// prints "ready" and waits for "go" on stdin before each phase, and prints
// "done" after it; W9's crash fill prints "filled" and waits to be killed.

// job is what a child runs.
type job struct {
	Peer string
	// Workload is W1..W7 or W11; "fill" (W1 as a prerequisite, not reported);
	// or a step of W8 or W9, which the parent runs in several processes:
	// W8proc, W8loop, W9fill, W9reopen.
	Workload string
	Dir      string
	Scale    float64
	Part     int   // W7, W8proc: which of the processes this is; W10: the run
	Tier     int64 `json:",omitempty"` // diskcache's HotTierSize (-tier)

	// W10: the deployment, and the address of its server.
	Deployment string `json:",omitempty"`
	Addr       string `json:",omitempty"`

	// W9: the store's key count and size limit; GetsBefore: the fill
	// also runs the Gets before its Close; Crash: the fill waits to be
	// killed instead of closing.
	Keys       int   `json:",omitempty"`
	Limit      int64 `json:",omitempty"`
	GetsBefore bool  `json:",omitempty"`
	Crash      bool  `json:",omitempty"`
}

// result is what a child (Go or Python) reports.
type result struct {
	// Seconds is the timed part; a run shorter than shortRun is repeated.
	Seconds float64            `json:"seconds"`
	Metrics map[string]float64 `json:"metrics"`
	PeakRSS int64              `json:"peak_rss"`
	// BaseRSS is the peak RSS before the store was opened: the harness's
	// own share (the generated keys and op streams).
	BaseRSS int64  `json:"base_rss"`
	Error   string `json:"error,omitempty"`
	// Unsupported says why the peer cannot run the workload (yet).
	Unsupported string `json:"unsupported,omitempty"`

	// Filled in by the parent.
	DiskPeak  int64  `json:"-"`
	DiskAfter int64  `json:"-"`
	Runs      int    `json:"-"`
	Skipped   string `json:"-"`
}

func runChild(j job, in io.Reader, out io.Writer) error {
	pr, err := peerByName(j.Peer)
	if err != nil {
		return err
	}
	c := &childRun{job: j, peer: pr, p: newParams(j.Scale), in: bufio.NewReader(in), out: out}
	if j.Workload != "W8proc" {
		// W8's processes measure process start: they build nothing more.
		c.pl = newPools()
	}
	res := result{Metrics: map[string]float64{}}
	c.res = &res
	var run func() error
	switch j.Workload {
	case "fill", "W1":
		run = c.w1
	case "W2":
		run = c.w2
	case "W3":
		run = c.w3
	case "W4":
		run = c.w4
	case "W5":
		run = c.w5
	case "W6":
		run = c.w6
	case "W7":
		run = c.w7
	case "W8proc":
		run = c.w8proc
	case "W8loop":
		run = c.w8loop
	case "W9fill":
		run = c.w9fill
	case "W9reopen":
		run = c.w9reopen
	case "W10":
		run = c.w10
	case "W11":
		run = c.w11
	default:
		return fmt.Errorf("unknown workload %q", j.Workload)
	}
	if err := run(); err != nil {
		res.Error = err.Error()
	}
	res.PeakRSS = peakRSS()
	line, _ := json.Marshal(res)
	fmt.Fprintf(out, "%s\n", line)
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

type childRun struct {
	job  job
	peer peer
	p    params
	pl   pools
	in   *bufio.Reader
	out  io.Writer
	res  *result
}

// open records the harness's own RSS, then opens the peer's store.
func (c *childRun) open(o storeOptions) (*closeOnce, error) {
	c.res.BaseRSS = peakRSS()
	if c.peer.open == nil {
		return nil, fmt.Errorf("%s runs in its own script", c.peer.name)
	}
	o.HotTierSize = c.job.Tier
	s, err := c.peer.open(c.job.Dir, o)
	if err != nil {
		return nil, err
	}
	return &closeOnce{store: s}, nil
}

// closeOnce lets a workload defer Close for its error paths and still
// check the error of the Close that ends it (Pebble panics on a second).
type closeOnce struct {
	store
	once sync.Once
	err  error
}

func (s *closeOnce) Close() error {
	s.once.Do(func() { s.err = s.store.Close() })
	return s.err
}

func (c *childRun) metric(name string, v float64) { c.res.Metrics[name] = v }

// ops runs fn over ops split into contiguous parts, one a worker, and
// returns the elapsed time and, when lat, every op's latency sorted.
func ops[T any](workers int, all []T, lat bool, fn func(w int, op T) error) (time.Duration, []time.Duration, error) {
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		errs    = make([]error, workers)
		lats    = make([][]time.Duration, workers)
		elapsed time.Duration
	)
	for w := range workers {
		part := chunk(all, w, workers)
		if lat {
			lats[w] = make([]time.Duration, 0, len(part))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for _, op := range part {
				var t0 time.Time
				if lat {
					t0 = time.Now()
				}
				if err := fn(w, op); err != nil {
					errs[w] = err
					return
				}
				if lat {
					lats[w] = append(lats[w], time.Since(t0))
				}
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed = time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return elapsed, nil, err
	}
	var sorted []time.Duration
	if lat {
		sorted = slices.Concat(lats...)
		slices.Sort(sorted)
	}
	return elapsed, sorted, nil
}

func perSec(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// verify reads back a sample of keys and checks their values, untimed.
func (c *childRun) verify(s store, keys []string, base, size int, salts ...uint64) error {
	step := max(1, len(keys)/1000)
	var want []byte
	for i := 0; i < len(keys); i += step {
		v, ok, err := s.Get(keys[i])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("key %q (index %d) missing after it was set", keys[i], base+i)
		}
		match := false
		for _, salt := range salts {
			want = c.pl.appendValue(want[:0], base+i, size, salt)
			match = match || bytes.Equal(v, want)
		}
		if !match {
			return fmt.Errorf("key %q (index %d): wrong value (%d bytes)", keys[i], base+i, len(v))
		}
	}
	return nil
}

// setAll sets keys[order[i]] in order with one worker.
func (c *childRun) setAll(s store, keys []string, base int, order []uint32, size int, salt uint64, ttl time.Duration) (time.Duration, error) {
	var buf []byte
	el, _, err := ops(1, order, false, func(_ int, i uint32) error {
		buf = c.pl.appendValue(buf[:0], base+int(i), size, salt)
		return s.Set(keys[i], buf, ttl)
	})
	return el, err
}

// iota32 is 0..n-1.
func iota32(n int) []uint32 {
	o := make([]uint32, n)
	for i := range o {
		o[i] = uint32(i)
	}
	return o
}

// W1 fill: N1 Sets of 128-byte values in random order.
func (c *childRun) w1() error {
	keys := keyRange(0, c.p.N1)
	order := orderW1(c.p)
	s, err := c.open(storeOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	el, err := c.setAll(s, keys, 0, order, valueW1, saltW1, 0)
	if err != nil {
		return err
	}
	c.res.Seconds = el.Seconds()
	c.metric("set_ops", perSec(len(order), el))
	if err := c.verify(s, keys, 0, valueW1, saltW1); err != nil {
		return err
	}
	return s.Close()
}

// W2 read: N2 uniform Gets over W1's keys with 1, then workersW2 workers.
func (c *childRun) w2() error {
	keys := keyRange(0, c.p.N1)
	gets := getsW2(c.p)
	s, err := c.open(storeOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	for _, workers := range []int{1, workersW2} {
		misses := make([]int, workers)
		el, lat, err := ops(workers, gets, true, func(w int, i uint32) error {
			_, ok, err := s.Get(keys[i])
			if !ok {
				misses[w]++
			}
			return err
		})
		if err != nil {
			return err
		}
		if m := sum(misses); m > 0 {
			return fmt.Errorf("%d of %d Gets of W1's keys missed", m, len(gets))
		}
		sfx := fmt.Sprint("_", workers)
		c.res.Seconds += el.Seconds()
		c.metric("get_ops"+sfx, perSec(len(gets), el))
		c.metric("p50_us"+sfx, micros(percentile(lat, 50)))
		c.metric("p99_us"+sfx, micros(percentile(lat, 99)))
	}
	return s.Close()
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// W3 zipf: N3 ops over W1's keys, 90% Get / 10% Set, workersW3 workers.
func (c *childRun) w3() error {
	keys := keyRange(0, c.p.N1)
	all := opsW3(c.p)
	s, err := c.open(storeOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	el, misses, err := c.mixed(s, keys, workersW3, all)
	if err != nil {
		return err
	}
	if misses > 0 {
		return fmt.Errorf("%d Gets of W1's keys missed", misses)
	}
	c.res.Seconds = el.Seconds()
	c.metric("ops", perSec(len(all), el))
	return s.Close()
}

// mixed runs a W3 stream and counts the Gets that missed.
func (c *childRun) mixed(s store, keys []string, workers int, all []uint32) (time.Duration, int, error) {
	bufs := make([][]byte, workers)
	misses := make([]int, workers)
	el, _, err := ops(workers, all, false, func(w int, o uint32) error {
		i := o &^ setBit
		if o&setBit != 0 {
			bufs[w] = c.pl.appendValue(bufs[w][:0], int(i), valueW1, saltW3)
			return s.Set(keys[i], bufs[w], 0)
		}
		_, ok, err := s.Get(keys[i])
		if !ok {
			misses[w]++
		}
		return err
	})
	return el, sum(misses), err
}

// W4 large: N4 Sets of 16 KiB values, then N4 uniform Gets.
func (c *childRun) w4() error {
	base := c.p.base4()
	keys := keyRange(base, base+c.p.N4)
	gets := getsW4(c.p)
	s, err := c.open(storeOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	el, err := c.setAll(s, keys, base, iota32(c.p.N4), valueW4, saltW4, 0)
	if err != nil {
		return err
	}
	mb := float64(c.p.N4*valueW4) / 1e6
	c.res.Seconds = el.Seconds()
	c.metric("set_ops", perSec(c.p.N4, el))
	c.metric("set_mbs", mb/el.Seconds())
	el, _, err = ops(1, gets, false, func(_ int, i uint32) error {
		v, ok, err := s.Get(keys[int(i)-base])
		if err == nil && (!ok || len(v) != valueW4) {
			err = fmt.Errorf("key index %d: got %d bytes, ok=%v", i, len(v), ok)
		}
		return err
	})
	if err != nil {
		return err
	}
	c.res.Seconds += el.Seconds()
	c.metric("get_ops", perSec(len(gets), el))
	c.metric("get_mbs", mb/el.Seconds())
	if err := c.verify(s, keys, base, valueW4, saltW4); err != nil {
		return err
	}
	return s.Close()
}

// W5 TTL: N5 Sets with ttlW5; checkW5 after the last Set none may be
// returned; then wait up to the window for the disk space to come back, and
// if less than half came back, ask the peer to reclaim if it has a way.
func (c *childRun) w5() error {
	base := c.p.base5()
	keys := keyRange(base, base+c.p.N5)
	s, err := c.open(storeOptions{SweepInterval: time.Second})
	if err != nil {
		return err
	}
	defer s.Close()
	empty := diskBytes(c.job.Dir)
	el, err := c.setAll(s, keys, base, iota32(c.p.N5), valueW1, saltW5, ttlW5)
	if err != nil {
		return err
	}
	setEnd := time.Now()
	c.res.Seconds = el.Seconds()
	c.metric("set_ops", perSec(c.p.N5, el))
	peak := diskBytes(c.job.Dir)

	time.Sleep(time.Until(setEnd.Add(checkW5)))
	returned := 0
	for _, k := range keys {
		_, ok, err := s.Get(k)
		if err != nil {
			return err
		}
		if ok {
			returned++
		}
	}
	c.metric("returned", float64(returned))

	// Watch the space come back: stop at the window's end, or once half of
	// what the Sets added is back and nothing more came back for settleW5.
	last, low := -1.0, peak
	var d int64
	for {
		d = diskBytes(c.job.Dir)
		peak = max(peak, d)
		since := time.Since(setEnd).Seconds()
		if d < low-(peak-empty)/100 {
			last, low = since, d
		}
		back := float64(peak-d) / float64(max(peak-empty, 1))
		if since >= c.p.Window.Seconds() || (back >= 0.5 && since-last >= settleW5.Seconds()) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	back := float64(peak-d) / float64(max(peak-empty, 1))
	c.metric("back", back)
	c.metric("reclaim_s", last)
	c.metric("disk_empty", float64(empty))
	c.metric("disk_peak", float64(peak))
	c.metric("disk_wait", float64(d))
	if r, ok := s.store.(reclaimer); ok && back < 0.5 {
		t0 := time.Now()
		if err := r.Reclaim(); err != nil {
			return fmt.Errorf("reclaim: %w", err)
		}
		// Stores drop obsolete files in the background (Pebble paces its
		// deletions): the time counts until the disk use stops falling.
		c.metric("disk_explicit", float64(settle(c.job.Dir)))
		c.metric("explicit_s", time.Since(t0).Seconds())
	} else if !ok {
		c.metric("no_explicit", 1)
	}
	if returned > 0 {
		return fmt.Errorf("%d of %d entries came back %s after they expired", returned, len(keys), checkW5-ttlW5)
	}
	return s.Close()
}

// W6 size limit: a Limit-sized cache gets 5x its size in 4 KiB values; a hot
// set is set first and one hot key is read after every other Set. A hot
// Get that misses sets the key again, as a cache-aside caller would.
func (c *childRun) w6() error {
	base := c.p.base6()
	keys := keyRange(base, base+c.p.N6)
	s, err := c.open(storeOptions{SizeLimit: c.p.Limit, LRU: true})
	if err != nil {
		return err
	}
	defer s.Close()
	var buf []byte
	set := func(j int) error {
		buf = c.pl.appendValue(buf[:0], base+j, valueW6, saltW6)
		return s.Set(keys[j], buf, 0)
	}
	hits, gets, sets := 0, 0, 0
	t0 := time.Now()
	for j := range c.p.Hot6 {
		if err := set(j); err != nil {
			return err
		}
		sets++
	}
	for j := c.p.Hot6; j < c.p.N6; j++ {
		if err := set(j); err != nil {
			return err
		}
		sets++
		h := j % c.p.Hot6
		_, ok, err := s.Get(keys[h])
		if err != nil {
			return err
		}
		gets++
		if ok {
			hits++
		} else if err := set(h); err != nil {
			return err
		} else {
			sets++
		}
	}
	el := time.Since(t0)
	c.res.Seconds = el.Seconds()
	c.metric("ops", perSec(sets+gets, el))
	c.metric("set_ops", perSec(sets, el))
	c.metric("hot_hit", float64(hits)/float64(gets))
	c.metric("disk_open", float64(diskBytes(c.job.Dir)))
	return s.Close()
}

// W11 held at the limit: a cache with a limitW11 size limit gets N11 Sets
// of valueW11 bytes it cannot compress, under fresh keys, one writer, no
// reads. Once its disk use settles, the entries it holds are counted by a
// full scan: the count a limit leaves is what its users get of it.
func (c *childRun) w11() error {
	base := c.p.base11()
	keys := keyRange(base, base+c.p.N11)
	s, err := c.open(storeOptions{SizeLimit: limitW11, LRU: true})
	if err != nil {
		return err
	}
	defer s.Close()
	cnt, ok := s.store.(counter)
	if !ok {
		return fmt.Errorf("%s cannot count its entries", c.peer.name)
	}
	var buf []byte
	t0 := time.Now()
	for j, k := range keys {
		buf = c.pl.appendRandom(buf[:0], base+j, valueW11, saltW11)
		if err := s.Set(k, buf, 0); err != nil {
			return err
		}
	}
	el := time.Since(t0)
	c.res.Seconds = el.Seconds()
	c.metric("set_ops", perSec(len(keys), el))
	c.metric("disk_settled", float64(settle(c.job.Dir)))
	held, err := cnt.ScanLen()
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	n, err := cnt.Len()
	if err != nil {
		return fmt.Errorf("len: %w", err)
	}
	c.metric("held", float64(held))
	c.metric("held_len", float64(n))
	if err := c.verifyHeld(s, keys, base, int(held)); err != nil {
		return err
	}
	return s.Close()
}

// verifyHeld checks W11's count and reads back about 1,000 of its keys:
// which keys the limit left is the eviction's choice, but one it left must
// have the value set, and one at least must be left.
func (c *childRun) verifyHeld(s store, keys []string, base, held int) error {
	if held <= 0 || held > len(keys) {
		return fmt.Errorf("%d entries held after %d Sets", held, len(keys))
	}
	step := max(1, len(keys)/1000)
	var want []byte
	for j := 0; j < len(keys); j += step {
		v, ok, err := s.Get(keys[j])
		if err != nil {
			return err
		}
		want = c.pl.appendRandom(want[:0], base+j, valueW11, saltW11)
		if ok && !bytes.Equal(v, want) {
			return fmt.Errorf("key %q (index %d): wrong value (%d bytes)", keys[j], base+j, len(v))
		}
	}
	return nil
}

// W7 multi-process: this is process Part of procsW7 on one directory that
// W1 filled; it runs its part of W2's Gets, then of W3's ops, each phase
// started by the parent so that all processes run it together.
func (c *childRun) w7() error {
	keys := keyRange(0, c.p.N1)
	gets := chunk(getsW2(c.p), c.job.Part, procsW7)
	mixedOps := chunk(opsW3(c.p), c.job.Part, procsW7)
	s, err := c.open(storeOptions{})
	if errors.Is(err, engine.ErrOwned) {
		c.res.Unsupported = "not yet: needs the owner handoff (a second process gets ErrOwned)"
		return nil
	}
	if err != nil {
		return err
	}
	defer s.Close()
	phase := func(name string, run func() (time.Duration, error)) error {
		fmt.Fprintln(c.out, "ready")
		if _, err := c.in.ReadString('\n'); err != nil {
			return fmt.Errorf("waiting for go: %w", err)
		}
		el, err := run()
		if err != nil {
			return err
		}
		fmt.Fprintln(c.out, "done")
		c.res.Seconds += el.Seconds()
		c.metric(name+"_s", el.Seconds())
		return nil
	}
	err = phase("w2", func() (time.Duration, error) {
		el, _, err := ops(1, gets, false, func(_ int, i uint32) error {
			_, _, err := s.Get(keys[i])
			return err
		})
		return el, err
	})
	if err != nil {
		return err
	}
	err = phase("w3", func() (time.Duration, error) {
		el, _, err := c.mixed(s, keys, 1, mixedOps)
		return el, err
	})
	if err != nil {
		return err
	}
	return s.Close()
}

// W8 process: one of the model's procsW8 processes, each started fresh:
// Open with the defaults, one Set with ttlW8, Close. The harness's binary
// starts slower than a small program; W8 also runs opensetclose.
func (c *childRun) w8proc() error {
	m, err := lifecycle.OpenSetClose(c.job.Dir, keyW8, fmt.Appendf(nil, "process %d", c.job.Part), ttlW8)
	c.res.Metrics = m
	c.res.Seconds = m["open_s"] + m["set_s"] + m["close_s"]
	return err
}

// W8 loop: a cache of keysW8 keys, then N8 cycles of Open, one Set with
// ttlW8, Close, each cycle timed.
func (c *childRun) w8loop() error {
	keys := keyRange(0, keysW8)
	s, err := c.open(storeOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := c.setAll(s, keys, 0, iota32(keysW8), valueW1, saltW8, 0); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	var cycles, opens, closes []time.Duration
	var buf []byte
	for j := range c.p.N8 {
		i := j % keysW8
		buf = c.pl.appendValue(buf[:0], i, valueW1, saltW8)
		t0 := time.Now()
		s, err := c.peer.open(c.job.Dir, storeOptions{})
		if err != nil {
			return fmt.Errorf("cycle %d: %w", j, err)
		}
		t1 := time.Now()
		if err := s.Set(keys[i], buf, ttlW8); err != nil {
			s.Close()
			return fmt.Errorf("cycle %d: %w", j, err)
		}
		t2 := time.Now()
		if err := s.Close(); err != nil {
			return fmt.Errorf("cycle %d: %w", j, err)
		}
		t3 := time.Now()
		cycles = append(cycles, t3.Sub(t0))
		opens = append(opens, t1.Sub(t0))
		closes = append(closes, t3.Sub(t2))
		c.res.Seconds += t3.Sub(t0).Seconds()
	}
	for _, d := range [][]time.Duration{cycles, opens, closes} {
		slices.Sort(d)
	}
	c.metric("cycle_p50_ms", millis(percentile(cycles, 50)))
	c.metric("cycle_p99_ms", millis(percentile(cycles, 99)))
	c.metric("open_p50_ms", millis(percentile(opens, 50)))
	c.metric("close_p50_ms", millis(percentile(closes, 50)))
	// The cycles' Sets carry ttlW8, which a long loop outlasts: check the
	// keys no cycle set, and the last cycle's.
	s, err = c.open(storeOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	lo, last := min(c.p.N8, keysW8), (c.p.N8-1)%keysW8
	if err := c.verify(s, keys[lo:], lo, valueW1, saltW8); err != nil {
		return err
	}
	if err := c.verify(s, keys[last:last+1], last, valueW1, saltW8); err != nil {
		return err
	}
	return s.Close()
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// W9 fill: Keys Sets of 128 B under Limit, key(i) made as it goes; then,
// when asked, W9's Gets before the Close, which is timed. A crash fill
// says "filled" and waits for the parent's SIGKILL instead of closing.
func (c *childRun) w9fill() error {
	s, err := c.open(storeOptions{SizeLimit: c.job.Limit})
	if err != nil {
		return err
	}
	defer s.Close()
	var buf []byte
	t0 := time.Now()
	for i := range c.job.Keys {
		buf = c.pl.appendValue(buf[:0], i, valueW1, saltW9)
		if err := s.Set(key(i), buf, 0); err != nil {
			return err
		}
	}
	el := time.Since(t0)
	c.res.Seconds = el.Seconds()
	c.metric("set_ops", perSec(c.job.Keys, el))
	if err := c.verify9(s); err != nil {
		return err
	}
	if c.job.Crash {
		fmt.Fprintln(c.out, "filled")
		c.in.ReadString('\n')
		return errors.New("the crash fill was not killed")
	}
	if c.job.GetsBefore {
		el, err := c.gets9(s)
		if err != nil {
			return err
		}
		c.res.Seconds += el.Seconds()
		c.metric("get_ops", perSec(c.p.N9Gets, el))
	}
	t0 = time.Now()
	err = s.Close()
	c.metric("close_s", time.Since(t0).Seconds())
	return err
}

// W9 reopen: Open the store a fill left (timed), W9's Gets right away, Close.
func (c *childRun) w9reopen() error {
	t0 := time.Now()
	s, err := c.open(storeOptions{SizeLimit: c.job.Limit})
	if err != nil {
		return err
	}
	defer s.Close()
	c.metric("open_s", time.Since(t0).Seconds())
	el, err := c.gets9(s)
	if err != nil {
		return err
	}
	c.res.Seconds = el.Seconds()
	c.metric("get_ops", perSec(c.p.N9Gets, el))
	if err := c.verify9(s); err != nil {
		return err
	}
	t0 = time.Now()
	err = s.Close()
	c.metric("close_s", time.Since(t0).Seconds())
	return err
}

// gets9 runs W9's Gets with one worker; every key was set, so a miss is
// an error.
func (c *childRun) gets9(s store) (time.Duration, error) {
	misses := 0
	t0 := time.Now()
	err := getsW9(c.job.Keys, c.p.N9Gets, func(i int) error {
		_, ok, err := s.Get(key(i))
		if !ok {
			misses++
		}
		return err
	})
	el := time.Since(t0)
	if err == nil && misses > 0 {
		err = fmt.Errorf("%d of %d Gets of the %d keys set missed", misses, c.p.N9Gets, c.job.Keys)
	}
	return el, err
}

// verify9 reads back about 1,000 of W9's keys and checks their values.
func (c *childRun) verify9(s store) error {
	step := max(1, c.job.Keys/1000)
	var want []byte
	for i := 0; i < c.job.Keys; i += step {
		v, ok, err := s.Get(key(i))
		if err != nil {
			return err
		}
		want = c.pl.appendValue(want[:0], i, valueW1, saltW9)
		if !ok || !bytes.Equal(v, want) {
			return fmt.Errorf("key %q (index %d): ok=%v, %d bytes, want the %d set", key(i), i, ok, len(v), len(want))
		}
	}
	return nil
}

// childMain is main for a re-executed child: the job comes as JSON in
// argv, the result goes to stdout.
func childMain(arg string) {
	var j job
	if err := json.Unmarshal([]byte(arg), &j); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	if err := runChild(j, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "child %s %s: %v\n", j.Peer, j.Workload, err)
		os.Exit(1)
	}
}
