// Command benchmarks runs the same workloads against diskcache and its peers
// (raw Pebble, Badger, bbolt and python-diskcache), each peer and workload
// in a process of its own, and writes RESULTS.md and results.svg.
//
//	cd benchmarks && go run .              # the full run: about 20 minutes on 2 cores
//	cd benchmarks && go run . -scale 0.05 -out "$(mktemp -d)/RESULTS.md"   # the smoke run
//	cd benchmarks && go run . -only W10    # W10 alone: replaces only its section of RESULTS.md
//
// W10 is not a peer comparison: it runs the manager against diskcache
// embedded, diskcache serve, one redis-server and a Redis Cluster, starting
// and stopping the servers itself (redis-server and redis-cli must be on
// PATH; without them those columns say n/a).
//
// See RESULTS.md for what each workload does and how each peer is set up.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// smokeScale: below it a run only checks that the harness works, and runs
// each workload once.
const smokeScale = 0.25

// workloads in the order they run; W2, W3 and W7 read what W1 filled.
var workloads = []string{"W1", "W2", "W3", "W7", "W4", "W5", "W6", "W8", "W9", "W10", "W11"}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-child" {
		childMain(os.Args[2])
		return
	}
	var (
		scale  = flag.Float64("scale", 1, "multiplies every operation count (W6's and W11's the data past their size limit, which stays); 0.05 is the smoke run")
		out    = flag.String("out", "RESULTS.md", "where to write the report; the chart goes beside it as results.svg")
		only   = flag.String("only", "", "comma-separated workloads to run (W1..W11); empty: all; -only W10 updates only its section of an existing report")
		peerF  = flag.String("peers", "", "comma-separated peers to run ("+strings.Join(peerNames(), ",")+"); empty: all")
		python = flag.String("python", "/usr/bin/python3", "the Python interpreter that has python3-diskcache")
		work   = flag.String("work", "", "directory for the stores (default: a new temporary directory, removed afterwards)")
		tier   = flag.Int64("tier", 0, "diskcache's Options.HotTierSize in bytes; 0: its default, negative: off")
	)
	flag.Parse()
	if flag.NArg() > 0 || *scale <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ws, err := pick(*only, workloads)
	if err == nil {
		var ps []string
		ps, err = pick(*peerF, peerNames())
		if err == nil {
			err = run(config{scale: *scale, out: *out, workloads: ws, peers: ps, python: *python, work: *work, tier: *tier})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchmarks:", err)
		os.Exit(1)
	}
}

func peerNames() []string {
	var names []string
	for _, p := range peers {
		names = append(names, p.name)
	}
	return names
}

// pick returns the names in list that the comma-separated filter selects,
// in list's order; an unknown name is an error.
func pick(filter string, list []string) ([]string, error) {
	if filter == "" {
		return list, nil
	}
	want := strings.Split(filter, ",")
	for _, w := range want {
		if !slices.Contains(list, strings.TrimSpace(w)) {
			return nil, fmt.Errorf("unknown name %q (choose from %s)", w, strings.Join(list, ","))
		}
	}
	var got []string
	for _, l := range list {
		if slices.ContainsFunc(want, func(w string) bool { return strings.TrimSpace(w) == l }) {
			got = append(got, l)
		}
	}
	return got, nil
}

type config struct {
	scale     float64
	out       string
	workloads []string
	peers     []string
	python    string
	work      string
	tier      int64 // diskcache's HotTierSize
}

func run(cfg config) error {
	start := time.Now()
	work := cfg.work
	if work == "" {
		d, err := os.MkdirTemp("", "diskcache-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	defer func() {
		for _, p := range cfg.peers {
			os.RemoveAll(filepath.Join(work, p))
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r := &runner{
		cfg:     cfg,
		exe:     exe,
		work:    work,
		p:       newParams(cfg.scale),
		results: map[string]map[string]*result{},
		skipped: map[string]string{},
		filled:  map[string]bool{},
	}
	r.loadStart = loadAvg()
	r.logf("generating the workloads at scale %g", cfg.scale)
	r.digests = digests(r.p)
	if slices.Contains(cfg.peers, pythonPeer.name) {
		skip, err := r.setupPython()
		if err != nil {
			return err
		}
		if skip != "" {
			r.skipped[pythonPeer.name] = skip
			r.logf("python-diskcache skipped: %s", skip)
		}
	}
	var ps []string
	for _, name := range cfg.peers {
		if _, skip := r.skipped[name]; !skip {
			ps = append(ps, name)
			r.results[name] = map[string]*result{}
		}
	}
	for _, w := range cfg.workloads {
		if w == "W10" {
			// W10 runs the manager on diskcache and on Redis servers, not
			// on the peers: it runs when diskcache is among them.
			if slices.Contains(ps, diskcachePeer.name) {
				r.runW10()
			}
			continue
		}
		r.runWorkload(w, ps)
	}
	r.elapsed = time.Since(start)
	if err := r.writeReport(); err != nil {
		return err
	}
	r.logf("done in %s; report %s", r.elapsed.Round(time.Second), cfg.out)
	if n := r.failures(); n > 0 {
		return fmt.Errorf("%d runs failed (see the report and the log above)", n)
	}
	return nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// runWorkload runs one workload against every peer. The peers take turns,
// run by run, so that what else the machine is doing weighs on all of them
// alike. W2, W3 and W7 read what W1 left (W1 runs first for them when it is
// not selected); the others start from an empty directory each run.
func (r *runner) runWorkload(w string, peers []string) {
	readsW1 := w == "W2" || w == "W3" || w == "W7"
	reps := 3
	if w == "W5" || w == "W7" || w == "W8" || w == "W9" || r.cfg.scale < smokeScale {
		// Long by construction (waits, four processes; W8 and W9 take
		// their own rounds and medians), or a smoke run.
		reps = 1
	}
	dir := func(peer, w string) string { return filepath.Join(r.work, peer, strings.ToLower(w)) }
	runs := map[string][]*result{}
	for rep := range reps {
		for _, peer := range peers {
			prev := runs[peer]
			if rep > 0 && !needsAnother(prev) {
				continue
			}
			d := dir(peer, w)
			if readsW1 {
				d = dir(peer, "W1")
				if !r.filled[peer] {
					r.logf("%s: filling (W1) for %s", peer, w)
					r.filled[peer] = true
					if res := r.runOnce(peer, "fill", d); res.Error != "" {
						runs[peer] = append(prev, res)
						continue
					}
				}
			} else {
				os.RemoveAll(d)
			}
			runs[peer] = append(prev, r.runOnce(peer, w, d))
			if w == "W1" {
				r.filled[peer] = true
			}
		}
	}
	for _, peer := range peers {
		res := combine(runs[peer])
		r.results[peer][w] = res
		r.logf("%s %s: %s", peer, w, res.summary())
		if !readsW1 && w != "W1" {
			os.RemoveAll(dir(peer, w)) // W4-W6 leave up to 400 MiB each
		}
	}
}

// needsAnother tells whether a workload's runs so far call for one more: a
// short first run is repeated to three, for a median.
func needsAnother(runs []*result) bool {
	first := runs[0]
	if first.Error != "" || first.Skipped != "" {
		return false
	}
	return time.Duration(first.Seconds*float64(time.Second)) < shortRun && len(runs) < 3
}
