package engine

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// Closing the store's Pebble side, in the order store.Close (open.go)
// runs them: save what the next Open reads, flush the memtable so that
// Open has no long log to replay, close Pebble, which a failed store may
// not let finish, and after a flush remove the logs it kept to reuse. A
// failed store skips all but closing (health.go).

// saveState writes what Close keeps for the next Open (the access clock,
// the counts and the clean mark). A failed store writes nothing: the next
// Open then finds no clean mark and recounts.
func (c *store) saveState() error {
	if c.health.failure() != nil {
		return nil
	}
	err := c.guard(c.saveAccess)
	// No call runs: the clock's side file now holds the clock as it is,
	// if it was loaded and that save (or its finding the clock unchanged)
	// worked.
	clockSaved := err == nil && c.lim.loaded.Load()
	if serr := c.guard(func() error { return c.saveKeyState(clockSaved) }); err == nil {
		err = serr
	}
	return err
}

// flushAtClose flushes the memtable if this session wrote at least
// flushAtCloseMin to Pebble's log. The flush costs Close what it saves the
// next Open, which otherwise replays the log and flushes it before it
// returns (Pebble's Open does), and the next owner's Open is on the path
// of every process that waits to take over: after a session that wrote
// much, nothing is left to replay, and a reopen at a 64 GiB limit does not
// start with a 64 MiB memtable to read through.
//
// A session that wrote little leaves its log: a flush of its own costs
// more than the replay's. Pebble's Open writes a new manifest whatever it
// finds, and the table of a small replayed log is one more record in it;
// a flush at Close rotates the log, writes the table and a manifest record,
// each synced, and the compaction it starts (every second flush, with
// L0CompactionThreshold 2) holds Pebble's Close. Measured in the same run
// (benchmarks W8, Open + Set + Close of a 1,000-key cache, under load):
// Close 11.3 ms with the flush, raw Pebble's 0.4 ms without one, with
// raw Pebble's Open, replay included, at 5.6 ms against our 6.6 ms.
//
// It reports whether it flushed.
func (c *store) flushAtClose() (bool, error) {
	if !c.unflushed.Load() || c.health.failure() != nil {
		return false, nil
	}
	if c.db.Metrics().WAL.Size < flushAtCloseMin {
		return false, nil
	}
	err := c.guard(c.db.Flush)
	return err == nil, err
}

// dropOldLogs removes every log but the newest from the closed store at
// path, whose Close flushed: the flush put everything the older logs hold
// into tables and started the newest, which nothing was written to after.
// With Sync, Pebble keeps up to MemTableStopWritesThreshold+1 such logs
// to reuse their files (durability.recycleLogs), each as large as a
// memtable (SizeLimit/256): 12 MiB of a closed cache of 500,000 small
// values at the default limit, 96 MiB at 8 GiB, bytes that grew with the
// limit and held nothing. The next session makes new logs as it needs
// them. Without a flush the older logs may hold what the next Open must
// replay, and they stay. The caller still holds the directory's lock; a
// log that cannot be removed is left to Pebble.
func dropOldLogs(fsys vfs.FS, path string) {
	logs, err := wal.Scan(wal.Dir{FS: fsys, Dirname: path}) // oldest first
	if err != nil || len(logs) < 2 {
		return
	}
	for _, l := range logs[:len(logs)-1] {
		for i := range l.NumSegments() {
			_, name := l.SegmentLocation(i)
			if filepath.Dir(name) == filepath.Clean(path) {
				fsys.Remove(name)
			}
		}
	}
}

// flushAtCloseMin: below this much of Pebble's log written in a session
// (about 2,000 entries of 128 B), Close leaves the log to the next Open.
const flushAtCloseMin = 256 << 10

// pebbleCloseWait bounds how long Close waits for Pebble in a failed store.
const pebbleCloseWait = 10 * time.Second

// closePebble closes Pebble. In a store that failed, a panic may have left
// Pebble's commit pipeline locked, and its Close would wait for ever; then
// Close gives up after pebbleCloseWait and says so. The process keeps
// Pebble's lock on the store until it exits.
func (c *store) closePebble() error {
	c.durability.closing()
	if c.health.failure() == nil {
		return c.db.Close()
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("pebble: %v", r)
			}
		}()
		done <- c.db.Close()
	}()
	select {
	case err := <-done:
		if err != nil {
			// The error is the log failure the store already reported.
			c.log.Info("diskcache: closing the failed store", "err", err)
		}
		return nil
	case <-time.After(pebbleCloseWait):
		return fmt.Errorf("%w: %s: Pebble did not close within %v after the failure; restart the process to release the store",
			ErrStoreFailed, c.dir, pebbleCloseWait)
	}
}
