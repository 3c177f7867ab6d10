package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/diskcache-go/diskcache/internal/redistest"
)

// A run of W10 alone puts its section into a full run's report, then
// replaces it, leaving the rest as it was.
func TestSpliceW10(t *testing.T) {
	full := "# report\n\n## Throughput\n\n| a |\n\n## Disk after each run, and peak RSS\n\nrest\n"
	section := func(n string) string { return w10Begin + "## W10 " + n + "\n" + w10End }
	once := string(spliceW10([]byte(full), section("one")))
	want := "# report\n\n## Throughput\n\n| a |\n\n" + section("one") + "\n## Disk after each run, and peak RSS\n\nrest\n"
	if once != want {
		t.Fatalf("inserted:\n%s\nwant:\n%s", once, want)
	}
	twice := string(spliceW10([]byte(once), section("two")))
	if twice != strings.Replace(want, "W10 one", "W10 two", 1) {
		t.Fatalf("replaced:\n%s", twice)
	}
	if got := string(spliceW10([]byte("# other\n"), section("x"))); got != "# other\n\n"+section("x") {
		t.Fatalf("appended:\n%s", got)
	}
}

func TestW10Section(t *testing.T) {
	r := &runner{p: newParams(testScale), cfg: config{scale: testScale}, w10: map[string]*result{
		"embedded":     {Metrics: map[string]float64{"set_ops": 2000, "tagset_ops": 1000, "tagget_ops": 4000}},
		"serve":        {Error: "it broke"},
		"redis-server": {Metrics: map[string]float64{"set_ops": 1000, "tagset_ops": 1000, "tagget_ops": 1000}},
		"cluster":      {Skipped: "n/a: redis-server: not installed"},
	}}
	s := r.w10Section(false)
	for _, want := range []string{
		"| Set | 2.0k/s (2.00x) | **error** | 1.0k/s | n/a |",
		"| tagged Get | 4.0k/s (4.00x) |",
		"`diskcache serve` error: `it broke`",
		"Redis Cluster, 3 masters + 3 replicas: n/a: redis-server: not installed",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the section lacks %q:\n%s", want, s)
		}
	}
}

// TestW10Step runs W10's child at the smallest scale against the
// deployments that need no server of their own, and one redis-server.
func TestW10Step(t *testing.T) {
	for _, d := range []string{"embedded", "serve", "redis-server"} {
		t.Run(d, func(t *testing.T) {
			j := job{Peer: diskcachePeer.name, Workload: "W10", Scale: testScale, Deployment: d}
			switch d {
			case "embedded":
				j.Dir = t.TempDir()
			case "serve":
				j.Addr = redistest.Serve(t, nil)
			case "redis-server":
				j.Addr = redistest.Redis(t)
			}
			var out bytes.Buffer
			if err := runChild(j, strings.NewReader(""), &out); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			var res result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			for _, ph := range w10Phases {
				if res.Metrics[ph.metric] <= 0 {
					t.Errorf("%s: %v", ph.metric, res.Metrics)
				}
			}
		})
	}
}
