package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// What a store does when its disk fails (fault_test.go shows each case).
//
// A failed write of Pebble's write-ahead log (EIO, ENOSPC, a failed fsync)
// is final for the open store: Pebble's log writer keeps the error, and
// Pebble calls Logger.Fatalf from the commit that saw it (db.go: "fatal
// commit error") because its commit pipeline cannot be unwound. Our logger
// panics there (returning would report the write as done), guard recovers
// the panic in the goroutine that committed, and from then on the store
// refuses every write with ErrStoreFailed and serves reads as before. The
// Cache reopens it once a probe write to the directory succeeds again
// (recover.go): opening replays the log, and the cache carries on.
//
// A failed flush or compaction (a table file that cannot be written) is not
// final: Pebble keeps the data in its memtables and log and retries at
// once. Until a flush succeeds again, writes fail with ErrWritesSuspended
// instead of filling the memtables and then blocking inside Pebble; reads
// go on. When the disk has room again the next retry succeeds and writes
// resume by themselves.
//
// What cannot be contained ends the process, as kill -9 would: writes that
// returned are in the log, and the next Open (or another process that
// shares the directory) recovers them (TestUncontainedFaultsLoseNothing).
// Pebble calls Fatalf from its own background goroutines when it cannot
// record a finished flush or compaction in its MANIFEST (version_set.go,
// "MANIFEST ... failed"), and no caller of ours is on that stack. And when
// it cannot close its log or create the next one as it switches memtables
// (db.go, rotateWAL), it panics with DB.mu released, a deferred unlock
// unlocks it again, and Go turns that into a fatal error no recover sees.
// On a disk that is full but has free inodes neither happens first: the
// table write of a flush fails before its MANIFEST edit, and Pebble
// preallocates and recycles its logs.

// pebbleFatal is the panic value of pebbleLogger.Fatalf: Pebble found a
// state it cannot continue from. It wraps the error Pebble passed, so that
// errors.Is(err, syscall.ENOSPC) still works on what callers get.
type pebbleFatal struct {
	msg   string
	cause error
}

func newPebbleFatal(msg string, args []any) pebbleFatal {
	p := pebbleFatal{msg: msg}
	for _, a := range args {
		if err, ok := a.(error); ok {
			p.cause = err
			break
		}
	}
	return p
}

func (p pebbleFatal) Error() string { return "diskcache: pebble: " + p.msg }
func (p pebbleFatal) Unwrap() error { return p.cause }

// errEmptyTable is the text of the error Pebble reports at the end of a
// flush that wrote no table (its errEmptyTable is not exported).
const errEmptyTable = "pebble: empty table"

// health tracks the failures Pebble reports for one open store.
type health struct {
	log *slog.Logger
	dir string

	failed     atomic.Pointer[error] // set once, by a recovered Pebble panic
	flushErr   atomic.Pointer[error] // the last flush failed; nil once one succeeds
	compactErr atomic.Pointer[error] // the last compaction failed
	stalled    atomic.Bool           // Pebble is stopping writes for flushes or compactions
	failures   atomic.Int32          // flushes and compactions failed in a row
	// onFail, when set, is called once when the store fails: the Cache
	// then reopens it once the disk takes writes again (recover.go).
	onFail atomic.Pointer[func()]

	logMu      sync.Mutex
	lastLogged time.Time
	unlogged   int
}

// attach makes po report to h: background errors, the end of flushes and
// compactions, write stalls and corruption. Pebble's default for
// DataCorruption is Fatalf, which would take the process down over one bad
// block of a cache; the read that found it returns an error wrapping
// ErrCorrupt instead, and the damage is logged with the file.
func (h *health) attach(po *pebble.Options, log *slog.Logger, dir string) *pebble.Options {
	h.log, h.dir = log, dir
	l := &pebble.EventListener{
		BackgroundError: func(err error) { h.logError("diskcache: pebble background error", err) },
		FlushEnd: func(info pebble.FlushInfo) {
			err := info.Err
			if err != nil && err.Error() == errEmptyTable {
				err = nil // a flush with nothing to write is a success
			}
			h.record(&h.flushErr, err, "diskcache: flush failed; writes are suspended until one succeeds")
		},
		CompactionEnd: func(info pebble.CompactionInfo) {
			h.record(&h.compactErr, info.Err, "diskcache: compaction failed")
		},
		WriteStallBegin: func(pebble.WriteStallBeginInfo) { h.stalled.Store(true) },
		WriteStallEnd:   func() { h.stalled.Store(false) },
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			h.log.Error("diskcache: corrupt store file; run diskcache check", "file", info.Path, "err", info.Details)
		},
	}
	l.EnsureDefaults(po.Logger)
	po.EventListener = l
	return po
}

