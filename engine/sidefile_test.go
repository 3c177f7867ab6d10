package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/diskcache-go/diskcache/lru"
)

// cleanStore returns the directory of a store holding the keys "0" to n-1
// (value "value"), "0" read once, closed cleanly.
func cleanStore(t *testing.T, n int) string {
	t.Helper()
	return storeOf(t, n, func(c *Cache) { mustGet(t, c, "0", []byte("value")) })
}

// TestSideFilesDamaged: a presence filter or clock snapshot that is torn,
// of another kind, or left by an earlier Close is never used: the filter is
// rebuilt from a scan (every key still reads, Len stays exact), the clock
// starts over.
func TestSideFilesDamaged(t *testing.T) {
	const n = 500
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"filter-cut-short", func(t *testing.T, dir string) { truncateBy(t, filepath.Join(dir, storeDir, presenceFile), 9) }},
		{"filter-flipped-byte", func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, storeDir, presenceFile), -1, 100) }},
		{"filter-missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, storeDir, presenceFile)) }},
		{"filter-of-an-earlier-close", func(t *testing.T, dir string) {
			// Keep this close's filter, write new keys, and put it back:
			// its id no longer matches the state's, and it lacks the keys.
			path := filepath.Join(dir, storeDir, presenceFile)
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := n; i < 2*n; i++ {
				c.Set(ctx, fmt.Sprint(i), []byte("value"), 0)
			}
			for i := n; i < 2*n; i++ {
				c.Delete(ctx, fmt.Sprint(i))
			}
			c.Set(ctx, "late", []byte("value"), 0)
			c.Delete(ctx, "0")
			c.Set(ctx, "0", []byte("value"), 0)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"clock-cut-short", func(t *testing.T, dir string) { truncateBy(t, filepath.Join(dir, storeDir, accessFile), 1) }},
		{"clock-flipped-byte", func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, storeDir, accessFile), -1, 20) }},
		{"clock-is-a-filter", func(t *testing.T, dir string) {
			b, err := os.ReadFile(filepath.Join(dir, storeDir, presenceFile))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, storeDir, accessFile), b, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := cleanStore(t, n)
			tc.damage(t, dir)
			c, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := int64(n)
			if _, err := c.Get(ctx, "late"); err == nil {
				want++
			}
			for i := 0; i < n; i++ {
				mustGet(t, c, fmt.Sprint(i), []byte("value"))
			}
			mustLen(t, c, want)
			if got := countScan(t, c); got != want {
				t.Fatalf("scan finds %d, want %d", got, want)
			}
		})
	}
}

