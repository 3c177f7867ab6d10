package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/ttl"
)

// damageKeys is how many 4 KiB values a damaged store holds in tables;
// damageTail more, of 1 KiB, are only in the WAL of a crash image.
const (
	damageKeys = 3000
	damageTail = 100
)

func damageValue(i int) []byte {
	if i >= damageKeys {
		// 1 KiB: the tail spans several 32 KiB WAL blocks, and Pebble tells
		// a damaged record from a torn tail only by valid blocks after it.
		return randValue(rand.New(rand.NewPCG(uint64(i), 7)), 1024)
	}
	return faultValue(i)
}

func init() {
	// damage-writer DIR: write the damage test's keys, flush the first
	// damageKeys into tables, write the tail, print "done" and wait to be
	// killed: the directory is then a crash image with a live WAL.
	childRoles["damage-writer"] = func(args []string) error {
		c, err := Open(args[0], damageWriterOptions())
		if err != nil {
			return err
		}
		if err := writeDamageKeys(c); err != nil {
			return err
		}
		fmt.Println("done")
		select {}
	}
}

func writeDamageKeys(c *Cache) error {
	for i := 0; i < damageKeys+damageTail; i++ {
		if i == damageKeys {
			if err := c.local().db.Flush(); err != nil {
				return err
			}
		}
		if err := c.Set(ctx, "key-"+strconv.Itoa(i), damageValue(i), 0); err != nil {
			return err
		}
	}
	return nil
}

// damageWriterOptions keep the damage test's 4 KiB values in Pebble's
// files, which these tests damage; TestDamagedValueLog damages the value
// log.
func damageWriterOptions() *Options {
	return &Options{SizeLimit: 64 << 20, ValueThreshold: -1}
}

// foreignName is a file of the user's, next to the store in the cache
// directory: nothing the cache does may touch it.
const foreignName = "my-notes.txt"

// damagedStore builds a cache directory with the damage test's keys: closed
// cleanly, or killed (crash) so that its newest WAL holds the tail. It puts
// a foreign file next to the store.
func damagedStore(t *testing.T, crash bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	if crash {
		cmd := childCommand(t, "damage-writer", dir)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "done" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the writer said %q", sc.Text())
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	} else {
		c, err := Open(dir, damageWriterOptions())
		if err != nil {
			t.Fatal(err)
		}
		if err := writeDamageKeys(c); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, foreignName), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// storeFiles returns the store's files whose names match, sorted: for
// logs and tables, the newest last.
func storeFiles(t *testing.T, dir string, match func(string) bool) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, storeDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if match(e.Name()) {
			out = append(out, filepath.Join(dir, storeDir, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("no such file in the store")
	}
	return out
}

func suffix(s string) func(string) bool {
	return func(n string) bool { return strings.HasSuffix(n, s) }
}
func prefix(s string) func(string) bool {
	return func(n string) bool { return strings.HasPrefix(n, s) }
}

// largest returns the largest of files.
func largest(files []string) string {
	best, size := "", int64(-1)
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > size {
			best, size = f, fi.Size()
		}
	}
	return best
}

func truncateFile(t *testing.T, path string, to int64) {
	t.Helper()
	if to < 0 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		to = fi.Size() / 2
	}
	if err := os.Truncate(path, to); err != nil {
		t.Fatal(err)
	}
}

// recordEndAfterHalf returns the offset of the first record boundary in
// the log-format file at path at or past its middle.
func recordEndAfterHalf(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	r := record.NewReader(f, 0)
	for {
		rec, err := r.Next()
		if err != nil {
			t.Fatalf("%s: no record starts past its middle: %v", path, err)
		}
		if off := r.Offset(); off >= fi.Size()/2 {
			return off // where this record starts, the one before ends
		}
		if _, err := io.Copy(io.Discard, rec); err != nil {
			t.Fatal(err)
		}
	}
}

