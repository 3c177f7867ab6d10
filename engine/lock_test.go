package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLockFileNamesTheOwner: the lock file holds the owner's PID whatever
// it held before (a longer line another version wrote, a shorter one, an
// empty file), and a second lockDir fails naming that PID.
func TestLockFileNamesTheOwner(t *testing.T) {
	for _, before := range []string{"", "7\n", "123456789012345678901234567890\n", strings.Repeat(" ", pidWidth)} {
		dir := t.TempDir()
		path := filepath.Join(dir, lockName)
		if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := lockDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != pidWidth || b[len(b)-1] != '\n' {
			t.Errorf("lock file after %q: %q, want %d bytes ending in a newline", before, b, pidWidth)
		}
		if got := ownerPID(path); got != os.Getpid() {
			t.Errorf("lock file after %q: ownerPID %d, want %d", before, got, os.Getpid())
		}
		_, err = lockDir(dir)
		if !errors.Is(err, ErrOwned) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("second lockDir: %v, want ErrOwned naming pid %d", err, os.Getpid())
		}
		if err := l.release(); err != nil {
			t.Fatal(err)
		}
	}
}
