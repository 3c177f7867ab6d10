package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// faultFS is Pebble's error-injecting file system (errorfs) with one gap
// filled: errorfs does not wrap the file that ReuseForWrite returns, and
// Pebble recycles its WAL files, so most WAL writes would escape it.
type faultFS struct {
	*errorfs.FS
	inj errorfs.Injector
}

func newFaultFS(inj errorfs.Injector) faultFS {
	return faultFS{FS: errorfs.Wrap(vfs.Default, inj), inj: inj}
}

// GetDiskUsage reports a full disk while a diskFull injector is on.
func (fs faultFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	u, err := fs.FS.GetDiskUsage(path)
	if d, ok := fs.inj.(*diskFull); ok && d.on.Load() {
		u.UsedBytes += u.AvailBytes
		u.AvailBytes = 0
	}
	return u, err
}

func (fs faultFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, path: newname, inj: fs.inj}, nil
}

// faultFile injects errors into the writes, reads and syncs of a file.
type faultFile struct {
	vfs.File
	path string
	inj  errorfs.Injector
}

func (f *faultFile) op(kind errorfs.OpKind, off int64) error {
	return f.inj.MaybeError(errorfs.Op{Kind: kind, Path: f.path, Offset: off})
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.op(errorfs.OpFileWrite, 0); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.op(errorfs.OpFileWriteAt, off); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.op(errorfs.OpFileReadAt, off); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.op(errorfs.OpFileSync, 0); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) SyncData() error {
	if err := f.op(errorfs.OpFileSyncData, 0); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *faultFile) SyncTo(n int64) (bool, error) {
	if err := f.op(errorfs.OpFileSyncTo, 0); err != nil {
		return false, err
	}
	return f.File.SyncTo(n)
}

// fileKind names the files a fault targets.
type fileKind string

const (
	anyFile      fileKind = ""
	walFile      fileKind = ".log"
	tableFile    fileKind = ".sst"
	manifestFile fileKind = "MANIFEST-"
	valueFile    fileKind = ".vlog"
)

func (k fileKind) matches(path string) bool {
	base := filepath.Base(path)
	switch k {
	case anyFile:
		return true
	case manifestFile:
		return strings.HasPrefix(base, string(k))
	}
	return strings.HasSuffix(base, string(k))
}

// opClass groups errorfs's operations the way a fault hits them.
type opClass int

const (
	writes  opClass = iota // write, write-at, create, preallocate
	reads                  // read, read-at
	syncs                  // fsync, fdatasync, sync_file_range
	creates                // create, reuse (a recycled WAL)
)

func (c opClass) matches(k errorfs.OpKind) bool {
	switch c {
	case writes:
		return k == errorfs.OpFileWrite || k == errorfs.OpFileWriteAt || k == errorfs.OpCreate ||
			k == errorfs.OpFilePreallocate || k == errorfs.OpReuseForWrite
	case reads:
		return k == errorfs.OpFileRead || k == errorfs.OpFileReadAt
	case creates:
		return k == errorfs.OpCreate || k == errorfs.OpReuseForWrite
	default:
		return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
	}
}

// fault is an errorfs.Injector that a test switches on and off: while on,
// every operation of its class on its kind of file fails with errno.
type fault struct {
	mu    sync.Mutex
	on    bool
	class opClass
	kind  fileKind
	errno syscall.Errno
	hits  atomic.Int64
}

func (f *fault) set(class opClass, kind fileKind, errno syscall.Errno) {
	f.mu.Lock()
	f.on, f.class, f.kind, f.errno = true, class, kind, errno
	f.mu.Unlock()
}

func (f *fault) clear() {
	f.mu.Lock()
	f.on = false
	f.mu.Unlock()
}

func (f *fault) String() string { return "test fault" }

func (f *fault) MaybeError(op errorfs.Op) error {
	f.mu.Lock()
	on, class, kind, errno := f.on, f.class, f.kind, f.errno
	f.mu.Unlock()
	if !on || !class.matches(op.Kind) || !kind.matches(op.Path) {
		return nil
	}
	f.hits.Add(1)
	return &os.PathError{Op: "injected", Path: op.Path, Err: errno}
}

