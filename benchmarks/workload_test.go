package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	for _, k := range keyRange(0, p.base11()+p.N11) {
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
	// W11's values are random bytes for odd keys too; even keys' are
	// appendValue's.
	for i := range 200 {
		v := pl.appendRandom(nil, i, valueW11, saltW11)
		if !bytes.Contains(pl.random, v[8:]) {
			t.Fatalf("W11 value %d is not a window of the random pool", i)
		}
		if w := pl.appendValue(nil, i, valueW11, saltW11); i%2 == 0 && !bytes.Equal(v, w) {
			t.Fatalf("W11 value %d differs from appendValue's for an even key", i)
		}
	}
}

// TestW11Sizes: W11 writes 3x its limit at scale 1 and keeps its limit at
// every scale, the scale applying to the data past it.
func TestW11Sizes(t *testing.T) {
	if n := newParams(1).N11; n != 1_572_864 {
		t.Errorf("N11 at scale 1 = %d, want 1,572,864", n)
	}
	for _, scale := range []float64{testScale, 0.05, 1, 2} {
		p := newParams(scale)
		past := float64(int64(p.N11)*valueW11-limitW11) / float64(dataW11-limitW11)
		if math.Abs(past-scale) > 1e-3 {
			t.Errorf("scale %g: the data past the limit is %.4g of scale 1's", scale, past)
		}
	}
}

// TestScanLen: diskcache's count by a full scan, which W11 reports,
// agrees with its own count.
func TestScanLen(t *testing.T) {
	s, err := openDiskcache(t.TempDir(), storeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pl := newPools()
	const n = 3 * scanPage / 2
	for i := range n {
		if err := s.Set(key(i), pl.appendRandom(nil, i, valueW11, saltW11), 0); err != nil {
			t.Fatal(err)
		}
	}
	c := s.(counter)
	scanned, err := c.ScanLen()
	if err != nil {
		t.Fatal(err)
	}
	held, err := c.Len()
	if err != nil {
		t.Fatal(err)
	}
	if scanned != n || held != n {
		t.Errorf("after %d Sets: scan counts %d, Len says %d", n, scanned, held)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
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

// TestEveryWorkloadReported: each workload the harness runs has a line in
// the report and a description (a row, at least).
func TestEveryWorkloadReported(t *testing.T) {
	r := &runner{p: newParams(testScale)}
	for _, w := range workloads {
		if w == "W10" { // a section of its own: TestW10Section
			continue
		}
		if !slices.ContainsFunc(r.rows(), func(rw row) bool { return rw.workload == w }) {
			t.Errorf("%s has no row in the report", w)
		}
	}
}

// TestLifecycleAndScaleSteps runs W8's and W9's child steps at the smallest
// scale against the peers they are for, through the child entry point.
func TestLifecycleAndScaleSteps(t *testing.T) {
	step := func(t *testing.T, j job, want ...string) {
		t.Helper()
		j.Scale = testScale
		var out bytes.Buffer
		if err := runChild(j, strings.NewReader(""), &out); err != nil {
			t.Fatalf("%s: %v", j.Workload, err)
		}
		var res result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%s: %v: %q", j.Workload, err, out.String())
		}
		for _, m := range want {
			if v, ok := res.Metrics[m]; !ok || v <= 0 {
				t.Errorf("%s: metric %s = %v, %v in %+v", j.Workload, m, v, ok, res)
			}
		}
	}
	t.Run("W8", func(t *testing.T) {
		step(t, job{Peer: diskcachePeer.name, Workload: "W8proc", Dir: t.TempDir()}, "open_s", "set_s", "close_s")
		step(t, job{Peer: diskcachePeer.name, Workload: "W8loop", Dir: t.TempDir()}, "cycle_p50_ms", "cycle_p99_ms", "open_p50_ms")
	})
	for _, peer := range []string{diskcachePeer.name, pebblePeer.name} {
		t.Run("W9/"+peer, func(t *testing.T) {
			dir := t.TempDir()
			j := job{Peer: peer, Dir: dir, Keys: 3000, Limit: limitW9Low}
			j.Workload, j.GetsBefore = "W9fill", true
			step(t, j, "set_ops", "get_ops")
			j.Workload, j.GetsBefore = "W9reopen", false
			step(t, j, "open_s", "get_ops")
		})
	}
}

// TestW9ReopenFindsMissingKeys: a store holding fewer keys than the reopen
// reads is an error, not a slow success.
func TestW9ReopenFindsMissingKeys(t *testing.T) {
	dir := t.TempDir()
	fill := job{Peer: pebblePeer.name, Workload: "W9fill", Dir: dir, Scale: testScale, Keys: 1000, Limit: limitW9Low}
	if err := runChild(fill, strings.NewReader(""), io.Discard); err != nil {
		t.Fatal(err)
	}
	reopen := fill
	reopen.Workload, reopen.Keys = "W9reopen", 2000
	if err := runChild(reopen, strings.NewReader(""), io.Discard); err == nil {
		t.Fatal("reopen reading 2,000 keys of a 1,000-key store: no error")
	}
}

// TestRounds checks W8's aggregation over fake processes that report
// their Open times: process k of each round opened in k ms.
func TestRounds(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	r := &runner{p: params{Rounds8: 2}}
	m := map[string]float64{}
	cmd := func(dir string, k int) (*exec.Cmd, error) {
		return exec.Command(sh, "-c", fmt.Sprintf(`echo '{"metrics":{"open_s":%g,"close_s":0.002}}'`, float64(k)/1000)), nil
	}
	if err := r.rounds(t.TempDir(), cmd, "x_", m); err != nil {
		t.Fatal(err)
	}
	// Opens, sorted: 0 0 1 1 2 2 3 3 ms; the p50 by nearest rank is the 4th.
	for name, want := range map[string]float64{"x_open_max_ms": 3, "x_open_p50_ms": 1, "x_close_p50_ms": 2} {
		if got := m[name]; math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if m["x_wall_s"] <= 0 || m["x_life_max_ms"] <= 0 {
		t.Errorf("no wall time or life: %v", m)
	}
	fails := func(dir string, k int) (*exec.Cmd, error) {
		return exec.Command(sh, "-c", `echo '{"metrics":{},"error":"cannot open"}'; exit 1`), nil
	}
	if err := r.rounds(t.TempDir(), fails, "", m); err == nil || !strings.Contains(err.Error(), "cannot open") {
		t.Errorf("a failing process: err = %v", err)
	}
	if m["failed"] != 2*procsW8 {
		t.Errorf("failed = %v, want every process of both rounds", m["failed"])
	}
}

// TestCellShowsWhatAFailedRunMeasured: a run that failed after measuring
// something shows it, marked; one that measured nothing shows the error.
func TestCellShowsWhatAFailedRunMeasured(t *testing.T) {
	r := &runner{p: newParams(testScale), results: map[string]map[string]*result{}, skipped: map[string]string{}}
	var rw row
	for _, x := range r.rows() {
		if x.workload == "W8" && strings.Contains(x.label, "one process") {
			rw = x
		}
	}
	r.results["diskcache"] = map[string]*result{"W8": {Error: "boom", Metrics: map[string]float64{"cycle_p50_ms": 12, "cycle_p99_ms": 30}}}
	if got := r.cell("diskcache", rw); !strings.HasPrefix(got, "12.0 / 30.0 ms") || !strings.Contains(got, "**error**") {
		t.Errorf("cell %q", got)
	}
	r.results["diskcache"]["W8"] = &result{Error: "boom"}
	if got := r.cell("diskcache", rw); got != "**error**" {
		t.Errorf("cell %q", got)
	}
}
