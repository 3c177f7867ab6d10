package engine

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/ttl"
)

// Stores written by earlier versions are checked in under testdata, each
// written by writeFixture at a commit of that version: format1 (store
// format 1, record version 1) and format2-record1 (store format 2, record
// version 1, written just before record version 2).
//
//	go test ./engine -run TestWriteFormatFixture -write-fixture
//
// writes testdata/format<storeFormat>-record<codec.Version>/ with the code
// of the working tree.
// The tests below open them with today's code and check that every entry
// is there with its value, its TTL and its recency.
var writeFixtureFlag = flag.Bool("write-fixture", false, "write testdata/format<storeFormat>/ (TestWriteFormatFixture)")

// The fixture's time: its entries are written at fixtureT0 and the hot
// ones read at fixtureRead, and the reading tests run at fixtureRead.
var (
	fixtureT0   = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	fixtureRead = fixtureT0.Add(30 * time.Minute)
)

const (
	fixtureKeys = 300
	fixtureHot  = 10 // fixture-000 .. fixture-009 are read at fixtureRead
)

// fixtureEntry is the i-th entry of the fixture: its key, value and TTL
// at fixtureT0 (0: none). One in fifty values is 4 KiB of random bytes,
// which goes to the value log; one in three entries expires, years after
// fixtureT0.
func fixtureEntry(i int) (key string, value []byte, ttl time.Duration) {
	key = fmt.Sprintf("fixture-%03d", i)
	if i%50 == 7 {
		value = make([]byte, 4<<10)
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
	} else {
		value = []byte(fmt.Sprintf("value %d of the fixture, %s", i, bytes.Repeat([]byte{'a' + byte(i%26)}, i%40)))
	}
	if i%3 == 1 {
		ttl = time.Duration(i+1) * 24 * time.Hour
	}
	return key, value, ttl
}

// fixtureShort expires a minute after fixtureT0: gone when read.
const fixtureShort = "fixture-short"

// TestWriteFormatFixture writes the fixture of today's format, when asked.
func TestWriteFormatFixture(t *testing.T) {
	if !*writeFixtureFlag {
		t.Skip("writes testdata only with -write-fixture")
	}
	dir := filepath.Join("testdata", fmt.Sprintf("format%d-record%d", storeFormat, codec.Version))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "cache")
	writeFixture(t, tmp)
	if err := copyTree(filepath.Join(tmp, storeDir), filepath.Join(dir, storeDir)); err != nil {
		t.Fatal(err)
	}
}

