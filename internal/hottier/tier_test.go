package hottier

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/internal/offheap"
)

// valueOf is a value that says which key and version it is, of a length
// that varies with both: a reader can tell a torn or misplaced value.
func valueOf(key string, version uint64) []byte {
	n := 8 + int(version*7+uint64(len(key))*13)%300
	v := make([]byte, n)
	binary.LittleEndian.PutUint64(v, version)
	r := rand.New(rand.NewPCG(version, Hash(key)))
	for i := 8; i < n; i++ {
		v[i] = byte(r.Uint32())
	}
	return v
}

// versionOf checks that v is a value valueOf made for key and returns its
// version.
func versionOf(key string, v []byte) (uint64, error) {
	if len(v) < 8 {
		return 0, fmt.Errorf("%q: a value of %d bytes", key, len(v))
	}
	ver := binary.LittleEndian.Uint64(v)
	if want := valueOf(key, ver); !bytes.Equal(v, want) {
		return 0, fmt.Errorf("%q: a torn or foreign value (version %d, %d bytes)", key, ver, len(v))
	}
	return ver, nil
}

// fill puts a value as the owner fills the tier from a read of its store.
func fill(w *Writer, key string, hash uint64, value []byte, expiry int64) bool {
	w.StartFill()
	defer w.EndFill()
	return w.Put(Record{Key: key, Hash: hash, Value: value, Expiry: expiry, Gen: w.Gen(hash)})
}

func newTier(t testing.TB, size int64) (*Tier, *Writer, *os.File) {
	t.Helper()
	tr, f, err := Create(size, 42)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Unmap(); f.Close() })
	return tr, NewWriter(tr), f
}

func TestPutGetInvalidateClear(t *testing.T) {
	tr, w, _ := newTier(t, MinSize)
	k := "alpha"
	h := Hash(k)
	if _, _, ok := tr.Get(k, h); ok {
		t.Fatal("hit in an empty tier")
	}
	if !fill(w, k, h, []byte("one"), 77) {
		t.Fatal("Put refused a small value")
	}
	v, exp, ok := tr.Get(k, h)
	if !ok || string(v) != "one" || exp != 77 {
		t.Fatalf("Get = %q, %d, %v; want one, 77, true", v, exp, ok)
	}
	if _, _, ok := tr.Get("other", h); ok {
		t.Fatal("a key of another length hit under the same hash")
	}
	w.Invalidate(h)
	if _, _, ok := tr.Get(k, h); ok {
		t.Fatal("hit after Invalidate")
	}
	w.StartFill()
	g := w.Gen(h)
	w.Invalidate(h)
	if w.Put(Record{Key: k, Hash: h, Value: []byte("stale"), Gen: g}) {
		t.Fatal("Put with a generation from before a write stored its value")
	}
	w.EndFill()
	fill(w, k, h, []byte("two"), 0)
	w.StartFill()
	g = w.Gen(h)
	w.Clear()
	if _, _, ok := tr.Get(k, h); ok {
		t.Fatal("hit after Clear")
	}
	if w.Put(Record{Key: k, Hash: h, Value: []byte("stale"), Gen: g}) {
		t.Fatal("Put with a generation from before Clear stored its value")
	}
	w.EndFill()
	if fill(w, k, h, make([]byte, MinSize), 0) {
		t.Fatal("Put stored a value larger than the tier")
	}
}

// TestMatchesModel runs random operations against a map: a hit must give
// the value the model holds (a miss is always allowed), and with the tier
// larger than the data, every key put and not invalidated since must hit.
func TestMatchesModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		r := rand.New(rand.NewPCG(seed, 0))
		checkModel(t, r, 20000, 200, 8<<20, true)
		checkModel(t, r, 20000, 5000, MinSize, false)
	}
}

func FuzzTier(f *testing.F) {
	f.Add(uint64(1), uint16(50))
	f.Add(uint64(7), uint16(3000))
	f.Fuzz(func(t *testing.T, seed uint64, keys uint16) {
		r := rand.New(rand.NewPCG(seed, 1))
		checkModel(t, r, 3000, int(keys)%5000+1, MinSize, false)
	})
}