// TestReadOnlySessionWritesNothing: a session that only reads leaves the
// store's state as the last Close saved it: nothing reaches Pebble's WAL,
// Close has nothing to flush, and the next Open finds it clean.
func TestReadOnlySessionWritesNothing(t *testing.T) {
	dir := cleanStore(t, 100)
	for range 2 {
		c, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := c.local()
		if !s.keys.saved.Load() {
			t.Fatal("the filter saved at Close was not used")
		}
		for i := 0; i < 100; i++ {
			mustGet(t, c, fmt.Sprint(i), []byte("value"))
		}
		if _, err := c.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		mustLen(t, c, 100)
		if wal := s.db.Metrics().WAL.BytesIn; wal != 0 || s.unflushed.Load() {
			t.Fatalf("a read-only session wrote %d bytes to the WAL (unflushed %v)", wal, s.unflushed.Load())
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLegacyStateOpens: a store closed by a version that kept the filter
// and the clock's snapshot in Pebble (a 17-byte state key, mpresence and
// maccess) opens with its counts, filter and recency, and the next save
// moves them to the side files and deletes the keys.
func TestLegacyStateOpens(t *testing.T) {
	const n = 300
	dir := cleanStore(t, n)
	store := filepath.Join(dir, storeDir)
	var filter, clock []byte
	readSideFile(vfs.Default, filepath.Join(store, presenceFile), presenceMagic, func(r io.Reader, _ int64) error {
		b, err := io.ReadAll(r)
		if len(b) > 8 {
			filter = b[8:] // past the state id
		}
		return err
	})
	readSideFile(vfs.Default, filepath.Join(store, accessFile), accessMagic, func(r io.Reader, _ int64) error {
		var err error
		clock, err = io.ReadAll(r)
		return err
	})
	if filter == nil || clock == nil {
		t.Fatal("the clean close left no side files")
	}
	po, _ := PebbleOptions(nil)
	db, err := pebble.Open(store, po)
	if err != nil {
		t.Fatal(err)
	}
	st := append([]byte{1}, counts{entries: n, bytes: countBytes(t, db)}.encode()...)
	db.Set(metaState, st, pebble.Sync)
	db.Set(metaPresence, filter, pebble.Sync)
	db.Set(metaAccess, clock, pebble.Sync)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(store, presenceFile))
	os.Remove(filepath.Join(store, accessFile))

	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.local()
	if p := s.keys.cur.Load(); p == nil || s.keys.building.Load() {
		t.Fatal("the legacy filter was not used")
	}
	if _, ok := s.lim.clock.Last(bucketedKeys.hash(bucketedKeys.dataKey(nil, "0"))); !ok {
		t.Fatal("the legacy clock snapshot was not restored")
	}
	mustLen(t, c, n)
	if err := c.Set(ctx, "new", []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, dir, nil)
	if err != nil || r.Damaged() || !r.CleanClose || r.SavedEntries != n+1 {
		t.Fatalf("Check after the upgrade: %+v, %v", r, err)
	}
	db, err = pebble.Open(store, po)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range [][]byte{metaPresence, metaAccess} {
		if _, closer, err := db.Get(k); err == nil {
			closer.Close()
			t.Fatalf("%s is still in the store after a save", k)
		}
	}
	if v, closer, err := db.Get(metaState); err != nil || len(v) != stateLen {
		t.Fatalf("state key after the upgrade: %d bytes, %v", len(v), err)
	} else {
		closer.Close()
	}
}

// countBytes sums what the counts count (data key plus record) over the
// data keys of db.
func countBytes(t *testing.T, db *pebble.DB) int64 {
	t.Helper()
	lo, hi := dataSpan()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		n += int64(len(it.Key()) + len(it.Value()))
	}
	return n
}

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err == nil {
		err = os.Truncate(path, fi.Size()-n)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestLargeClockLoadsInBackground: a clock snapshot too large to read
// inside Open (more than accessLoadInline, which is saved compressed)
// loads while calls are served, and until it has, the clock is neither
// saved nor grown.
func TestLargeClockLoadsInBackground(t *testing.T) {
	const n = 20000 // 16 slots a key: a 320Ki-slot clock, 1.25 MiB
	dir := cleanStore(t, n)
	path := filepath.Join(dir, storeDir, accessFile)
	if magic := sideFileMagic(vfs.Default, path); magic != accessMagicLanes {
		t.Fatalf("the clock snapshot of %d keys is a %q file, want %q", n, magic, accessMagicLanes)
	}
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.local()
	mustGet(t, c, "1", []byte("value")) // served while the clock may still load
	deadline := time.Now().Add(30 * time.Second)
	for !s.lim.loaded.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the clock snapshot did not load within 30 s")
		}
		time.Sleep(time.Millisecond)
	}
	for _, k := range []string{"0", "1"} {
		if _, ok := s.lim.clock.Last(bucketedKeys.hash(bucketedKeys.dataKey(nil, k))); !ok {
			t.Fatalf("the access to %q is not in the loaded clock", k)
		}
	}
	mustLen(t, c, n)
}

