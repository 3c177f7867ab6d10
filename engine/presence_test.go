package engine

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestPresenceFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := newPresence(100_000)
	in := make([]uint64, 100_000)
	for i := range in {
		in[i] = rng.Uint64()
		p.add(in[i])
	}
	for _, h := range in {
		if !p.mayContain(h) {
			t.Fatalf("added hash %x not found", h)
		}
	}
	var fp int
	const probes = 200_000
	for i := 0; i < probes; i++ {
		if p.mayContain(rng.Uint64()) {
			fp++
		}
	}
	if rate := float64(fp) / probes; rate > 0.03 {
		t.Fatalf("false positive rate %.4f at capacity, want under 3%%", rate)
	}
	if p.full() {
		t.Fatal("full at capacity")
	}
	p.add(1)
	if !p.full() {
		t.Fatal("not full past capacity")
	}

	q, err := decodePresence(encodePresence(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range in {
		if !q.mayContain(h) {
			t.Fatalf("decoded filter lost %x", h)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 15), encodePresence(p)[:100]} {
		if _, err := decodePresence(bad); err == nil {
			t.Fatalf("decodePresence of %d bytes: no error", len(bad))
		}
	}
}

// TestFilterRebuildUnderWrites shrinks the filter so that it fills up and
// is rebuilt while writers run: no key may go missing.
func TestFilterRebuildUnderWrites(t *testing.T) {
	c, _ := openTest(t, nil)
	c.local().keys.cur.Store(newPresence(500))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				if err := c.Set(ctx, fmt.Sprintf("g%d-%d", g, i), []byte("v"), 0); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	for c.local().keys.building.Load() { // let a rebuild in flight finish
		time.Sleep(time.Millisecond)
	}
	for g := 0; g < 4; g++ {
		for i := 0; i < 3000; i++ {
			if _, err := c.Get(ctx, fmt.Sprintf("g%d-%d", g, i)); err != nil {
				t.Fatalf("g%d-%d after filter rebuilds: %v", g, i, err)
			}
		}
	}
	mustLen(t, c, 12000)
	if p := c.local().keys.cur.Load(); p.capacity < presenceMinKeys {
		t.Fatalf("filter was not rebuilt: capacity %d", p.capacity)
	}
}

// TestRecountAfterUncleanClose reopens a store whose state was left dirty,
// as a crash leaves it: counts and filter come back from a scan, and writes
// that race the scan are counted exactly once.
func TestRecountAfterUncleanClose(t *testing.T) {
	dir := uncleanStore(t, 20000)
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 10000; i < 30000; i++ { // half overwrite, half new, during the scan
		if err := c.Set(context.Background(), fmt.Sprint(i), []byte("v2"), 0); err != nil {
			t.Fatal(err)
		}
	}
	mustLen(t, c, 30000)
	if n := countScan(t, c); n != 30000 {
		t.Fatalf("scan finds %d", n)
	}
	mustGet(t, c, "5", []byte("value"))
	mustGet(t, c, "25000", []byte("v2"))
}

// TestRecountWriteAfterBarrier writes a new key the moment the recount's
// barrier is released: the key is counted once, not by the scan as well.
func TestRecountWriteAfterBarrier(t *testing.T) {
	dir := uncleanStore(t, 1000)
	reached, resume := make(chan struct{}), make(chan struct{})
	testHookAfterBarrier = func() {
		close(reached)
		<-resume
	}
	defer func() { testHookAfterBarrier = nil }()
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-reached
	for _, k := range []string{"new", "7"} { // one new key, one overwrite
		if err := c.Set(ctx, k, []byte("v2"), 0); err != nil {
			t.Fatal(err)
		}
	}
	close(resume)
	mustLen(t, c, 1001)
	if n := countScan(t, c); n != 1001 {
		t.Fatalf("scan finds %d", n)
	}
}

// uncleanStore returns the directory of a store holding the keys "0" to
// n-1 (value "value") that was closed without saving its counts, as a
// crash leaves it: the next Open recounts.
func uncleanStore(t *testing.T, n int) string {
	t.Helper()
	return storeOf(t, n, func(c *Cache) {
		c.local().keys.exact.Store(false) // Close then skips saving the state
	})
}

// storeOf returns the directory of a store holding the keys "0" to n-1
// (value "value"), closed after beforeClose ran.
func storeOf(t *testing.T, n int, beforeClose func(*Cache)) string {
	t.Helper()
	dir := t.TempDir()
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := c.Set(ctx, fmt.Sprint(i), []byte("value"), 0); err != nil {
			t.Fatal(err)
		}
	}
	beforeClose(c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func encodePresence(p *presence) []byte {
	var b bytes.Buffer
	p.writeTo(&b)
	return b.Bytes()
}

// TestPresenceLayoutPortable: the word-at-a-time encoding (big-endian
// machines) and the raw one (little-endian) write and read the same bytes.
func TestPresenceLayoutPortable(t *testing.T) {
	p := newPresence(10_000)
	for i := uint64(1); i <= 10_000; i++ {
		p.add(i * 0x9E3779B97F4A7C15)
	}
	raw := encodePresence(p)
	defer func(v bool) { nativeLittleEndian = v }(nativeLittleEndian)
	nativeLittleEndian = false
	if portable := encodePresence(p); !bytes.Equal(raw, portable) {
		t.Fatal("the portable encoding differs from the raw one")
	}
	q, err := readPresence(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodePresence(q), raw) {
		t.Fatal("the portable decoding lost bits")
	}
}

// TestNoteKeyRacesSwap: a new key whose write reads the filters while a
// rebuild swaps its filter in is in the filter that is left: a Get finds it.
func TestNoteKeyRacesSwap(t *testing.T) {
	c, _ := openTest(t, nil)
	s := c.local()
	reached, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	testHookNoteKey = func() {
		once.Do(func() {
			close(reached)
			<-resume
		})
	}
	setDone := make(chan error, 1)
	testHookAfterBarrier = func() {
		go func() { setDone <- c.Set(ctx, "racer", []byte("v"), 0) }()
		<-reached // the writer read its first filter mid-scan
	}
	t.Cleanup(func() { testHookNoteKey, testHookAfterBarrier = nil, nil })
	s.rebuildKeys()
	for s.keys.building.Load() { // the scan swaps its filter in and clears next
		time.Sleep(time.Millisecond)
	}
	close(resume)
	if err := <-setDone; err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "racer", []byte("v"))
}

// A filter saved before 2026-12-05 (10 bits a key, 7 probes) reads as it
// was built: its blocks from the file's size, and no key it holds missing.
func TestPresenceReadsOlderFilters(t *testing.T) {
	const capacity = 50_000
	old := newPresenceBlocks(capacity, (capacity*10+511)/512)
	rng := rand.New(rand.NewPCG(5, 6))
	in := make([]uint64, capacity)
	for i := range in {
		in[i] = rng.Uint64()
		b := old.block(in[i])
		h1, h2 := uint32(in[i]), uint32(in[i]>>32)|1
		for j := range 7 {
			bit := (h1 + uint32(j)*h2) & 511
			b[bit>>6].Or(1 << (bit & 63))
		}
	}
	p, err := decodePresence(encodePresence(old))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.blocks) != len(old.blocks) {
		t.Fatalf("read %d blocks of a filter of %d", len(p.blocks), len(old.blocks))
	}
	for _, h := range in {
		if !p.mayContain(h) {
			t.Fatalf("an older filter read back lost %x", h)
		}
	}
}