func checkModel(t testing.TB, r *rand.Rand, ops, keys int, size int64, fits bool) {
	t.Helper()
	tr, w, _ := newTier(t, size)
	model := map[string]uint64{}
	version := uint64(0)
	for i := range ops {
		k := "k" + strconv.Itoa(r.IntN(keys))
		h := Hash(k)
		switch op := r.IntN(10); {
		case op < 5:
			v, _, ok := tr.Get(k, h)
			want, present := model[k]
			if ok {
				ver, err := versionOf(k, v)
				if err != nil || !present || ver != want {
					t.Fatalf("op %d: Get(%s) = version %d (%v), model has %d (present %v)", i, k, ver, err, want, present)
				}
			} else if fits && present {
				t.Fatalf("op %d: Get(%s) missed in a tier that holds everything", i, k)
			}
		case op < 8:
			version++
			if fill(w, k, h, valueOf(k, version), 0) {
				model[k] = version
			} else {
				delete(model, k)
			}
		case op < 9:
			w.Invalidate(h)
			delete(model, k)
		default:
			if r.IntN(50) == 0 {
				w.Clear()
				clear(model)
			}
		}
	}
}

// TestConcurrentReadsAreCoherent plays the owner: writers store a new
// version in a "store", invalidate and acknowledge it; fillers read the
// store and Put what they read; warmers Warm what they read of it
// (while the main ring's first lap lasts); readers check every hit
// against the version acknowledged before their Get began. The tier is small, so the
// rings wrap and records move all the time.
func TestConcurrentReadsAreCoherent(t *testing.T) {
	tr, w, _ := newTier(t, MinSize)
	const keys = 3000
	var mu sync.Mutex
	store := make([]uint64, keys)
	acked := make([]atomic.Uint64, keys)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var hits, reads atomic.Int64
	fail := make(chan error, 1)
	report := func(err error) {
		select {
		case fail <- err:
		default:
		}
		stop.Store(true)
	}
	name := func(i int) string { return "key-" + strconv.Itoa(i) }
	wg.Add(1)
	go func() { // writer
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 1))
		for !stop.Load() {
			i := r.IntN(keys)
			mu.Lock()
			store[i]++
			v := store[i]
			mu.Unlock()
			w.Invalidate(Hash(name(i)))
			acked[i].Store(v)
			if r.IntN(5000) == 0 {
				w.Clear()
			}
		}
	}()
	for g := range 2 { // fillers
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(2, uint64(g)))
			for !stop.Load() {
				i := r.IntN(keys)
				k := name(i)
				h := Hash(k)
				w.StartFill()
				gen := w.Gen(h)
				mu.Lock()
				v := store[i]
				mu.Unlock()
				w.Put(Record{Key: k, Hash: h, Value: valueOf(k, v), Gen: gen})
				w.EndFill()
			}
		}()
	}
	for g := range 2 { // warmers: counts, then a snapshot of the store
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.StartFill()
			defer w.EndFill()
			var gens Gens
			for !stop.Load() {
				w.Gens(&gens)
				mu.Lock()
				snap := slices.Clone(store)
				mu.Unlock()
				var batch []Record
				for i := g; i < keys; i += 2 {
					k := name(i)
					batch = append(batch, Record{Key: k, Hash: Hash(k), Value: valueOf(k, snap[i]), Gen: gens.Of(Hash(k))})
					if len(batch) == 64 || i+2 >= keys {
						if !w.Warm(batch) {
							return // the main ring's first lap is over
						}
						batch = batch[:0]
					}
				}
			}
		}()
	}
	for g := range 3 { // readers
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(3, uint64(g)))
			for !stop.Load() {
				i := r.IntN(keys)
				k := name(i)
				before := acked[i].Load()
				v, _, ok := tr.Get(k, Hash(k))
				reads.Add(1)
				if !ok {
					continue
				}
				hits.Add(1)
				ver, err := versionOf(k, v)
				if err != nil {
					report(err)
					return
				}
				if ver < before {
					report(fmt.Errorf("%s: read version %d after version %d was acknowledged", k, ver, before))
					return
				}
			}
		}()
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-fail:
		t.Fatal(err)
	default:
	}
	if hits.Load() == 0 {
		t.Fatalf("no hits in %d reads", reads.Load())
	}
	t.Logf("%d reads, %d hits", reads.Load(), hits.Load())
}

