package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// probeName is the file a failed owner writes, syncs and removes to learn
// that its disk takes writes again.
const probeName = "owner.probe"

// Backoff between probes of a failed store's disk.
const (
	recoverFirstWait = 100 * time.Millisecond
	recoverMaxWait   = 5 * time.Second
)

// recoverStore reopens the store of the role failed, whose log write
// failed (health.go): Pebble's open store takes no more writes, but a new
// one replays the log and does. Once a probe write to the directory
// succeeds (the disk has room again, the fault has cleared), the directory
// is handed off as on Close: this process usually owns it again at once,
// but another one may take over first. Calls in flight meanwhile are
// retried as in any handoff.
func (c *Cache) recoverStore(failed *role) {
	wait := recoverFirstWait
	for {
		select {
		case <-c.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, recoverMaxWait)
		if c.role.Load() != failed {
			return
		}
		if err := probeWrite(c.opts.filesystem(), c.dir); err != nil {
			c.log.Debug("diskcache: the disk does not take writes yet", "err", err)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.HandoffWindow)
		err := c.handoff(ctx, failed)
		cancel()
		if err == nil {
			c.log.Info("diskcache: reopened the store after it failed", "owner", c.IsOwner())
			return
		}
		c.log.Warn("diskcache: reopening the failed store failed; trying again", "err", err)
	}
}

// probeWrite writes, syncs and removes a small file in dir.
func probeWrite(fs vfs.FS, dir string) error {
	path := filepath.Join(dir, probeName)
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, 4<<10))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := fs.Remove(path); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	return nil
}