// diskFull is an errorfs.Injector that behaves like a file system with no
// free blocks but free inodes: files can be created and renamed, but
// writing to a table, the MANIFEST or any other new data fails with ENOSPC,
// and so does preallocation. The WAL goes on being written: Pebble
// preallocates each log file for a whole memtable (110% of it, ignoring a
// failure) and recycles old log files, overwriting them in place. With wal
// set, WAL writes fail too (a log that could not be preallocated).
type diskFull struct {
	on   atomic.Bool
	wal  bool
	hits atomic.Int64
}

func (d *diskFull) String() string { return "disk full" }

func (d *diskFull) MaybeError(op errorfs.Op) error {
	if !d.on.Load() {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFilePreallocate:
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
		if !d.wal && walFile.matches(op.Path) {
			return nil
		}
	default:
		return nil
	}
	d.hits.Add(1)
	return &os.PathError{Op: "injected", Path: op.Path, Err: syscall.ENOSPC}
}

// openFaulty opens a cache in dir on a file system with inj. The 64 MiB
// limit gives 2 MiB memtables, so a few hundred 4 KiB values make Pebble
// flush.
func openFaulty(t *testing.T, dir string, inj errorfs.Injector, o Options) *Cache {
	t.Helper()
	o.fs = newFaultFS(inj)
	if o.SizeLimit == 0 {
		o.SizeLimit = 64 << 20
	}
	c, err := Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acked holds the writes a test was told had succeeded.
type acked map[string][]byte

// randValue returns n incompressible bytes.
func randValue(rng *rand.Rand, n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	return v
}

// write sets n keys prefix-0... and remembers them; every Set must succeed.
func (a acked) write(t *testing.T, c *Cache, rng *rand.Rand, prefix string, n, size int) {
	t.Helper()
	for i := 0; i < n; i++ {
		k, v := prefix+"-"+strconv.Itoa(i), randValue(rng, size)
		if err := c.Set(ctx, k, v, 0); err != nil {
			t.Fatalf("set %s before the fault: %v", k, err)
		}
		a[k] = v
	}
}

// check reads every acknowledged key back.
func (a acked) check(t *testing.T, c *Cache, when string) {
	t.Helper()
	for k, want := range a {
		got, err := within(t, 10*time.Second, "Get", func() ([]byte, error) { return c.Get(ctx, k) })
		if err != nil {
			t.Fatalf("%s: acknowledged %s: %v", when, k, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: acknowledged %s has the wrong value (%d bytes, want %d)", when, k, len(got), len(want))
		}
	}
}

// within runs fn and fails the test if it panics or takes longer than d,
// printing every goroutine: a fault must give an error, never a panic or a
// hang.
func within[T any](t *testing.T, d time.Duration, what string, fn func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v     T
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{panic: r}
			}
		}()
		v, err := fn()
		done <- result{v: v, err: err}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("%s panicked: %v", what, r.panic)
		}
		return r.v, r.err
	case <-time.After(d):
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("%s still running after %v:\n%s", what, d, b.String())
		panic("unreachable")
	}
}

func set(t *testing.T, c *Cache, k string, v []byte) error {
	t.Helper()
	_, err := within(t, 20*time.Second, "Set", func() (struct{}, error) { return struct{}{}, c.Set(ctx, k, v, 0) })
	return err
}

func closeWithin(t *testing.T, c *Cache) error {
	t.Helper()
	_, err := within(t, 20*time.Second, "Close", func() (struct{}, error) { return struct{}{}, c.Close() })
	return err
}

// writeUntilError sets fresh keys until one fails and returns that error;
// the ones that succeeded join a. A fault that never surfaces fails the
// test.
func (a acked) writeUntilError(t *testing.T, c *Cache, rng *rand.Rand, prefix string, max int) error {
	t.Helper()
	for i := 0; i < max; i++ {
		k, v := prefix+"-"+strconv.Itoa(i), randValue(rng, 4<<10)
		if err := set(t, c, k, v); err != nil {
			t.Logf("write %d failed: %v", i, err)
			return err
		}
		a[k] = v
	}
	t.Fatalf("%d writes succeeded under the fault", max)
	return nil
}