// TestDamageReadsAsMiss: a way left mid-write (odd sequence number, as a
// writer killed there leaves it) and a record whose bytes changed both
// read as a miss, at once.
func TestDamageReadsAsMiss(t *testing.T) {
	tr, w, _ := newTier(t, MinSize)
	k := "victim"
	h := Hash(k)
	fill(w, k, h, valueOf(k, 1), 0)
	off, ok := w.live(h, small, 0)
	if !ok {
		t.Fatal("no way points to the record just written")
	}
	tr.mem[tr.ringOff[small]+recHeader+3] ^= 0xff // a byte of the key's value
	if _, _, ok := tr.Get(k, h); ok {
		t.Fatal("a record with a changed byte hit")
	}
	fill(w, k, h, valueOf(k, 2), 0)
	if _, _, ok := tr.Get(k, h); !ok {
		t.Fatal("the rewritten record missed")
	}
	seq := tr.word32(off + wSeq)
	*seq |= 1
	done := make(chan bool)
	go func() { _, _, ok := tr.Get(k, h); done <- ok }()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("a way with an odd sequence number hit")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get waited on a way left mid-write")
	}
}

// TestScanKeepsHotSet: keys read over and over stay while a scan of once
// read keys ten times the tier's size goes through.
func TestScanKeepsHotSet(t *testing.T) {
	tr, w, _ := newTier(t, 4<<20)
	get := func(k string) bool {
		h := Hash(k)
		if _, _, ok := tr.Get(k, h); ok {
			return true
		}
		fill(w, k, h, make([]byte, 100), 0)
		return false
	}
	hot := make([]string, 2000) // about 250 KB of records
	for i := range hot {
		hot[i] = "hot-" + strconv.Itoa(i)
	}
	for range 3 {
		for _, k := range hot {
			get(k)
		}
	}
	misses := 0
	for i := range 300000 { // some 40 MB of records
		get("scan-" + strconv.Itoa(i))
		if i%100 == 0 {
			for _, k := range hot[i/100%20*100 : i/100%20*100+100] {
				if !get(k) {
					misses++
				}
			}
		}
	}
	if misses > 300000/100*100/20 {
		t.Fatalf("%d misses of hot keys in %d reads during the scan", misses, 300000)
	}
	t.Logf("hot misses during the scan: %d of %d", misses, 300000)
}

// TestTryPutNeverWaits: a TryPut (a read's fill) that finds the writer's
// lock taken (a warm's batch, another fill) drops its value instead of
// waiting; once the lock is free, the same TryPut stores it. Put (a
// write's) waits for the lock and stores its value.
func TestTryPutNeverWaits(t *testing.T) {
	tr, w, _ := newTier(t, MinSize)
	k := "alpha"
	h := Hash(k)
	r := Record{Key: k, Hash: h, Value: []byte("value"), Gen: w.Gen(h)}
	w.mu.Lock()
	done := make(chan bool)
	go func() { done <- w.TryPut(r) }()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("a TryPut stored its value while the writer's lock was held")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a TryPut waited for the writer's lock")
	}
	if _, _, ok := tr.Get(k, h); ok {
		t.Fatal("the tier holds the value of a TryPut it dropped")
	}
	go func() { done <- w.Put(Record{Key: k, Hash: h, Value: []byte("write"), Gen: w.Gen(h)}) }()
	time.Sleep(10 * time.Millisecond) // let the Put reach the lock
	w.mu.Unlock()
	if !<-done {
		t.Fatal("a Put that waited for the lock was refused")
	}
	if v, _, ok := tr.Get(k, h); !ok || string(v) != "write" {
		t.Fatalf("after the Put the tier answers %q, %v", v, ok)
	}
	k2 := "beta"
	r = Record{Key: k2, Hash: Hash(k2), Value: []byte("value"), Gen: w.Gen(Hash(k2))}
	if !w.TryPut(r) {
		t.Fatal("a TryPut with the lock free was refused")
	}
	if v, _, ok := tr.Get(r.Key, r.Hash); !ok || string(v) != "value" {
		t.Fatalf("after the TryPut the tier answers %q, %v", v, ok)
	}
}

