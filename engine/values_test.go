package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// valueLogSize is what the value log of c takes.
func valueLogSize(c *Cache) int64 { return c.local().valuesSize() }

// TestValueLogRoundTrip: values from ValueThreshold up live in the value
// log and read back through every call that reads or rewrites a value;
// Len, Stats and Check agree with them, before and after reopening.
func TestValueLogRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	for i := range 200 {
		k := fmt.Sprintf("key-%d", i)
		v := randValue(rng, 1<<10+i*37) // from the threshold up
		if i%2 == 0 {
			v = bytes.Repeat([]byte(k+" compresses "), 100+i) // stored compressed
		}
		if err := c.Set(ctx, k, v, 0); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	want["small"] = []byte("stays in Pebble")
	c.Set(ctx, "small", want["small"], 0)
	if valueLogSize(c) < 200<<10 {
		t.Fatalf("the value log holds %d bytes after 200 values of 1-8 KiB", valueLogSize(c))
	}
	check := func(c *Cache, when string) {
		t.Helper()
		for k, v := range want {
			got, err := c.Get(ctx, k)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("%s: Get %s = %d bytes, %v; want %d bytes", when, k, len(got), err, len(v))
			}
		}
		mustLen(t, c, int64(len(want)))
	}
	check(c, "after writing")
	many, err := c.GetMany(ctx, []string{"key-3", "key-4", "small"})
	if err != nil || !bytes.Equal(many["key-3"], want["key-3"]) || !bytes.Equal(many["key-4"], want["key-4"]) {
		t.Fatalf("GetMany: %v", err)
	}
	// Rewrites that read the old value.
	if r, err := c.SetWithOptions(ctx, "key-5", want["key-6"], SetOptions{Get: true}); err != nil || !bytes.Equal(r.Old, want["key-5"]) {
		t.Fatalf("SET GET: %d bytes old, %v", len(r.Old), err)
	}
	want["key-5"] = want["key-6"]
	if n, err := c.Append(ctx, "key-7", []byte("tail")); err != nil || n != len(want["key-7"])+4 {
		t.Fatalf("Append = %d, %v", n, err)
	}
	want["key-7"] = append(bytes.Clone(want["key-7"]), "tail"...)
	if _, err := c.Expire(ctx, "key-8", Expiry{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetDelete(ctx, "key-9"); err != nil || !bytes.Equal(v, want["key-9"]) {
		t.Fatalf("GetDelete: %v", err)
	}
	delete(want, "key-9")
	if err := c.SetMany(ctx, []Entry{{Key: "many-1", Value: want["key-10"]}, {Key: "many-2", Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	want["many-1"], want["many-2"] = want["key-10"], []byte("x")
	check(c, "after rewrites")
	st := c.Stats()
	if st.DiskBytes < valueLogSize(c) {
		t.Fatalf("Stats.DiskBytes %d leaves out the value log's %d", st.DiskBytes, valueLogSize(c))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, dir, nil)
	if err != nil || r.Damaged() || r.Segments == 0 || r.Entries != int64(len(want)) {
		t.Fatalf("Check = %+v, %v; want no problems, %d entries and the value log's segments", r, err, len(want))
	}
	c, err = Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check(c, "after reopening")
	// A cache opened with the value log turned off still reads it.
	c.Close()
	c, err = Open(dir, &Options{SizeLimit: 64 << 20, ValueThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check(c, "reopened with ValueThreshold -1")
	before := valueLogSize(c)
	c.Set(ctx, "new-large", randValue(rng, 8<<10), 0)
	if valueLogSize(c) != before {
		t.Fatal("a value was written to the value log with ValueThreshold -1")
	}
}

// TestValueLogCollection overwrites and deletes large values until most
// of the value log is garbage: the collector gives it back a segment at a
// time, while readers read every key all along, and no value changes.
func TestValueLogCollection(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 12 MiB and waits for the collector")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir, &Options{SizeLimit: 64 << 20}) // 1 MiB segments
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const keys = 300
	var mu sync.RWMutex
	want := map[string][]byte{}
	rng := rand.New(rand.NewPCG(3, 4))
	write := func(round int) {
		for i := range keys {
			k := fmt.Sprintf("key-%d", i)
			v := randValue(rng, 4<<10)
			mu.Lock() // readers see want and the store change together
			err := c.Set(ctx, k, v, 0)
			want[k] = v
			mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var reads atomic.Int64
	for g := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("key-%d", r.IntN(keys))
				// The value read must be the one stored before the read or
				// one written since: hold the lock across the Get.
				mu.RLock()
				v, err := c.Get(ctx, k)
				exp, ok := want[k]
				mu.RUnlock()
				reads.Add(1)
				if ok && (err != nil || !bytes.Equal(v, exp)) {
					t.Errorf("Get %s during collection: %d bytes, %v", k, len(v), err)
					return
				}
			}
		}()
	}
	for round := range 10 {
		write(round)
	}
	live := c.Stats().Bytes
	// Ten rounds wrote ten times the live data: wait for the collector to
	// give back all but the allowed slack (two segments, or an eighth of
	// the live bytes).
	deadline := time.Now().Add(30 * time.Second)
	for valueLogSize(c) > live+max(2<<20, live/8)+(1<<20) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	readers.Wait()
	if got := valueLogSize(c); got > live+max(2<<20, live/8)+(1<<20) {
		t.Fatalf("the value log holds %d bytes for %d live after 30 s", got, live)
	}
	t.Logf("value log %d bytes for %d live; %d reads during collection", valueLogSize(c), live, reads.Load())
	for k, v := range want {
		mustGet(t, c, k, v)
	}
	// Deleted values go too.
	for i := range keys {
		c.Delete(ctx, fmt.Sprintf("key-%d", i))
	}
	deadline = time.Now().Add(30 * time.Second)
	for valueLogSize(c) > 3<<20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := valueLogSize(c); got > 3<<20 {
		t.Fatalf("the value log holds %d bytes after every key was deleted", got)
	}
	c.Close()
	if r, err := Check(ctx, dir, nil); err != nil || r.Damaged() {
		t.Fatalf("Check after collection = %+v, %v", r, err)
	}
}

// TestDamagedValueLog: a flipped byte in a segment makes the Get of that
// key fail with ErrCorrupt naming the segment, never return another value;
// other keys read on; Check names the segment. A missing segment reads
// the same way.
func TestDamagedValueLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	vals := map[string][]byte{}
	for i := range 600 { // 2.4 MiB: three segments
		k := fmt.Sprintf("key-%d", i)
		vals[k] = randValue(rng, 4<<10)
		if err := c.Set(ctx, k, vals[k], 0); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, storeDir, valuesDir, "*.vlog"))
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	// key-0 is the first entry of the first segment.
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[8+12+len("key-0")+100] ^= 0x10
	os.WriteFile(segs[0], b, 0o600)
	os.Remove(segs[1])

	c, err = Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var bad, missing, good int
	for k, v := range vals {
		got, err := c.Get(ctx, k)
		switch {
		case err == nil:
			if !bytes.Equal(got, v) {
				t.Fatalf("%s read back a different value", k)
			}
			good++
		case !errors.Is(err, ErrCorrupt):
			t.Fatalf("Get %s = %v; want ErrCorrupt", k, err)
		case strings.Contains(err.Error(), filepath.Base(segs[0])):
			bad++
		case strings.Contains(err.Error(), filepath.Base(segs[1])):
			missing++
		default:
			t.Fatalf("Get %s = %v; want the segment named", k, err)
		}
	}
	if bad != 1 || missing == 0 || good == 0 {
		t.Fatalf("%d corrupt, %d in the missing segment, %d read", bad, missing, good)
	}
	t.Logf("%d corrupt, %d in the missing segment, %d read", bad, missing, good)
	c.Close()
	r, err := Check(ctx, dir, nil)
	if err != nil || !r.Damaged() || !strings.Contains(fmt.Sprint(r.Problems), filepath.Base(segs[0])) {
		t.Fatalf("Check = %+v, %v; want the damaged segment named", r, err)
	}
}