// resume retries a write until it succeeds, for up to 10 s: after a fault
// clears, writes resume by themselves.
func resume(t *testing.T, c *Cache, a acked) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	v := []byte("written after the fault cleared")
	for {
		err := set(t, c, "after-fault", v)
		if err == nil {
			a["after-fault"] = v
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume within 10 s of the fault clearing: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reopenAndCheck closes c, opens dir again without faults and checks a
// and Len against a scan.
func reopenAndCheck(t *testing.T, c *Cache, dir string, a acked) {
	t.Helper()
	if err := closeWithin(t, c); err != nil {
		t.Logf("close after the fault: %v", err)
	}
	c2, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatalf("reopen after the fault: %v", err)
	}
	defer c2.Close()
	a.check(t, c2, "after reopening")
	n, err := c2.Len(ctx)
	if scanned := countScan(t, c2); err != nil || n != scanned {
		t.Fatalf("after reopening Len = %d, %v; a scan finds %d", n, err, scanned)
	}
	if err := c2.Set(ctx, "after-reopen", []byte("v"), 0); err != nil {
		t.Fatalf("write after reopening: %v", err)
	}
}

// TestFaultWAL: a write of the WAL that fails (EIO, ENOSPC, or its fsync
// with Options.Sync) fails the Set that hit it with ErrStoreFailed, which
// wraps the disk's error; Pebble takes no more writes from this store, and
// reads go on. Once the fault clears, the Cache reopens the store by itself
// (recover.go) and writes resume with every acknowledged write there; Close
// and Open again find them too.
func TestFaultWAL(t *testing.T) {
	cases := []struct {
		name  string
		class opClass
		errno syscall.Errno
		sync  bool
	}{
		{"write-EIO", writes, syscall.EIO, false},
		{"write-ENOSPC", writes, syscall.ENOSPC, false},
		{"sync-mode-write-EIO", writes, syscall.EIO, true},
		{"sync-mode-fsync-EIO", syncs, syscall.EIO, true},
		{"sync-mode-fsync-ENOSPC", syncs, syscall.ENOSPC, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			dir := filepath.Join(t.TempDir(), "cache")
			f := &fault{}
			c := openFaulty(t, dir, f, Options{Sync: tc.sync})
			a := acked{}
			a.write(t, c, rng, "before", 100, 1000)
			f.set(tc.class, walFile, tc.errno)
			err := set(t, c, "during", []byte("v"))
			if !errors.Is(err, ErrStoreFailed) || !errors.Is(err, tc.errno) || f.hits.Load() == 0 {
				t.Fatalf("Set under a WAL fault = %v (%d faults hit); want ErrStoreFailed wrapping %v", err, f.hits.Load(), tc.errno)
			}
			a.check(t, c, "under the fault")
			f.clear()
			resume(t, c, a)
			if !c.IsOwner() {
				t.Fatal("the cache gave up the directory it owned alone")
			}
			a.check(t, c, "after the store was reopened")
			reopenAndCheck(t, c, dir, a)
		})
	}
}

// TestFaultValueLog: a write of the value log that fails (EIO, ENOSPC, or
// its fsync with Options.Sync) fails the Set that hit it with
// ErrStoreFailed wrapping the disk's error, as a failed WAL write does;
// reads go on, large values included; once the fault clears the store is
// reopened and writes resume, with every acknowledged write there.
func TestFaultValueLog(t *testing.T) {
	cases := []struct {
		name  string
		class opClass
		errno syscall.Errno
		sync  bool
	}{
		{"write-EIO", writes, syscall.EIO, false},
		{"write-ENOSPC", writes, syscall.ENOSPC, false},
		{"sync-mode-fsync-EIO", syncs, syscall.EIO, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			dir := filepath.Join(t.TempDir(), "cache")
			f := &fault{}
			c := openFaulty(t, dir, f, Options{Sync: tc.sync})
			a := acked{}
			a.write(t, c, rng, "small", 50, 100)
			a.write(t, c, rng, "large", 50, 8<<10)
			f.set(tc.class, valueFile, tc.errno)
			err := set(t, c, "during", randValue(rng, 8<<10))
			if !errors.Is(err, ErrStoreFailed) || !errors.Is(err, tc.errno) || f.hits.Load() == 0 {
				t.Fatalf("Set under a value log fault = %v (%d faults hit); want ErrStoreFailed wrapping %v", err, f.hits.Load(), tc.errno)
			}
			a.check(t, c, "under the fault")
			f.clear()
			resume(t, c, a)
			a.write(t, c, rng, "after", 20, 8<<10)
			a.check(t, c, "after the store was reopened")
			reopenAndCheck(t, c, dir, a)
		})
	}
}