func flipByte(t *testing.T, path string, at float64, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at >= 0 {
		off = int(float64(len(b)) * at)
	}
	b[off] ^= 0x20
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedStoreOpen damages a store file by file. Damage Pebble meets
// while opening makes Open fail with ErrCorrupt and name the file; with
// Options.ResetIfDamaged Open cuts a damaged newest log at its first bad
// record and keeps the rest, and for other damage deletes store/ and
// starts empty; the foreign file next to it survives. Damage Pebble cannot tell from a crash
// opens with what survived, and Len agrees with a scan.
func TestDamagedStoreOpen(t *testing.T) {
	cases := []struct {
		name   string
		crash  bool // damage a crash image (a live WAL) rather than a clean close
		damage func(t *testing.T, dir string) string
		// file is what the error must name; empty: Open succeeds.
		file string
	}{
		{"table-truncated", false, func(t *testing.T, dir string) string {
			f := largest(storeFiles(t, dir, suffix(".sst")))
			truncateFile(t, f, -1)
			return filepath.Base(f)
		}, "table"},
		{"table-missing", false, func(t *testing.T, dir string) string {
			f := largest(storeFiles(t, dir, suffix(".sst")))
			os.Remove(f)
			return strings.TrimSuffix(filepath.Base(f), ".sst")
		}, "table"},
		{"manifest-truncated", false, func(t *testing.T, dir string) string {
			f := storeFiles(t, dir, prefix("MANIFEST-"))
			truncateFile(t, f[len(f)-1], -1)
			return filepath.Base(f[len(f)-1])
		}, "manifest"},
		{"manifest-cut-between-records", false, func(t *testing.T, dir string) string {
			// Cut where a record ends: the MANIFEST reads as a whole, older
			// one that lists tables compactions have since deleted.
			f := storeFiles(t, dir, prefix("MANIFEST-"))
			truncateFile(t, f[len(f)-1], recordEndAfterHalf(t, f[len(f)-1]))
			return filepath.Base(f[len(f)-1])
		}, "manifest"},
		{"manifest-bitflip", false, func(t *testing.T, dir string) string {
			f := storeFiles(t, dir, prefix("MANIFEST-"))
			flipByte(t, f[len(f)-1], 0.5, 0)
			return filepath.Base(f[len(f)-1])
		}, "manifest"},
		{"manifest-missing", false, func(t *testing.T, dir string) string {
			f := storeFiles(t, dir, prefix("MANIFEST-"))
			os.Remove(f[len(f)-1])
			return filepath.Base(f[len(f)-1])
		}, "manifest"},
		{"manifest-marker-missing", false, func(t *testing.T, dir string) string {
			for _, f := range storeFiles(t, dir, prefix("marker.manifest.")) {
				os.Remove(f)
			}
			return "marker.manifest"
		}, "marker"},
		{"wal-bitflip", true, func(t *testing.T, dir string) string {
			f := storeFiles(t, dir, suffix(".log"))
			flipByte(t, f[len(f)-1], -1, 100) // the first record of the live log
			return filepath.Base(f[len(f)-1])
		}, "wal"},
		{"format-unknown", false, func(t *testing.T, dir string) string {
			po, _ := PebbleOptions(&Options{SizeLimit: 64 << 20})
			db, err := pebble.Open(filepath.Join(dir, storeDir), po)
			if err != nil {
				t.Fatal(err)
			}
			db.Set(metaFormat, []byte{9}, pebble.Sync)
			db.Close()
			return "store format 09"
		}, "format"},
		// Pebble cannot tell these from a crash: Open works.
		{"wal-truncated", true, func(t *testing.T, dir string) string {
			f := storeFiles(t, dir, suffix(".log"))
			truncateFile(t, f[len(f)-1], 20000)
			return ""
		}, ""},
		{"wal-missing", true, func(t *testing.T, dir string) string {
			for _, f := range storeFiles(t, dir, suffix(".log")) {
				os.Remove(f)
			}
			return ""
		}, ""},
		{"options-missing", false, func(t *testing.T, dir string) string {
			os.Remove(storeFiles(t, dir, prefix("OPTIONS-"))[0])
			return ""
		}, ""},
		{"foreign-file-in-store", false, func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, storeDir, "README"), []byte("x"), 0o600)
			return ""
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := damagedStore(t, tc.crash)
			want := tc.damage(t, dir)
			c, err := Open(dir, &Options{SizeLimit: 64 << 20})
			if tc.file == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				checkSurvivors(t, c, tc.crash)
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Open of a damaged store succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open = %v; want ErrCorrupt naming %s", err, want)
			}
			t.Logf("Open: %v", err)

			// Check finds the same, and leaves the store alone.
			r, err := Check(ctx, dir, nil)
			if err != nil || !r.Damaged() || !strings.Contains(fmt.Sprint(r.Problems), want) {
				t.Fatalf("Check = %v, %v; want damage naming %s", r, err, want)
			}

			// ResetIfDamaged starts over, inside store/ only; damage in the
			// newest log only costs the writes from the damaged record on.
			c, err = Open(dir, &Options{SizeLimit: 64 << 20, ResetIfDamaged: true})
			if err != nil {
				t.Fatalf("Open with ResetIfDamaged: %v", err)
			}
			if tc.file == "wal" {
				checkSurvivors(t, c, tc.crash)
			} else {
				mustLen(t, c, 0)
			}
			if err := c.Set(ctx, "k", []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
			mustGet(t, c, "k", []byte("v"))
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, foreignName)); err != nil || string(b) != "mine" {
				t.Fatalf("the foreign file next to the store: %q, %v", b, err)
			}
			if r, err := Check(ctx, dir, nil); err != nil || r.Damaged() {
				t.Fatalf("Check after the reset: %v, %v", r.Problems, err)
			}
		})
	}
}