// TestClockCoversTheStore: while the access clock covers the store, every
// key stored has a non-zero slot, so a write that takes a zero slot for
// "absent" is right: overwrites of keys written in every way keep Len
// exact, with the clock growing under them. A store reopened after a clean
// Close is covered once its clock's snapshot is in place (a large one
// loads in the background), one without the snapshot once a scan noted
// its keys.
func TestClockCoversTheStore(t *testing.T) {
	// The system clock: the clock's ticks move and its touches write.
	c, err := Open(filepath.Join(t.TempDir(), "cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.local()
	if !s.keys.covered.Load() {
		t.Fatal("a new store is not covered")
	}
	// The clock grows several times on the way, to a snapshot that
	// loads in the background (accessCompressMin).
	const n = 70_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("covered-%d", i)
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 3 {
				var err error
				switch i % 4 {
				case 0:
					err = c.Set(ctx, keys[i], []byte("1"), 0)
				case 1:
					err = c.SetMany(ctx, []Entry{{Key: keys[i], Value: []byte("1"), TTL: time.Hour}})
				case 2:
					_, err = c.SetManyIfAbsent(ctx, []Entry{{Key: keys[i], Value: []byte("1")}})
				default:
					_, err = c.IncrBy(ctx, keys[i], 1)
				}
				if err != nil {
					t.Error(err)
					return
				}
				// Seen at once, a Grow of the clock or not: a Delete
				// right after must not take the key for absent.
				if _, h := s.layout.dataKeyHash(nil, keys[i]); !s.lim.clock.Seen(h) {
					t.Errorf("the clock has not seen %q right after its write", keys[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	checkCovered := func(when string) {
		t.Helper()
		for _, k := range keys {
			if _, h := s.layout.dataKeyHash(nil, k); !s.lim.clock.Seen(h) {
				t.Fatalf("%s: the clock has not seen %q", when, k)
			}
		}
	}
	checkCovered("after the writes")
	for i := 0; i < n; i += 7 {
		if err := c.Set(ctx, keys[i], []byte("again"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	mustLen(t, c, n)

	dir := s.dir
	reopen := func() {
		t.Helper()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if c, err = Open(dir, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s = c.local()
	}
	reopen()
	for !s.lim.loaded.Load() {
		time.Sleep(time.Millisecond)
	}
	if !s.keys.covered.Load() {
		t.Fatal("not covered once the snapshot a clean Close saved is loaded")
	}
	checkCovered("after a clean reopen")
	clockPath := filepath.Join(dir, storeDir, accessFile)
	older, err := os.ReadFile(clockPath)
	if err != nil {
		t.Fatal(err)
	}

	if err := c.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.keys.covered.Load() {
		t.Fatal("not covered after Clear")
	}
	mustLen(t, c, 0)
	for i := range keys[:1000] {
		keys[i] = fmt.Sprintf("after-clear-%d", i)
		if err := c.Set(ctx, keys[i], []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	keys = keys[:1000]
	mustLen(t, c, 1000)
	reopen() // a small snapshot, loaded before Open returns
	if !s.keys.covered.Load() {
		t.Fatal("not covered after a clean reopen")
	}
	checkCovered("after a second clean reopen")

	// A snapshot that is not the one the last Close saved (here an older
	// one, which never saw the keys set since Clear), or none, leaves the
	// store uncovered until a scan notes its keys.
	for _, snapshot := range [][]byte{older, nil} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if snapshot != nil {
			err = os.WriteFile(clockPath, snapshot, 0o644)
		} else {
			err = os.Remove(clockPath)
		}
		if err != nil {
			t.Fatal(err)
		}
		if c, err = Open(dir, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s = c.local()
		for !s.lim.loaded.Load() {
			time.Sleep(time.Millisecond)
		}
		if s.keys.covered.Load() {
			t.Fatalf("covered before any scan, with a snapshot of %d bytes", len(snapshot))
		}
		if err := s.scanKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if !s.keys.covered.Load() {
			t.Fatal("not covered after a scan")
		}
		checkCovered("after a reopen and a scan")
		for _, k := range keys {
			if err := c.Set(ctx, k, []byte("v2"), 0); err != nil {
				t.Fatal(err)
			}
		}
		mustLen(t, c, 1000)
	}
}