// TestWALFsyncFaultIgnoredByDefault: in the default mode WAL files are never
// fsynced (durability.go), so a failing fsync of the log cannot reach a
// write: the guarantee there is kill -9, not power loss.
func TestWALFsyncFaultIgnoredByDefault(t *testing.T) {
	f := &fault{}
	dir := filepath.Join(t.TempDir(), "cache")
	c := openFaulty(t, dir, f, Options{})
	f.set(syncs, walFile, syscall.EIO)
	a := acked{}
	a.write(t, c, rand.New(rand.NewPCG(3, 4)), "k", 200, 100)
	if f.hits.Load() != 0 {
		t.Fatalf("%d WAL fsyncs reached the file system in the default mode", f.hits.Load())
	}
	f.clear()
	reopenAndCheck(t, c, dir, a)
}

// TestFaultTables: writing or fsyncing a table file fails (a flush or a
// compaction). Pebble keeps the data in its memtables and WAL and retries;
// writes fail with ErrWritesSuspended (wrapping the disk's error) instead
// of blocking once the memtables are full; reads go on; when the fault
// clears writes resume by themselves, and nothing acknowledged is lost.
func TestFaultTables(t *testing.T) {
	cases := []struct {
		name  string
		class opClass
		errno syscall.Errno
	}{
		{"write-EIO", writes, syscall.EIO},
		{"write-ENOSPC", writes, syscall.ENOSPC},
		{"fsync-EIO", syncs, syscall.EIO},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			dir := filepath.Join(t.TempDir(), "cache")
			f := &fault{}
			// The 4 KiB values stay in Pebble (not the value log), so that
			// they fill its memtables and tables.
			c := openFaulty(t, dir, f, Options{ValueThreshold: -1})
			a := acked{}
			a.write(t, c, rng, "before", 300, 4<<10)
			f.set(tc.class, tableFile, tc.errno)
			err := a.writeUntilError(t, c, rng, "during", 5000)
			if !errors.Is(err, ErrWritesSuspended) || !errors.Is(err, tc.errno) {
				t.Fatalf("Set while tables cannot be written = %v; want ErrWritesSuspended wrapping %v", err, tc.errno)
			}
			a.check(t, c, "under the fault")
			if _, err := c.Len(ctx); err != nil {
				t.Fatalf("Len under the fault: %v", err)
			}
			f.clear()
			resume(t, c, a)
			a.check(t, c, "after the fault cleared")
			reopenAndCheck(t, c, dir, a)
		})
	}
}