// checkSurvivors checks a store that opened after damage Pebble takes for
// a crash: every key that was in a table is there with its value, tail
// keys are there or not, and Len matches a scan.
func checkSurvivors(t *testing.T, c *Cache, crash bool) {
	t.Helper()
	lost := 0
	for i := 0; i < damageKeys+damageTail; i++ {
		k := "key-" + strconv.Itoa(i)
		v, err := c.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound) && i >= damageKeys && crash:
			lost++
		case err != nil:
			t.Fatalf("%s: %v", k, err)
		case string(v) != string(damageValue(i)):
			t.Fatalf("%s has the wrong value", k)
		}
	}
	n, err := c.Len(ctx)
	if scanned := countScan(t, c); err != nil || n != scanned {
		t.Fatalf("Len = %d, %v; a scan finds %d", n, err, scanned)
	}
	t.Logf("opened; %d of the %d writes that were only in the WAL are gone", lost, damageTail)
}

// TestDamagedTableBlock: a flipped bit inside a table is not seen by Open
// (Pebble reads tables lazily); a Get that reads the block fails with
// ErrCorrupt naming the file, never a panic (Pebble's default on corruption
// is Fatalf); Check reads every block and reports it; Check with
// ResetIfDamaged (diskcache check --repair) starts the store over, and the
// foreign file next to it survives.
func TestDamagedTableBlock(t *testing.T) {
	dir := damagedStore(t, false)
	f := largest(storeFiles(t, dir, suffix(".sst")))
	flipByte(t, f, 0.3, 0)
	table := strings.TrimSuffix(filepath.Base(f), ".sst")

	c, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	bad := 0
	for i := 0; i < damageKeys; i++ {
		_, err := c.Get(ctx, "key-"+strconv.Itoa(i))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), table) {
				t.Fatalf("Get from a damaged block = %v; want ErrCorrupt naming table %s", err, table)
			}
			bad++
		}
	}
	if bad == 0 {
		t.Fatal("no Get met the damaged block")
	}
	t.Logf("%d of %d Gets met the damaged block", bad, damageKeys)
	if err := c.Close(); err != nil {
		t.Logf("Close: %v", err)
	}

	r, err := Check(ctx, dir, nil)
	if err != nil || !r.Damaged() || !strings.Contains(fmt.Sprint(r.Problems), table) {
		t.Fatalf("Check = %+v, %v; want damage in table %s", r.Problems, err, table)
	}
	t.Logf("Check: %v", r.Problems[0])
	r, err = Check(ctx, dir, &Options{ResetIfDamaged: true})
	if err != nil || !r.Reset {
		t.Fatalf("Check with ResetIfDamaged = reset %v, %v", r.Reset, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, foreignName)); err != nil || string(b) != "mine" {
		t.Fatalf("the foreign file next to the store: %q, %v", b, err)
	}
	if r, err := Check(ctx, dir, nil); err != nil || r.Damaged() || r.Entries != 0 {
		t.Fatalf("Check after the reset: %d entries, %v, %v", r.Entries, r.Problems, err)
	}
}