// TestStoredFollowsTheKey: the stored record's size a Put gave is what
// Stored answers while the tier holds the key, also after the record moved
// to the main ring, and nothing after an Invalidate or a Clear, for a key
// of another length, or for a Put that gave none.
func TestStoredFollowsTheKey(t *testing.T) {
	tr, w, _ := newTier(t, MinSize)
	put := func(k string, stored uint32, expiry int64) {
		w.StartFill()
		defer w.EndFill()
		if !w.Put(Record{Key: k, Hash: Hash(k), Value: make([]byte, 100), Expiry: expiry, Gen: w.Gen(Hash(k)), Stored: stored}) {
			t.Fatalf("Put of %s refused", k)
		}
	}
	k := "alpha"
	h := Hash(k)
	if _, _, ok := w.Stored(h, len(k)); ok {
		t.Fatal("Stored answered in an empty tier")
	}
	put(k, 133, 99)
	if n, exp, ok := w.Stored(h, len(k)); !ok || n != 133 || exp != 99 {
		t.Fatalf("Stored = %d, %d, %v; want 133, 99, true", n, exp, ok)
	}
	if _, _, ok := w.Stored(h, len(k)+1); ok {
		t.Fatal("Stored answered for a key of another length")
	}
	// Read it, then push the small ring round: the record moves to main.
	tr.Get(k, h)
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("the record never moved to the main ring")
		}
		put("filler-"+strconv.Itoa(i), 0, 0)
		v, ok := tr.readWay(w.lookWayOf(h), h)
		if ok && v.ring == main {
			break
		}
	}
	if n, exp, ok := w.Stored(h, len(k)); !ok || n != 133 || exp != 99 {
		t.Fatalf("after the move to main Stored = %d, %d, %v; want 133, 99, true", n, exp, ok)
	}
	if v, _, ok := tr.Get(k, h); !ok || len(v) != 100 {
		t.Fatal("the moved record does not read back")
	}
	w.Invalidate(h)
	if _, _, ok := w.Stored(h, len(k)); ok {
		t.Fatal("Stored answered after Invalidate")
	}
	put(k, 0, 0)
	if _, _, ok := w.Stored(h, len(k)); ok {
		t.Fatal("Stored answered for a Put that gave no size")
	}
	put(k, 140, 0)
	w.Clear()
	if _, _, ok := w.Stored(h, len(k)); ok {
		t.Fatal("Stored answered after Clear")
	}
}

// lookWayOf is the way that holds hash's key, for tests.
func (w *Writer) lookWayOf(hash uint64) uint64 {
	off, _, _ := w.lookWay(hash)
	return off
}

// TestBucketIsTopBits: a key's bucket is its hash's top bits, the order
// the engine's store keeps its records in (Tier.slot): keys whose hashes
// differ only in their low bits share one bucket of 8 ways, keys whose
// hashes differ in their top bits do not.
func TestBucketIsTopBits(t *testing.T) {
	tr, w, _ := newTier(t, MinSize)
	held := func(hashes []uint64) int {
		n := 0
		for i, h := range hashes {
			if _, _, ok := tr.Get("k-"+strconv.Itoa(i), h); ok {
				n++
			}
		}
		return n
	}
	var low, high []uint64
	for i := range 20 {
		low = append(low, 0xabc<<52|uint64(i+1))
		high = append(high, uint64(i)<<tr.shift|1)
	}
	for _, hs := range [][]uint64{low, high} {
		for i, h := range hs {
			if !fill(w, "k-"+strconv.Itoa(i), h, []byte("value"), 0) {
				t.Fatalf("put of hash %x refused", h)
			}
		}
	}
	if n := held(low); n > ways {
		t.Errorf("%d keys held whose hashes differ in their low bits only; a bucket has %d ways", n, ways)
	}
	if n := held(high); n != len(high) {
		t.Errorf("%d of %d keys held whose hashes differ in their top bits", n, len(high))
	}
}

// TestGeometryOf: the geometry of a size is the geometry of the tier
// Create makes of it.
func TestGeometryOf(t *testing.T) {
	for _, size := range []int64{0, MinSize, 3 << 20, 16 << 20, 100<<20 + 12345} {
		tr, _, _ := newTier(t, size)
		s1, m1, g1 := tr.Geometry()
		s2, m2, g2 := GeometryOf(size)
		if s1 != s2 || m1 != m2 || g1 != g2 {
			t.Errorf("size %d: Create made (%d, %d, %d), GeometryOf says (%d, %d, %d)", size, s1, m1, g1, s2, m2, g2)
		}
	}
}

