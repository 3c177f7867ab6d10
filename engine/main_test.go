package engine

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Multi-process tests re-execute the test binary with DISKCACHE_CHILD set to
// the name of a child role; TestMain runs that role instead of the tests.
var childRoles = map[string]func(args []string) error{}

const childEnv = "DISKCACHE_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		run, ok := childRoles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		if err := run(os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childCommand returns a command that runs role in a new process of this
// test binary with args.
func childCommand(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd
}

func osStdout() *os.File { return os.Stdout }

// local returns the store of a Cache that owns its directory.
func (c *Cache) local() *store { return c.role.Load().local }