// FuzzPresenceFile: a presence filter side file may be damaged in any way.
// Any bytes either read as a filter (a well-formed file whose id matches)
// or give an error; nothing panics or allocates past what the file holds.
func FuzzPresenceFile(f *testing.F) {
	id := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	good := func(capacity int64) []byte {
		p := newPresence(capacity)
		p.add(42)
		var body bytes.Buffer
		body.Write(id)
		p.writeTo(&body)
		sum := crc32.Checksum(body.Bytes(), castagnoli)
		return binary.LittleEndian.AppendUint32(append([]byte(presenceMagic), body.Bytes()...), sum)
	}
	f.Add(good(1))
	f.Add(good(5000))
	f.Add([]byte(presenceMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, storeDir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, storeDir, presenceFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := readPresenceFile(vfs.Default, dir, id)
		if err == nil && (p == nil || int64(len(p.blocks))*64 > int64(len(b))) {
			t.Fatalf("a %d-byte file read as a filter of %d blocks", len(b), len(p.blocks))
		}
		if err == nil && !p.mayContain(42) && bytes.Equal(b, good(5000)) {
			t.Fatal("the filter lost its key")
		}
	})
}

// TestSideFileOverwritesInPlace: a side file of the size it had is written
// over in place (same inode: no new file for ext4 to make), one of another
// size beside and renamed; both read back whole, and a body of another
// size than announced leaves no file to trust.
func TestSideFileOverwritesInPlace(t *testing.T) {
	fs := vfs.Default
	path := filepath.Join(t.TempDir(), "side")
	write := func(body string, size int64) error {
		return writeSideFile(fs, path, "testside", size, func(w io.Writer) error {
			_, err := io.WriteString(w, body)
			return err
		})
	}
	read := func() string {
		t.Helper()
		var got []byte
		err := readSideFile(fs, path, "testside", func(r io.Reader, n int64) error {
			var err error
			got, err = io.ReadAll(r)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	inode := func() uint64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	if err := write("abcd", 4); err != nil {
		t.Fatal(err)
	}
	first := inode()
	if err := write("efgh", 4); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "efgh" || inode() != first {
		t.Fatalf("read %q, inode %d after a write of the same size; want efgh in inode %d", got, inode(), first)
	}
	if err := write("longer", 6); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "longer" || inode() == first {
		t.Fatalf("read %q, inode %d after a longer write; want longer in a new file", got, inode())
	}
	if err := write("xyz", 6); err == nil {
		t.Fatal("a body shorter than announced was accepted")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a side file whose write fell short is still there: %v", err)
	}
}

// FuzzAccessFile: an access clock side file may be damaged in any way,
// compressed or not. Any bytes either load into the clock or give an
// error; nothing panics, and no more is read than the file holds.
func FuzzAccessFile(f *testing.F) {
	file := func(magic string, body func(w io.Writer) error) []byte {
		var b bytes.Buffer
		if err := body(&b); err != nil {
			f.Fatal(err)
		}
		sum := crc32.Checksum(b.Bytes(), castagnoli)
		return binary.LittleEndian.AppendUint32(append([]byte(magic), b.Bytes()...), sum)
	}
	clock := lru.NewAccessClock(lru.MinSlots)
	clock.Touch(42, 7)
	raw := func(w io.Writer) error { _, err := clock.WriteTo(w); return err }
	f.Add(file(accessMagic, raw))
	f.Add(file(accessMagicS2, func(w io.Writer) error { return writeAccessS2(w, clock) }))
	f.Add(file(accessMagicLanes, func(w io.Writer) error { return writeAccessLanes(w, clock) }))
	f.Add([]byte(accessMagicS2))
	f.Add([]byte(accessMagicLanes))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), accessFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s := &store{lim: &limiter{}}
		clock := lru.NewAccessClock(lru.MinSlots)
		if st, err := s.readAccess(context.Background(), clock, vfs.Default, path); err == nil {
			if err := clock.Install(st); err != nil {
				t.Fatalf("a snapshot staged for the clock's size did not install: %v", err)
			}
		}
	})
}

// writeAccessS2 writes clock's snapshot compressed with S2, as saveAccess
// did before accessMagicLanes (accessMagicS2).
func writeAccessS2(w io.Writer, clock *lru.AccessClock) error {
	return writeAccessS2Of(w, func(zw io.Writer) error {
		_, err := clock.WriteTo(zw)
		return err
	})
}

// sideFileMagic returns the magic a side file starts with, "" if it cannot
// be read.
func sideFileMagic(fs vfs.FS, path string) string {
	f, err := fs.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var head [8]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return ""
	}
	return string(head[:])
}