// TestResetOnlyForDamage: an error that is not damage never resets a cache.
// A store folder that cannot be listed is an I/O error, and ResetIfDamaged
// leaves everything as it was.
func TestResetOnlyForDamage(t *testing.T) {
	dir := damagedStore(t, false)
	// A file where the store folder should be: not damage Open can
	// diagnose, just an error.
	moved := dir + "-store"
	if err := os.Rename(filepath.Join(dir, storeDir), moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, storeDir), []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, &Options{SizeLimit: 64 << 20, ResetIfDamaged: true})
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a file for a store folder = %v; want an error that is not ErrCorrupt", err)
	}
	if _, err := Check(ctx, dir, &Options{ResetIfDamaged: true}); err == nil {
		t.Fatal("Check with a file for a store folder succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(dir, storeDir)); err != nil || string(b) != "not a folder" {
		t.Fatalf("ResetIfDamaged touched what it must not: %q, %v", b, err)
	}
}

// TestCheckSoundStore: Check finds nothing wrong with stores in every
// ordinary state: after a clean close with entries that expire, are
// overwritten with other expiries, made persistent and deleted; after a
// crash; and with no store yet. It refuses a directory a process has open,
// naming the process.
func TestCheckSoundStore(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "cache")
		c, err := Open(dir, &Options{SweepInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 900; i++ {
			k := "k" + strconv.Itoa(i)
			var ttl time.Duration
			if i%3 == 0 {
				ttl = time.Duration(1+i%7) * time.Hour
			}
			if err := c.Set(ctx, k, []byte(k), ttl); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 900; i += 9 {
			k := "k" + strconv.Itoa(i)
			switch i % 4 {
			case 0:
				c.Delete(ctx, k)
			case 1:
				c.Set(ctx, k, []byte("again"), 30*time.Minute)
			case 2:
				c.Expire(ctx, k, Expiry{Persist: true})
			case 3:
				c.Touch(ctx, k, 2*time.Hour)
			}
		}
		want, _ := c.Len(ctx)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Check(ctx, dir, nil)
		if err != nil || r.Damaged() {
			t.Fatalf("Check = %v, %v", r.Problems, err)
		}
		if !r.CleanClose || r.Entries != want || r.SavedEntries != want || r.Expiring == 0 || r.IndexEntries != r.Expiring {
			t.Fatalf("Check: %+v; want %d entries, a clean close and one index entry per expiring entry", r, want)
		}
		t.Logf("%d entries (%d bytes), %d expiring, %d index entries, %d tables", r.Entries, r.Bytes, r.Expiring, r.IndexEntries, r.Tables)
	})
	t.Run("crash", func(t *testing.T) {
		dir := damagedStore(t, true)
		r, err := Check(ctx, dir, nil)
		if err != nil || r.Damaged() {
			t.Fatalf("Check = %v, %v", r.Problems, err)
		}
		if r.CleanClose || r.Entries != damageKeys+damageTail || len(r.Notes) == 0 {
			t.Fatalf("Check after a crash: %+v", r)
		}
		t.Logf("notes: %q", r.Notes)
	})
	t.Run("no-store", func(t *testing.T) {
		r, err := Check(ctx, t.TempDir(), nil)
		if err != nil || r.Damaged() || r.StoreFound {
			t.Fatalf("Check of an empty directory = %+v, %v", r, err)
		}
	})
	t.Run("owned", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "cache")
		c, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = Check(ctx, dir, nil)
		if !errors.Is(err, ErrOwned) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			t.Fatalf("Check of an open directory = %v; want ErrOwned naming pid %d", err, os.Getpid())
		}
	})
}

