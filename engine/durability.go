package engine

import (
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The default durability: a write that returned has reached the operating
// system, so it survives kill -9 of the process but not power loss (SQLite's
// WAL with synchronous=NORMAL). Pebble's NoSync does not give this: the WAL
// block stays in Pebble's memory until it fills. So writes use pebble.Sync,
// whose log writer calls write(2) before it syncs, on a file system whose WAL
// files ignore the sync itself. Measured here (500k x 128 B): 276k Sets/s on
// one goroutine against 4.5k with a real fsync.

// processSafeFS wraps a vfs.FS so that WAL files (*.log) never fsync. Pebble
// recycles WAL files, so ReuseForWrite is wrapped as well as Create and
// OpenReadWrite. It also leaves out the syncs of Pebble's Open that the
// default mode does not need (openSyncs).
type processSafeFS struct {
	vfs.FS
	*pebblePhase
}

// pebblePhase is where Pebble is in its life, which decides some of the
// syncs processSafeFS leaves out: during Open (openSyncs), and as Pebble
// closes (closing, set by durability.closing; noSyncFile).
type pebblePhase struct {
	openSyncs
	closing atomic.Bool
}

func newProcessSafeFS(base vfs.FS) processSafeFS { return processSafeFS{base, new(pebblePhase)} }

func (fs processSafeFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if isOptionsTemp(name) {
		// Not synced during Open (openSyncs), the only time Pebble writes it.
		f, err := fs.FS.Create(name, cat)
		if err != nil {
			return nil, err
		}
		return unsyncedFile{f}, nil
	}
	fs.created(name)
	return fs.noSyncIfWAL(name)(fs.FS.Create(name, cat))
}

func (fs processSafeFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	fs.created(name) // it creates a file that is not there
	return fs.noSyncIfWAL(name)(fs.FS.OpenReadWrite(name, cat, opts...))
}

func (fs processSafeFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.noSyncIfWAL(newname)(fs.FS.ReuseForWrite(oldname, newname, cat))
}

func (fs processSafeFS) noSyncIfWAL(name string) func(vfs.File, error) (vfs.File, error) {
	return func(f vfs.File, err error) (vfs.File, error) {
		if err != nil || !strings.HasSuffix(name, ".log") {
			return f, err
		}
		return noSyncFile{unsyncedFile{f}, &fs.closing}, nil
	}
}

// noSyncFile is a WAL file whose syncs return at once: its writes have
// already been handed to the kernel.
//
// Close does sync: Pebble closes a log when it switches to the next one,
// once per memtable, so every log but the newest is on disk. After a power
// cut only the newest log can then be cut short, which Pebble reads as its
// end; an older log with a hole in it is corruption to Pebble, and the
// store would not open.
//
// But not the log Pebble closes as it closes (durability.closing). That log
// stays the newest until the next Open, which replays it and flushes what
// it held into a synced table before it makes a log of its own: it never
// becomes an older log. So a power cut after Close is one before it, which
// the default mode does not survive whole either (README, Guarantees). The
// sync was a quarter of a millisecond of every Close: without it a loop of
// Open, Set and Close of a 1,000-key cache (the lifecycle issue's) ran at
// 3.45 ms a cycle against 3.9 (p50s, 14 alternations), Open too a little
// faster, as the log is mostly deleted before its pages are written.
type noSyncFile struct {
	unsyncedFile // its syncs return at once
	closing      *atomic.Bool
}

func (f noSyncFile) Close() error {
	var err error
	if !f.closing.Load() {
		err = f.File.Sync()
	}
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

// Preallocate does nothing. Pebble preallocates each WAL file to 1.1 x
// MemTableSize so that a synced append need not update the file's size;
// these files are never synced while in use, so it buys nothing, and the
// blocks stay allocated past the end of the newest log after Close: 4.4 MiB
// of a closed one-key cache as du counts it (at the default 1 GiB limit).
func (noSyncFile) Preallocate(offset, length int64) error { return nil }

// unsyncedFile is a file whose syncs return at once.
type unsyncedFile struct{ vfs.File }

func (unsyncedFile) Sync() error                             { return nil }
func (unsyncedFile) SyncData() error                         { return nil }
func (unsyncedFile) SyncTo(int64) (fullSync bool, err error) { return true, nil }

// durability is how writes reach the disk, as chosen by Options.
type durability struct {
	fs    vfs.FS
	write *pebble.WriteOptions
	// recycleLogs: Pebble reuses the files of flushed logs, which makes
	// a real fsync of a log cheaper (its blocks and size are already on
	// disk). Where logs are never synced in use, a reused log buys
	// nothing and holds the disk a memtable's worth each (up to three):
	// a tenth of a 64 MiB limit (noRecycleCleaner).
	recycleLogs bool
}

func (o *Options) durability() durability {
	base := o.filesystem()
	switch {
	case o.Sync:
		return durability{fs: base, write: pebble.Sync, recycleLogs: true}
	case o.FlushInterval > 0:
		// Writes stay in Pebble's WAL buffer; the flusher pushes them out
		// every FlushInterval (see flushLoop).
		return durability{fs: newProcessSafeFS(base), write: pebble.NoSync}
	default:
		return durability{fs: newProcessSafeFS(base), write: pebble.Sync}
	}
}

// opening tells the file system that Pebble's Open begins, and returns
// the function that says it ended (openSyncs). With Sync it does nothing.
func (d durability) opening() (end func()) {
	if fs, ok := d.fs.(processSafeFS); ok {
		return fs.begin()
	}
	return func() {}
}

// closing tells the file system, just before Pebble closes, that the log
// Pebble closes next is its last (noSyncFile). With Sync, which fsyncs
// every write, there is nothing to skip.
func (d durability) closing() {
	if fs, ok := d.fs.(processSafeFS); ok {
		fs.closing.Store(true)
	}
}