// TestMapRefusesDamage: a header that does not describe its memory is
// refused, not trusted.
func TestMapRefusesDamage(t *testing.T) {
	tr, _, f := newTier(t, MinSize)
	for _, c := range []struct {
		off uint64
		val uint64
	}{{hSize, 12345}, {hBuckets, 63}, {hRingSize, 1 << 40}, {hRingOff + 8, 7}} {
		old := *tr.word(c.off)
		*tr.word(c.off) = c.val
		if _, err := Map(f); err == nil {
			t.Errorf("Map accepted a header with word %d = %d", c.off, c.val)
		}
		*tr.word(c.off) = old
	}
	if m, err := Map(f); err != nil {
		t.Fatal(err)
	} else {
		m.Unmap()
	}
}

// TestKilledWriterLeavesNoTornValue: a writer in another process is
// SIGKILLed while it writes; a reader in this process checks every value
// it reads, during the writes and after the kill.
func TestKilledWriterLeavesNoTornValue(t *testing.T) {
	if os.Getenv("HOTTIER_WRITER") != "" {
		return
	}
	for round := range 4 {
		tr, f, err := Create(MinSize, 1)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterChild$")
		cmd.Env = append(os.Environ(), "HOTTIER_WRITER=1")
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(round), 9))
		hits := 0
		check := func() {
			for i := range 500 {
				k := "key-" + strconv.Itoa(i)
				if v, _, ok := tr.Get(k, Hash(k)); ok {
					hits++
					if _, err := versionOf(k, v); err != nil {
						cmd.Process.Kill()
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
		}
		// The writer starts (slowly under -race); then it is killed at
		// a random moment.
		for start := time.Now(); hits == 0 && time.Since(start) < 20*time.Second; {
			check()
		}
		for deadline := time.Now().Add(time.Duration(20+r.IntN(200)) * time.Millisecond); time.Now().Before(deadline); {
			check()
		}
		cmd.Process.Kill()
		cmd.Wait()
		check()
		if hits == 0 {
			t.Errorf("round %d: no hits", round)
		}
		tr.Unmap()
		f.Close()
	}
}

// TestWriterChild is the killed writer of TestKilledWriterLeavesNoTornValue.
func TestWriterChild(t *testing.T) {
	if os.Getenv("HOTTIER_WRITER") == "" {
		t.Skip("runs as a child of TestKilledWriterLeavesNoTornValue")
	}
	tr, err := Map(os.NewFile(3, "tier"))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(tr)
	r := rand.New(rand.NewPCG(5, 5))
	for v := uint64(1); ; v++ {
		k := "key-" + strconv.Itoa(r.IntN(500))
		h := Hash(k)
		if r.IntN(4) == 0 {
			w.Invalidate(h)
		} else {
			fill(w, k, h, valueOf(k, v), 0)
		}
		if _, _, ok := tr.Get(k, h); ok && r.IntN(2) == 0 {
			continue
		}
	}
}

// Warm fills the main ring from a snapshot's counts until it is full, and
// drops a value whose bucket was written after the counts were taken; the
// same when the writer allocates the memory ahead (Prefault).
func TestWarm(t *testing.T) {
	for _, prefault := range []int64{-1, 0, 1 << 20} {
		t.Run(fmt.Sprint("prefault=", prefault), func(t *testing.T) { testWarm(t, prefault) })
	}
}

func testWarm(t *testing.T, prefault int64) {
	tr, w, _ := newTier(t, 4*MinSize)
	var g Gens
	w.StartFill()
	defer w.EndFill()
	if prefault >= 0 {
		w.Prefault(prefault, func() bool { return false })
	}
	w.Gens(&g)
	stale := "stale"
	w.Invalidate(Hash(stale))
	if !w.Warm([]Record{{Key: stale, Hash: Hash(stale), Value: []byte("old"), Gen: g.Of(Hash(stale))}}) {
		t.Fatal("Warm reported a full tier at once")
	}
	if _, _, ok := tr.Get(stale, Hash(stale)); ok {
		t.Fatal("Warm stored a value read before a write of its key")
	}
	n := 0
	for ; ; n++ {
		k := "warm-" + strconv.Itoa(n)
		if !w.Warm([]Record{{Key: k, Hash: Hash(k), Value: valueOf(k, 1), Gen: g.Of(Hash(k))}}) {
			break
		}
	}
	hits := 0
	for i := range n {
		k := "warm-" + strconv.Itoa(i)
		if v, _, ok := tr.Get(k, Hash(k)); ok {
			if _, err := versionOf(k, v); err != nil {
				t.Fatal(err)
			}
			hits++
		}
	}
	if n == 0 || hits < n/2 {
		t.Fatalf("%d of %d warmed keys hit", hits, n)
	}
	t.Logf("warmed %d keys, %d hit", n, hits)
}

// BenchmarkGet reads random keys of a 256 MiB tier warmed with 500,000
// records of 128-byte values (W1 of the benchmarks), all held (hit) or
// none (miss). Run it as
//
//	go test ./internal/hottier -run XXX -bench Get
func BenchmarkGet(b *testing.B) {
	tr, w, _ := newTier(b, 256<<20)
	const n = 500_000
	keys := make([]string, n)
	var g Gens
	w.Gens(&g)
	value := make([]byte, 128)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%012d", i)
		w.Warm([]Record{{Key: keys[i], Hash: Hash(keys[i]), Value: value, Gen: g.Of(Hash(keys[i]))}})
	}
	for _, c := range []struct {
		name   string
		prefix string
	}{{"hit", ""}, {"miss", "absent-"}} {
		b.Run(c.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			hits := 0
			for b.Loop() {
				k := c.prefix + keys[r.IntN(n)]
				if _, _, ok := tr.Get(k, Hash(k)); ok {
					hits++
				}
			}
			b.ReportMetric(float64(hits)/float64(b.N)*100, "%hit")
		})
	}
}