// record keeps err (nil clears it) in slot and logs a failure.
//
// After a failure it also sleeps, 1 ms doubling to 100 ms while failures
// repeat. Pebble retries a failed flush at once, without end (compaction.go:
// "TODO(peter): count consecutive flush errors and backoff"): on a full
// disk it created and removed a table file about 30,000 times a second on
// one core. The listener runs on the flush's goroutine with Pebble's
// DB.mu held, which reads do not take (they use the read state); writes
// are refused meanwhile anyway.
func (h *health) record(slot *atomic.Pointer[error], err error, msg string) {
	if err == nil {
		h.failures.Store(0)
		if slot.Swap(nil) != nil {
			h.log.Info("diskcache: store writes to disk again")
		}
		return
	}
	slot.Store(&err)
	h.logError(msg, err)
	n := min(h.failures.Add(1), 8)
	time.Sleep(min(time.Millisecond<<(n-1), 100*time.Millisecond))
}

// logError logs a background failure. Pebble retries a failed flush at once
// and without end, so a full disk would log thousands of lines a second:
// after the first, at most one line in 10 s says how many were left out.
func (h *health) logError(msg string, err error) {
	h.logMu.Lock()
	now := time.Now()
	if now.Sub(h.lastLogged) < 10*time.Second {
		h.unlogged++
		h.logMu.Unlock()
		return
	}
	n := h.unlogged
	h.lastLogged, h.unlogged = now, 0
	h.logMu.Unlock()
	h.log.Error(msg, "err", err, "repeats_not_logged", n)
}

// failure returns the error that made the store fail, or nil.
func (h *health) failure() error {
	if p := h.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// writable returns why a write must be refused now, or nil.
func (h *health) writable() error {
	if err := h.failure(); err != nil {
		return err
	}
	if p := h.flushErr.Load(); p != nil {
		return fmt.Errorf("%w: %s: a flush to disk failed: %w", ErrWritesSuspended, h.dir, *p)
	}
	if p := h.compactErr.Load(); p != nil && h.stalled.Load() {
		return fmt.Errorf("%w: %s: writes are stalled and compactions fail: %w", ErrWritesSuspended, h.dir, *p)
	}
	return nil
}

// fail records that Pebble panicked with r and returns the error every later
// write gets. Panics that are not Pebble giving up (a runtime error: a bug)
// go on.
func (h *health) fail(r any) error {
	var cause error
	switch v := r.(type) {
	case runtime.Error:
		panic(r)
	case error: // pebbleFatal, or an error Pebble panicked with (rotating its log)
		cause = v
	default:
		cause = fmt.Errorf("%v", r)
	}
	err := fmt.Errorf("%w: %s: %w", ErrStoreFailed, h.dir, cause)
	if h.failed.CompareAndSwap(nil, &err) {
		h.log.Error("diskcache: the store failed to write to disk; it is reopened once the disk takes writes again", "err", cause)
		if f := h.onFail.Load(); f != nil {
			(*f)()
		}
	}
	return *h.failed.Load()
}

// guard runs fn, a call into Pebble that may write, in a store that has not
// failed. If Pebble gives up inside fn (Fatalf, or a panic while rotating
// its log), guard turns the panic into an error and the store into a failed
// one.
func (c *store) guard(fn func() error) (err error) {
	if err := c.health.failure(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = c.health.fail(r)
		}
	}()
	return fn()
}

// apply commits b with the store's write options, unless writes are refused
// now.
func (c *store) apply(b *pebble.Batch) error {
	if err := c.health.writable(); err != nil {
		return err
	}
	return c.guard(func() error {
		if err := c.markDirty(); err != nil {
			return err
		}
		return b.Commit(c.write)
	})
}

// compact compacts [lo, hi) unless the store failed: a compaction flushes
// the memtable first, which in a failed store panics while rotating the log.
func (c *store) compact(lo, hi []byte) error {
	c.compactions.release()
	return c.guard(func() error { return c.db.Compact(c.bgCtx, lo, hi, false) })
}

// checkFreeSpace fails with ENOSPC when the disk under dir has less than
// need bytes available. pebble.Open flushes the log it replays, and when
// that flush fails it retries and waits without end: on a full disk Open
// would hang until space came back, instead of saying why it cannot start.
func checkFreeSpace(fs vfs.FS, dir string, need uint64) error {
	u, err := fs.GetDiskUsage(dir)
	if err != nil {
		return nil // unknown: let Pebble try
	}
	if u.AvailBytes < need {
		return fmt.Errorf("%d bytes free on the disk, opening the store needs %d: %w", u.AvailBytes, need, syscall.ENOSPC)
	}
	return nil
}

// corruptIf marks an error that Pebble reports as corruption (a checksum
// that does not match, a block that does not parse) with ErrCorrupt.
func corruptIf(err error) error {
	if err != nil && pebble.IsCorruptionError(err) && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}
