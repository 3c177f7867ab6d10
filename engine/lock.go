package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
)

// lockName is the file whose flock makes a process the owner of a cache
// directory. The kernel drops the lock when the owner exits or dies, so a
// stale lock file never blocks anyone. The owner writes its PID into it for
// error messages.
const lockName = "owner.lock"

// ownerLock is a held owner lock.
type ownerLock struct{ fl *flock.Flock }

// lockDir takes the owner lock of dir without waiting. When another process
// holds it, the error wraps ErrOwned and names that process.
func lockDir(dir string) (*ownerLock, error) {
	path := filepath.Join(dir, lockName)
	fl := flock.New(path, flock.SetPermissions(0o600))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("diskcache: lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s is locked by %s", ErrOwned, dir, describeOwner(path))
	}
	if err := writePID(path); err != nil {
		fl.Unlock()
		return nil, fmt.Errorf("diskcache: write owner pid to %s: %w", path, err)
	}
	return &ownerLock{fl: fl}, nil
}

// writePID writes this process's PID over the lock file's content, padded
// to pidWidth so that it replaces any other PID in place. Truncating the
// file first (os.WriteFile) made ext4 write it out at its close, which
// replace-by-truncate triggers (auto_da_alloc): a tenth of a millisecond of
// every Open. flock(2) locks are per open file, so writing through another
// handle does not disturb the lock.
func writePID(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(fmt.Appendf(nil, "%-*d\n", pidWidth-1, os.Getpid()), 0)
	if err == nil {
		err = f.Truncate(pidWidth) // a longer file another version wrote
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pidWidth is the lock file's length: a PID (at most 2^22 on Linux, 7
// digits) padded with spaces, and a newline.
const pidWidth = 12

// ownerPID reads the PID the owner wrote into the lock file; 0 if unknown.
func ownerPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

func describeOwner(path string) string {
	if pid := ownerPID(path); pid > 0 {
		return "pid " + strconv.Itoa(pid)
	}
	return "another process"
}

func (l *ownerLock) release() error {
	return l.fl.Unlock()
}
