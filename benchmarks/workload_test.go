package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testScale keeps generation fast: every count at its minimum or a little
// above.
const testScale = 0.005

// goldenW1 pins the generator: a change to keys, values or op order makes
// new results incomparable with committed ones, so it must be deliberate.
const goldenW1 = "82d195338be0beb8e45fab0cf2a8e204f2bf2523c962dc529cece406d836a2af"

func TestWorkloadsAreDeterministic(t *testing.T) {
	p := newParams(testScale)
	a, b := digests(p), digests(p)
	for w, d := range a {
		if b[w] != d {
			t.Errorf("%s: digest %s, then %s", w, d, b[w])
		}
	}
	if a["W1"] != goldenW1 {
		t.Errorf("W1 digest %s, want %s: the generator changed", a["W1"], goldenW1)
	}
}

func TestKeys(t *testing.T) {
	p := newParams(testScale)
	seen := map[string]bool{}
	for _, k := range keyRange(0, p.keys()) {
		if len(k) < 16 || len(k) > 24 {
			t.Fatalf("key %q is %d bytes, want 16-24", k, len(k))
		}
		if seen[k] {
			t.Fatalf("key %q twice", k)
		}
		seen[k] = true
	}
}

func TestValues(t *testing.T) {
	pl := newPools()
	for _, n := range []int{valueW1, valueW6, valueW4} {
		for i := range 200 {
			v := pl.appendValue(nil, i, n, saltW1)
			if len(v) != n {
				t.Fatalf("value %d at size %d is %d bytes", i, n, len(v))
			}
			if w := pl.appendValue(nil, i, n, saltW3); bytes.Equal(v, w) {
				t.Fatalf("value %d: the salt changes nothing", i)
			}
		}
	}
	if bytes.Equal(pl.appendValue(nil, 1, 128, 1)[8:], pl.random[:120]) {
		t.Fatal("odd keys must take text")
	}
}

// TestPythonSameOperations runs the Python script's digest over the spec
// file: the Python peer must run exactly the Go peers' operations.
func TestPythonSameOperations(t *testing.T) {
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3")
	}
	p := newParams(testScale)
	dir := t.TempDir()
	spec, script := filepath.Join(dir, "spec.bin"), filepath.Join(dir, "pydiskcache.py")
	if err := writeSpec(spec, p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, pyScript, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, script, "--spec", spec, "--digest").Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var theirs map[string]string
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatal(err)
	}
	for w, d := range digests(p) {
		if theirs[w] != d {
			t.Errorf("%s: Go %s, Python %s", w, d, theirs[w])
		}
	}
}

// TestGoPeers runs W1, W2 and W5's expiry check against every Go peer at
// the smallest scale, through the child entry point.
func TestGoPeers(t *testing.T) {
	for _, pr := range peers {
		if pr.open == nil {
			continue
		}
		t.Run(pr.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, w := range []string{"W1", "W2", "W3", "W4"} {
				var out bytes.Buffer
				j := job{Peer: pr.name, Workload: w, Dir: dir, Scale: testScale}
				if w == "W4" {
					j.Dir = t.TempDir()
				}
				if err := runChild(j, strings.NewReader(""), &out); err != nil {
					t.Fatalf("%s: %v", w, err)
				}
				var res result
				if err := json.Unmarshal(out.Bytes(), &res); err != nil {
					t.Fatalf("%s: %v: %q", w, err, out.String())
				}
				if len(res.Metrics) == 0 || res.PeakRSS == 0 {
					t.Fatalf("%s: empty result %+v", w, res)
				}
			}
		})
	}
}
