package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// pythonPeer runs in pydiskcache.py, which reads the generated data from a
// spec file (spec.go); the harness checks that both sides generated the
// same operations by comparing digests.
var pythonPeer = peer{
	name:       "python-diskcache",
	durability: "SQLite WAL with synchronous=NORMAL (its default): survives kill -9, not power loss",
	blockCache: "64 MiB SQLite page cache (default 32 MiB) per connection, one connection a thread, plus its default 64 MiB mmap",
	ttl:        "native: expire= on set; expired rows are misses; each set culls up to 10 expired rows, expire() the rest",
	limit:      "size_limit, culled on set (least-recently-used in W6 and W11; its default is least-recently-stored)",
	reclaim:    "Cache.expire() (then SQLite's auto_vacuum=FULL shrinks the file), called by the application",
}

//go:embed pydiskcache.py
var pyScript []byte

// pyLifecycle is one process of W8's multi-process example: it imports only
// python-diskcache, as the example's processes do.
//
//go:embed pyopensetclose.py
var pyLifecycle []byte

// setupPython checks for the interpreter and module, writes the script and
// the spec, and compares the script's digests with ours. It returns why the
// peer is skipped, or an error that must stop the run.
func (r *runner) setupPython() (skip string, err error) {
	out, err := exec.Command(r.cfg.python, "-c",
		"import sys, sqlite3, diskcache; print(sys.version.split()[0], diskcache.__version__, sqlite3.sqlite_version)").Output()
	if err != nil {
		return fmt.Sprintf("%s with the diskcache module not found (apt-get install python3-diskcache)", r.cfg.python), nil
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return "", fmt.Errorf("%s: unexpected version line %q", r.cfg.python, out)
	}
	r.pyVersion = fmt.Sprintf("Python %s, python-diskcache %s, SQLite %s", f[0], f[1], f[2])
	r.pyScript = filepath.Join(r.work, "pydiskcache.py")
	r.pySpec = filepath.Join(r.work, "spec.bin")
	if err := os.WriteFile(r.pyScript, pyScript, 0o600); err != nil {
		return "", err
	}
	r.pyLifecycle = filepath.Join(r.work, "pyopensetclose.py")
	if err := os.WriteFile(r.pyLifecycle, pyLifecycle, 0o600); err != nil {
		return "", err
	}
	if err := writeSpec(r.pySpec, r.p); err != nil {
		return "", fmt.Errorf("writing the spec: %w", err)
	}
	r.logf("checking that Python generates the same operations (digest)")
	out, err = exec.Command(r.cfg.python, r.pyScript, "--spec", r.pySpec, "--digest").Output()
	if err != nil {
		return "", fmt.Errorf("python digest: %w", err)
	}
	var theirs map[string]string
	if err := json.Unmarshal(out, &theirs); err != nil {
		return "", fmt.Errorf("python digest: %w", err)
	}
	for _, w := range slices.Sorted(maps.Keys(r.digests)) {
		if theirs[w] != r.digests[w] {
			// Not a skip: a peer running other operations is a harness bug.
			return "", fmt.Errorf("%s digest differs: Go %s, Python %s", w, r.digests[w], theirs[w])
		}
	}
	return "", nil
}

func (r *runner) pythonCommand(workload, dir string, part int) *exec.Cmd {
	return exec.Command(r.cfg.python, r.pyScript, "--spec", r.pySpec,
		"--dir", dir, "--workload", workload, "--part", strconv.Itoa(part))
}