// resident reports, for each page of mem, whether the kernel has
// allocated it.
func resident(t *testing.T, mem []byte) []bool {
	t.Helper()
	in := offheap.Touched(mem)
	if in == nil {
		t.Skip("mincore cannot tell")
	}
	return in
}

// PrefaultIndex allocates the index's pages when the keys to come will
// touch most of them, a chunk at a time until stopped, once; and leaves
// the tier's contents as they were.
func TestPrefaultIndex(t *testing.T) {
	tr, w, _ := newTier(t, 16*MinSize)
	index := tr.mem[headerSize : headerSize+(tr.mask+1)*bucketSize]
	pages := int64(len(index) / pageSize)
	count := func() int {
		n, _, ok := offheap.CountTouched(index)
		if !ok {
			t.Skip("mincore cannot tell")
		}
		return n
	}
	k := "kept"
	fill(w, k, Hash(k), []byte("value"), 0)
	before := count()
	w.PrefaultIndex(pages-1, func() bool { return false })
	if got := count(); got != before {
		t.Fatalf("fewer keys than pages: %d pages allocated, want %d", got, before)
	}
	calls := 0
	w.PrefaultIndex(pages, func() bool { calls++; return calls > 1 })
	if got, want := count(), faultChunk/pageSize; got < want || got >= int(pages) {
		t.Fatalf("stopped after one chunk: %d of %d pages allocated, want %d or a few more", got, pages, want)
	}
	w.PrefaultIndex(pages, func() bool { return false })
	if got := count(); got >= int(pages) {
		t.Fatalf("a second PrefaultIndex ran: %d of %d pages allocated", got, pages)
	}
	tr2, w2, _ := newTier(t, 16*MinSize)
	fill(w2, k, Hash(k), []byte("value"), 0)
	w2.PrefaultIndex(pages, func() bool { return false })
	if in := resident(t, tr2.mem[headerSize:headerSize+len(index)]); slices.Contains(in, false) {
		t.Fatalf("index page %d of %d left unallocated", slices.Index(in, false), pages)
	}
	if v, _, ok := tr2.Get(k, Hash(k)); !ok || string(v) != "value" {
		t.Fatalf("after PrefaultIndex: Get = %q, %v; want the value written before", v, ok)
	}
}