// TestFaultTableReads: reading a table file fails with EIO. Gets of the
// keys in it fail with an error that wraps EIO (not a miss, not a panic);
// once the fault clears they read back intact.
func TestFaultTableReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir := filepath.Join(t.TempDir(), "cache")
	f := &fault{}
	c := openFaulty(t, dir, f, Options{})
	a := acked{}
	a.write(t, c, rng, "k", 1500, 4<<10)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openFaulty(t, dir, f, Options{}) // an empty block cache: Gets read the tables
	f.set(reads, tableFile, syscall.EIO)
	failed := 0
	for k := range a {
		_, err := within(t, 10*time.Second, "Get", func() ([]byte, error) { return c.Get(ctx, k) })
		switch {
		case err == nil:
		case errors.Is(err, syscall.EIO) && !errors.Is(err, ErrNotFound):
			failed++
		default:
			t.Fatalf("Get %s with unreadable tables = %v; want an error wrapping EIO", k, err)
		}
	}
	if failed == 0 {
		t.Fatal("no Get read a table")
	}
	t.Logf("%d of %d Gets failed with EIO", failed, len(a))
	f.clear()
	// A read that joins a table open begun under the fault (by Pebble's
	// table-stats loader, say) gets that open's error: allow a second.
	deadline := time.Now().Add(time.Second)
	for k, want := range a {
		for {
			got, err := c.Get(ctx, k)
			if err == nil && bytes.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the fault cleared %s: %v", k, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	resume(t, c, a)
	reopenAndCheck(t, c, dir, a)
}

// TestDiskFull: the disk fills up (no file can be created and tables cannot
// grow; the recycled WAL is overwritten in place). Writes fail with
// ErrWritesSuspended wrapping ENOSPC, everything acknowledged stays
// readable, and writes resume by themselves when space comes back.
func TestDiskFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	dir := filepath.Join(t.TempDir(), "cache")
	d := &diskFull{}
	logged := &countingHandler{}
	c := openFaulty(t, dir, d, Options{Logger: slog.New(logged), ValueThreshold: -1}) // values in Pebble's tables
	a := acked{}
	a.write(t, c, rng, "before", 300, 4<<10)
	d.on.Store(true)
	err := a.writeUntilError(t, c, rng, "during", 5000)
	if !errors.Is(err, ErrWritesSuspended) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Set on a full disk = %v; want ErrWritesSuspended wrapping ENOSPC", err)
	}
	a.check(t, c, "with the disk full")
	if keys, _, err := c.Scan(ctx, 0, 100); err != nil || len(keys) == 0 {
		t.Fatalf("Scan with the disk full: %d keys, %v", len(keys), err)
	}
	// Pebble retries the failed flush without end; the backoff in health.go
	// keeps that to about ten tries a second, not tens of thousands.
	before, logs := d.hits.Load(), logged.n.Load()
	time.Sleep(time.Second)
	if n := d.hits.Load() - before; n > 100 {
		t.Errorf("%d failed writes in a second of full disk: the flush retries do not back off", n)
	} else {
		t.Logf("%d failed writes in a second of full disk", n)
	}
	if n := logged.n.Load() - logs; n > 2 {
		t.Errorf("%d errors logged in a second of full disk", n)
	}
	d.on.Store(false)
	resume(t, c, a)
	a.check(t, c, "after space came back")
	reopenAndCheck(t, c, dir, a)
}

// TestDiskFullWAL: the disk is so full that the WAL cannot be written
// either. The store fails (ErrStoreFailed wrapping ENOSPC) and stays
// readable; reopening while the disk is still full fails with an I/O
// error, which Options.ResetIfDamaged does not take for damage; once space
// comes back Open works and every acknowledged write is there.
func TestDiskFullWAL(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	dir := filepath.Join(t.TempDir(), "cache")
	d := &diskFull{wal: true}
	c := openFaulty(t, dir, d, Options{})
	a := acked{}
	a.write(t, c, rng, "before", 300, 4<<10)
	d.on.Store(true)
	err := a.writeUntilError(t, c, rng, "during", 5000)
	if !errors.Is(err, syscall.ENOSPC) || !(errors.Is(err, ErrStoreFailed) || errors.Is(err, ErrWritesSuspended)) {
		t.Fatalf("Set on a full disk = %v; want ErrStoreFailed or ErrWritesSuspended wrapping ENOSPC", err)
	}
	a.check(t, c, "with the disk full")
	if err := closeWithin(t, c); err != nil {
		t.Logf("close with the disk full: %v", err)
	}
	_, err = within(t, 20*time.Second, "Open", func() (*Cache, error) {
		return Open(dir, &Options{SizeLimit: 64 << 20, ResetIfDamaged: true, fs: newFaultFS(d)})
	})
	if err == nil || errors.Is(err, ErrCorrupt) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open with the disk full = %v; want an error wrapping ENOSPC, not ErrCorrupt", err)
	}
	t.Logf("open with the disk full: %v", err)
	d.on.Store(false)
	c = openFaulty(t, dir, d, Options{})
	a.check(t, c, "after space came back")
	reopenAndCheck(t, c, dir, a)
}

// faultValue is the value the fault-writer child writes under key i.
func faultValue(i int) []byte {
	return randValue(rand.New(rand.NewPCG(uint64(i), 99)), 4<<10)
}

