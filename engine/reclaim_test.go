package engine

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// dirSize is the sum of the sizes of the files under dir, as du counts them
// (apparent sizes).
func dirSize(t testing.TB, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestExpiredSpaceComesBack writes 64 MiB of incompressible values with a
// 1 s TTL and leaves the cache idle: the sweeper must delete them and get
// their space back, not just hide them. This runs on the real clock, since
// it is Pebble's files that are measured; the test ends as soon as the
// directory has shrunk.
func TestExpiredSpaceComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB")
	}
	dir := t.TempDir()
	c, err := Open(dir, &Options{SweepInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const valueSize = 4 << 10
	v := make([]byte, valueSize)
	n := (64 << 20) / valueSize
	for i := 0; i < n; i++ {
		for j := 0; j < len(v); j += 8 {
			x := rng.Uint64()
			for k := 0; k < 8; k++ {
				v[j+k] = byte(x >> (8 * k))
			}
		}
		if err := c.Set(context.Background(), "k"+strconv.Itoa(i), v, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	peak := dirSize(t, dir)
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		size := dirSize(t, dir)
		if size > peak {
			peak = size
		}
		l, err := c.Len(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if size < peak/4 && l == 0 {
			t.Logf("peak %d MiB, now %d MiB, Len %d, after %v", peak>>20, size>>20, l, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the directory holds %d MiB of a %d MiB peak, Len %d", size>>20, peak>>20, l)
		}
	}
	if s := c.Stats(); s.Expirations != int64(n) {
		t.Fatalf("Expirations = %d, want %d", s.Expirations, n)
	}
}