// TestCheckFindsBrokenInvariants: damage inside sound Pebble files, which
// only our own checks see: a record whose header does not parse, a key stored
// under another key's hash, an expiry index entry for a missing key, an
// expiring record without its index entry, and saved counts that are
// wrong.
func TestCheckFindsBrokenInvariants(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		c.Set(ctx, "k"+strconv.Itoa(i), []byte("value"), time.Hour)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	po, _ := PebbleOptions(nil)
	db, err := pebble.Open(filepath.Join(dir, storeDir), po)
	if err != nil {
		t.Fatal(err)
	}
	get := func(k []byte) []byte {
		v, closer, err := db.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		return append([]byte(nil), v...)
	}
	rec := get(bucketedKeys.dataKey(nil, "k1"))
	bad := append([]byte(nil), rec...)
	bad[0] = 0x7f // no version writes this
	db.Set(bucketedKeys.dataKey(nil, "k1"), bad, nil)
	wrongHash := bucketedKeys.dataKey(nil, "k2")
	wrongHash[1] ^= 1 // another bucket: the hash is not the key's
	db.Set(wrongHash, rec, nil)
	db.Set(ttl.AppendIndexKey(nil, 1, bucketedKeys.dataKey(nil, "gone")[1:]), nil, nil)
	k3 := bucketedKeys.dataKey(nil, "k3")
	h3, _ := codec.DecodeHeader(get(k3))
	db.Delete(ttl.AppendIndexKey(nil, h3.Expiry, k3[1:]), nil) // no index entry
	db.Set(metaState, append([]byte{1}, counts{entries: 5, bytes: 6}.encode()...), pebble.Sync)
	db.Close()

	r, err := Check(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(r.Problems)
	for _, want := range []string{`key "k1": the record does not decode`, "the hash in the data key", `key "gone": an expiry index entry`, `key "k3": expires but has no expiry index entry`, "the counts saved at the last Close"} {
		if !strings.Contains(got, want) {
			t.Errorf("Check problems %s\nlack %q", got, want)
		}
	}
}

// TestRepairCutsDamagedNewestLog: Check with ResetIfDamaged (diskcache
// check --repair) on a store whose newest log is damaged cuts the log and
// keeps every key that was in a table.
func TestRepairCutsDamagedNewestLog(t *testing.T) {
	dir := damagedStore(t, true)
	f := storeFiles(t, dir, suffix(".log"))
	flipByte(t, f[len(f)-1], -1, 100)
	r, err := Check(ctx, dir, &Options{SizeLimit: 64 << 20, ResetIfDamaged: true})
	if err != nil || !r.Damaged() || !r.Reset {
		t.Fatalf("Check --repair = %+v, %v; want damage found and repaired", r, err)
	}
	c, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatalf("Open after the repair: %v", err)
	}
	checkSurvivors(t, c, true)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := Check(ctx, dir, nil); err != nil || r.Damaged() {
		t.Fatalf("Check after the repair: %v, %v", r, err)
	}
}