// uncontained are the faults Pebble does not survive: the process dies.
var uncontained = map[string]struct {
	class opClass
	kind  fileKind
	dies  string // what the dying process says on standard error
}{
	// A flush writes its table, then cannot record it in the MANIFEST:
	// Pebble calls Fatalf on its own goroutine (version_set.go).
	"manifest": {writes, manifestFile, "MANIFEST"},
	// The memtable is full and Pebble cannot create the next WAL file: it
	// panics in rotateWAL with DB.mu released, and a deferred unlock of
	// that mutex turns the panic into a fatal error that no recover sees.
	"wal-create": {creates, walFile, "fatal error"},
}

func init() {
	// fault-writer DIR FAULT: open DIR with the fault armed, then set
	// key-0, key-1, ... (faultValue), printing "ack i" after each Set
	// returns, until the process dies.
	childRoles["fault-writer"] = func(args []string) error {
		u := uncontained[args[1]]
		f := &fault{}
		c, err := Open(args[0], &Options{SizeLimit: 64 << 20, ValueThreshold: -1, fs: newFaultFS(f)})
		if err != nil {
			return err
		}
		f.set(u.class, u.kind, syscall.EIO)
		for i := 0; ; i++ {
			if err := c.Set(ctx, "key-"+strconv.Itoa(i), faultValue(i), 0); err != nil {
				return err
			}
			fmt.Printf("ack %d\n", i) // unbuffered: the line is out before the next Set
		}
	}
}

// TestUncontainedFaultsLoseNothing: the two disk faults that end the
// process (Pebble's choice, see health.go) are a crash like kill -9: every
// write that returned is there after reopening.
func TestUncontainedFaultsLoseNothing(t *testing.T) {
	for name, u := range uncontained {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			cmd := childCommand(t, "fault-writer", dir, name)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acks := 0
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				acks++
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(stderr.String(), u.dies) {
				t.Fatalf("the writer exited with %v after %d writes; want it to die saying %q; stderr:\n%.2000s", err, acks, u.dies, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String()[strings.Index(stderr.String(), u.dies):], "\n")
			t.Logf("the writer died after %d acknowledged writes: %s", acks, first)
			c, err := Open(dir, &Options{SizeLimit: 64 << 20})
			if err != nil {
				t.Fatalf("reopen after the writer died: %v", err)
			}
			defer c.Close()
			for i := 0; i < acks; i++ {
				mustGet(t, c, "key-"+strconv.Itoa(i), faultValue(i))
			}
		})
	}
}

// TestFaultReachesForwarders: a process that forwards to an owner whose
// disk fails gets the same errors (ErrWritesSuspended, ErrStoreFailed) and
// keeps reading.
func TestFaultReachesForwarders(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	dir := filepath.Join(t.TempDir(), "cache")
	f := &fault{}
	owner := openFaulty(t, dir, f, Options{ValueThreshold: -1}) // values in Pebble's tables
	fwd, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	a := acked{}
	a.write(t, fwd, rng, "before", 300, 4<<10)

	f.set(writes, tableFile, syscall.ENOSPC)
	if err := a.writeUntilError(t, fwd, rng, "tables", 5000); !errors.Is(err, ErrWritesSuspended) {
		t.Fatalf("forwarded Set while tables cannot be written = %v; want ErrWritesSuspended", err)
	}
	a.check(t, fwd, "through the forwarder, under the fault")
	f.clear()
	resume(t, fwd, a)

	f.set(writes, walFile, syscall.EIO)
	if err := set(t, fwd, "wal", []byte("v")); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("forwarded Set after the owner's WAL failed = %v; want ErrStoreFailed", err)
	}
	a.check(t, fwd, "through the forwarder, after the owner's store failed")
	f.clear()
	resume(t, fwd, a)
	a.check(t, fwd, "through the forwarder, after the owner reopened its store")
	fwd.Close()
	reopenAndCheck(t, owner, dir, a)
}

// countingHandler is a slog.Handler that counts the errors logged.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// powerValue is the value of the w-th write of key i in TestPowerLoss.
func powerValue(i, w int) []byte {
	return []byte(fmt.Sprintf("key %d, write %d: %s", i, w, strings.Repeat("x", 100+i%300)))
}