func writeFixture(t *testing.T, dir string) {
	clock := ttl.NewManualClock(fixtureT0)
	c, err := Open(dir, &Options{SizeLimit: 64 << 20, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range fixtureKeys {
		k, v, d := fixtureEntry(i)
		if err := c.Set(ctx, k, v, d); err != nil {
			t.Fatal(err)
		}
		if i == fixtureKeys*2/3 {
			// Most entries in a table, the rest in the log.
			if err := c.local().db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Set(ctx, fixtureShort, []byte("short"), time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(fixtureRead.Sub(fixtureT0))
	waitClockAt(t, c, fixtureRead)
	for i := range fixtureHot {
		k, _, _ := fixtureEntry(i)
		if _, err := c.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitClockAt waits until the access clock's current tick is at.
func waitClockAt(t *testing.T, c *Cache, at time.Time) {
	l := c.local().lim
	want := uint32(l.tick(at.UnixNano()))
	for deadline := time.Now().Add(10 * time.Second); l.now.Load() != want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the access clock did not reach %v", at)
		}
	}
}

// copyTree copies the regular files under src to dst.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// openFixture copies the fixture of format n into a temporary directory
// and opens it at fixtureRead.
func openFixture(t *testing.T, name string) (*Cache, string) {
	t.Helper()
	src := filepath.Join("testdata", name, storeDir)
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	if err := copyTree(src, filepath.Join(dir, storeDir)); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, &Options{SizeLimit: 64 << 20, Clock: ttl.NewManualClock(fixtureRead)})
	if err != nil {
		t.Fatalf("open the fixture %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, dir
}

// checkFixture checks that c holds every entry of the fixture, with its
// value and its TTL. Its Gets touch every entry: checkRecency goes first.
func checkFixture(t *testing.T, c *Cache) {
	t.Helper()
	for i := range fixtureKeys {
		k, v, d := fixtureEntry(i)
		got, err := c.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if !bytes.Equal(got, v) {
			t.Fatalf("Get(%q) = %d bytes %.20q, want %d bytes %.20q", k, len(got), got, len(v), v)
		}
		left, err := c.TTL(ctx, k)
		if err != nil {
			t.Fatalf("TTL(%q): %v", k, err)
		}
		if want := max(d-fixtureRead.Sub(fixtureT0), 0); left != want {
			t.Fatalf("TTL(%q) = %v, want %v", k, left, want)
		}
	}
	if _, err := c.Get(ctx, fixtureShort); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(%q) of an expired entry: %v, want ErrNotFound", fixtureShort, err)
	}
}

// checkRecency checks that the fixture's hot entries read as used at
// fixtureRead and the others as older.
func checkRecency(t *testing.T, c *Cache) {
	t.Helper()
	l := c.local().lim
	hot := l.tick(fixtureRead.UnixNano())
	older := 0
	for i := range fixtureKeys {
		k, _, _ := fixtureEntry(i)
		last, ok := l.clock.Last(xxhash.Sum64String(k))
		switch {
		case i < fixtureHot && (!ok || last != hot):
			t.Errorf("%s last used at tick %d (found %v), want %d", k, last, ok, hot)
		case i >= fixtureHot && (!ok || last.Age(hot) > 0):
			older++
		}
	}
	// The clock's slots are shared by hash: a few cold entries may read
	// as recent as a hot one.
	if cold := fixtureKeys - fixtureHot; older < cold*9/10 {
		t.Errorf("%d of %d cold entries read as older than the hot ones, want most", older, cold)
	}
}

// fixtures are the stores of earlier versions kept in testdata, with the
// store format each is in.
var fixtures = []struct {
	name   string
	format byte
}{
	{"format1", hashedFormat},
	{"format2-record1", storeFormat},
}

// TestOpensFixtures: a store of each earlier version opens with every
// entry, its TTL and its recency, stays in its format, and takes writes,
// deletes and expiry that a reopen and Check find sound. Its records of
// version 1 read as they are; a record written again is version 2.
func TestOpensFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) { testOpensFixture(t, fx.name, fx.format) })
	}
}

func testOpensFixture(t *testing.T, name string, format byte) {
	c, dir := openFixture(t, name)
	if f := c.local().layout.format; f != format {
		t.Fatalf("the store reads as format %d, want %d", f, format)
	}
	checkRecency(t, c)
	checkFixture(t, c)
	if n := c.Stats().Entries; n != fixtureKeys && n != fixtureKeys+1 {
		t.Errorf("Stats().Entries = %d, want %d (%d until the expired one is swept)", n, fixtureKeys, fixtureKeys+1)
	}
	old, _, _ := fixtureEntry(5)
	if v := recordVersion(t, c, old); v != 1 {
		t.Errorf("%s's record is of version %d, want 1 as the fixture wrote it", old, v)
	}
	if err := c.Set(ctx, old, []byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	if v := recordVersion(t, c, old); v != codec.Version {
		t.Errorf("%s's record written again is of version %d, want %d", old, v, codec.Version)
	}
	for i := range 100 {
		if err := c.Set(ctx, fmt.Sprintf("new-%d", i), []byte("new"), time.Duration(i%2)*24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	k, _, _ := fixtureEntry(3)
	if err := c.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for cursor := uint64(0); ; {
		got, next, err := c.Scan(ctx, cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range got {
			keys[k] = true
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(keys) != fixtureKeys-1+100 || keys[k] || !keys["new-7"] {
		t.Errorf("Scan found %d keys, want %d", len(keys), fixtureKeys-1+100)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The expired entry is there until the sweeper gets to it.
	if want := int64(fixtureKeys - 1 + 100); r.Format != int(format) || (r.Entries != want && r.Entries != want+1) || r.Damaged() {
		t.Errorf("Check after writes: format %d, %d entries, problems %v; want format %d, %d entries", r.Format, r.Entries, r.Problems, format, want)
	}
}

// recordVersion returns the version of key's record in c's store.
func recordVersion(t *testing.T, c *Cache, key string) uint8 {
	t.Helper()
	s := c.local()
	rec, closer, err := s.db.Get(s.layout.dataKey(nil, key))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	h, err := codec.DecodeHeader(rec)
	if err != nil {
		t.Fatal(err)
	}
	return h.Version
}

// TestCheckFixtures checks the store of each earlier version offline, as
// diskcache check does: each is sound.
func TestCheckFixtures(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if err := copyTree(filepath.Join("testdata", fx.name, storeDir), filepath.Join(dir, storeDir)); err != nil {
				t.Fatal(err)
			}
			r, err := Check(ctx, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range r.Problems {
				t.Errorf("problem: %+v", p)
			}
			if r.Entries != fixtureKeys+1 || r.Format != int(fx.format) {
				t.Errorf("checked %d entries of format %d, want %d of format %d", r.Entries, r.Format, fixtureKeys+1, fx.format)
			}
		})
	}
}