// TestPowerLoss cuts the power under a cache: Pebble's crashable in-memory
// file system keeps what was fsynced and, at random, part of what was not
// (any block, not only a prefix), as a disk may after a power cut. With
// Options.Sync every acknowledged write survives, the store opens, Len
// matches a scan and Check finds nothing wrong. In the default mode (kill
// -9 safe, not power-loss safe) writes since the last fsync of a table may
// be lost, and what opens is consistent in the same way; or, when the cut
// kept a later block of a log without an earlier one, Open fails with
// ErrCorrupt naming that log, and ResetIfDamaged starts the cache over.
//
// The cut comes while the cache is open, after its Close, which in the
// default mode does not fsync the newest log either (noSyncFile), or in a
// second session, whose Open left out the syncs the default mode does not
// need (openSyncs): the same holds then.
func TestPowerLoss(t *testing.T) {
	for _, when := range []string{"open", "closed", "reopened"} {
		for _, mode := range []string{"sync", "default"} {
			for _, unsynced := range []int{0, 50, 100} {
				testPowerLoss(t, when, mode, unsynced)
			}
		}
	}
}

func testPowerLoss(t *testing.T, when, mode string, unsynced int) {
	t.Run(fmt.Sprintf("%s/%s/%d%%-of-unsynced-data-kept", when, mode, unsynced), func(t *testing.T) {
		mem := vfs.NewCrashableMem()
		dir := filepath.Join(t.TempDir(), "cache")
		o := Options{SizeLimit: 64 << 20, Sync: mode == "sync", fs: mem}
		c, err := Open(dir, &o)
		if err != nil {
			t.Fatal(err)
		}
		const keys, writes = 300, 3
		n := keys
		switch {
		case mode == "default" && when == "open":
			n = 3000 // enough to flush some tables, which are fsynced
		case mode == "default":
			n = 100 // few enough that Close leaves them in its last log (flushAtCloseMin)
		}
		for w := 0; w < writes; w++ {
			if w == writes-1 && when == "reopened" {
				// The last round in a second session, whose Open
				// flushed the first's log and left out the syncs
				// the default mode does not need (openSyncs).
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				if c, err = Open(dir, &o); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < n; i++ {
				if err := c.Set(ctx, "k"+strconv.Itoa(i), powerValue(i, w), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		if when == "closed" {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(unsynced), 1))})
		c.Close()

		o.fs = crashed
		c, err = Open(dir, &o)
		if err != nil && mode == "default" && errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), ".log: ") {
			// The default mode does not fsync the log being written,
			// and a power cut may keep a later block of it without an
			// earlier one: Pebble takes that for corruption. Older
			// logs were synced when Pebble closed them, so the error
			// names the newest, and ResetIfDamaged cuts it at the
			// hole and keeps the rest of the store.
			t.Logf("Open after the power cut: %v", err)
			o.ResetIfDamaged = true
			c, err = Open(dir, &o)
		}
		if err != nil {
			t.Fatalf("Open after the power cut: %v", err)
		}
		last, older, lost := 0, 0, 0
		for i := 0; i < n; i++ {
			v, err := c.Get(ctx, "k"+strconv.Itoa(i))
			switch {
			case errors.Is(err, ErrNotFound):
				lost++
			case err != nil:
				t.Fatalf("k%d after the power cut: %v", i, err)
			case bytes.Equal(v, powerValue(i, writes-1)):
				last++
			default:
				ok := false
				for w := 0; w < writes-1; w++ {
					ok = ok || bytes.Equal(v, powerValue(i, w))
				}
				if !ok {
					t.Fatalf("k%d after the power cut holds %q, a value never written", i, v)
				}
				older++
			}
		}
		if mode == "sync" && last != n {
			t.Fatalf("with Sync %d of %d acknowledged writes survived the power cut (%d older values, %d missing)", last, n, older, lost)
		}
		l, err := c.Len(ctx)
		if scanned := countScan(t, c); err != nil || l != scanned {
			t.Fatalf("Len = %d, %v; a scan finds %d", l, err, scanned)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Check(ctx, dir, &Options{fs: crashed})
		if err != nil || r.Damaged() {
			t.Fatalf("Check after the power cut: %v, %v", r.Problems, err)
		}
		t.Logf("%d keys: %d hold the last write, %d an older one, %d none", n, last, older, lost)
	})
}
