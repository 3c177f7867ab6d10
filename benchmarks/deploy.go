package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/diskcache-go/diskcache/internal/redistest"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/disk"
	"github.com/diskcache-go/diskcache/manager/redis"
)

// W10 deployments: the same manager calls against each deployment of the
// README's "Past one machine", in one run: the disk backend in the
// process, diskcache serve, one redis-server and a Redis Cluster, the
// servers on loopback ports of this machine. The harness starts and stops
// the servers; the calls run in a child of their own, one a deployment,
// the deployments taking turns.

const (
	callersW10  = 64
	tagsW10     = 100
	kindW10     = manager.Kind("w10")
	mastersW10  = 3
	replicasW10 = 1 // per master
	saltW10     = 10
)

// deployment is one column of W10.
type deployment struct {
	name string
	what string // for the setup list
}

var deploymentsW10 = []deployment{
	{"embedded", "the disk backend (`disk.Open`, diskcache's defaults) in the calls' own process, on a new directory"},
	{"serve", "the command built from this tree, run with its defaults (1 GiB size limit) on a new directory; the Redis backend (`redis.Dial`) in the calls' process"},
	{"redis-server", "no persistence (`--save '' --appendonly no`), otherwise its defaults; `redis.Dial`"},
	{"cluster", fmt.Sprintf("%d masters with %d replica each (`redis-cli --cluster create`), no persistence; `redis.Dial` on a master, which finds the other nodes", mastersW10, replicasW10)},
}

// w10Phases are the timed phases of a W10 run, in order: the metric each
// reports and the report's label.
var w10Phases = []struct{ metric, label string }{
	{"set_ops", "Set"},
	{"tagset_ops", "tagged Set"},
	{"tagget_ops", "tagged Get"},
}

// runW10 starts the servers, runs every deployment (three times, taking
// turns; once in a smoke run), stops the servers and records the medians.
// A deployment whose servers cannot start is an error, or n/a when
// redis-server is not installed.
func (r *runner) runW10() {
	r.w10 = map[string]*result{}
	defer func() { r.w10At = time.Now() }()
	dir := filepath.Join(r.work, "w10")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	addrs := map[string]string{"embedded": ""}
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()

	if exe, err := r.buildDiskcache(); err != nil {
		r.w10["serve"] = &result{Error: err.Error()}
	} else if s, err := startServe(exe, filepath.Join(dir, "serve")); err != nil {
		r.w10["serve"] = &result{Error: err.Error()}
	} else {
		addrs["serve"] = s.Addr
		stops = append(stops, func() {
			if err := s.Terminate(time.Minute); err != nil {
				r.logf("diskcache serve: %v", err)
			}
		})
	}
	if err := redistest.Available(); err != nil {
		for _, d := range []string{"redis-server", "cluster"} {
			r.w10[d] = &result{Skipped: "n/a: " + err.Error()}
		}
	} else {
		if v, err := redistest.Version(); err == nil {
			// "Redis server v=7.0.15 sha=... malloc=..."
			_, v, _ = strings.Cut(v, "v=")
			v, _, _ = strings.Cut(v, " ")
			r.redisVersion = "redis-server " + v
		}
		if s, err := redistest.StartRedis(filepath.Join(dir, "redis")); err != nil {
			r.w10["redis-server"] = &result{Error: err.Error()}
		} else {
			addrs["redis-server"] = s.Addr
			stops = append(stops, s.Stop)
		}
		r.logf("W10: starting a Redis Cluster (%d masters, %d replica each)", mastersW10, replicasW10)
		if c, err := redistest.StartCluster(filepath.Join(dir, "cluster"), mastersW10, replicasW10); err != nil {
			r.w10["cluster"] = &result{Error: err.Error()}
		} else {
			addrs["cluster"] = c.Nodes[0].Addr
			stops = append(stops, c.Stop)
		}
	}

	reps := 3
	if r.cfg.scale < smokeScale {
		reps = 1
	}
	runs := map[string][]*result{}
	for rep := range reps {
		for _, d := range deploymentsW10 {
			addr, ok := addrs[d.name]
			if !ok {
				continue
			}
			j := job{Peer: diskcachePeer.name, Workload: "W10", Scale: r.cfg.scale, Part: rep, Deployment: d.name, Addr: addr}
			if d.name == "embedded" {
				j.Dir = filepath.Join(dir, "embedded", fmt.Sprint(rep))
			}
			runs[d.name] = append(runs[d.name], r.runJob(j))
		}
	}
	for _, d := range deploymentsW10 {
		if rs, ok := runs[d.name]; ok {
			r.w10[d.name] = combine(rs)
		}
		r.logf("diskcache W10 %s: %s", d.name, r.w10[d.name].summary())
	}
}

// runJob runs one child to its end.
func (r *runner) runJob(j job) *result {
	p, err := r.startJob(j)
	if err != nil {
		return &result{Error: err.Error()}
	}
	res, err := p.wait()
	if err != nil {
		return &result{Error: err.Error()}
	}
	res.Runs = 1
	return res
}

// startServe starts diskcache serve on a new directory and a free loopback
// port, its log in the directory's parent.
func startServe(exe, dir string) (*redistest.Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return redistest.Start(exe, dir+".log", func(port int) ([]string, error) {
		return []string{"--dir", dir, "serve", "--addr", fmt.Sprint("127.0.0.1:", port)}, nil
	})
}

// buildDiskcache builds the diskcache command from the tree the harness
// sits in, into the work directory.
func (r *runner) buildDiskcache() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "cmd", "diskcache")); !ok || err != nil {
		return "", fmt.Errorf("cmd/diskcache: its source is not beside the harness's (built with -trimpath?): %v", err)
	}
	// Not the work directory's "diskcache": the peer's stores live there.
	exe := filepath.Join(r.work, "bin", "diskcache")
	r.logf("building diskcache for W10")
	cmd := exec.Command("go", "build", "-o", exe, "./cmd/diskcache")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building diskcache: %v: %s", err, out)
	}
	return exe, nil
}

// w10 is one run of a deployment, in a child: the manager on the
// deployment's backend, N10 Sets, N10 Sets with a tag each (one of
// tagsW10), then N10 uniform Gets of the tagged entries, each phase from
// callersW10 goroutines.
func (c *childRun) w10() error {
	c.res.BaseRSS = peakRSS()
	var b manager.Backend
	var err error
	switch c.job.Deployment {
	case "embedded":
		b, err = disk.Open(c.job.Dir, diskcacheOptions(storeOptions{}))
	case "serve", "redis-server", "cluster":
		// A prefix a run: the servers outlive the runs.
		b, err = redis.Dial(c.job.Addr, &redis.Options{Prefix: fmt.Sprintf("w10:%d:", c.job.Part)})
	default:
		err = fmt.Errorf("unknown deployment %q", c.job.Deployment)
	}
	if err != nil {
		return err
	}
	m, err := manager.New(b, &manager.Options{Namespace: "bench"})
	if err != nil {
		b.Close()
		return err
	}
	defer m.Close()
	n := c.p.N10
	keys := make([]manager.Key, 2*n) // [0, n) plain, [n, 2n) tagged
	for i := range keys {
		keys[i] = m.Keys().MustKey(kindW10, key(i))
	}
	tags := make([]manager.SetOption, tagsW10)
	for i := range tags {
		tags[i] = manager.WithTags(fmt.Sprint("t", i))
	}
	ctx := context.Background()
	bufs := make([][]byte, callersW10)
	set := func(tagged bool) func(w int, i uint32) error {
		return func(w int, i uint32) error {
			bufs[w] = c.pl.appendValue(bufs[w][:0], int(i), valueW1, saltW10)
			if tagged {
				return manager.Set(ctx, m, keys[i], bufs[w], tags[int(i)%tagsW10])
			}
			return manager.Set(ctx, m, keys[i], bufs[w])
		}
	}
	misses := make([]int, callersW10)
	get := func(w int, i uint32) error {
		v, err := manager.Get[[]byte](ctx, m, keys[i])
		if errors.Is(err, manager.ErrNotFound) {
			misses[w]++
			return nil
		}
		if err == nil && len(v) != valueW1 {
			err = fmt.Errorf("key index %d: %d bytes, want %d", i, len(v), valueW1)
		}
		return err
	}
	gets := make([]uint32, n)
	rng := rand.New(rand.NewPCG(seed, 20))
	for i := range gets {
		gets[i] = uint32(n + rng.IntN(n))
	}
	// The tags' versions exist before the timed Sets, as in a program that
	// has run a while: two first Sets of a tag racing each other would
	// each create a version, and the loser's entries would read as misses.
	for t := range tagsW10 {
		k := m.Keys().MustKey(kindW10, "tag seed", t)
		if err := manager.Set(ctx, m, k, []byte{}, tags[t]); err != nil {
			return fmt.Errorf("creating tag %d: %w", t, err)
		}
	}
	plain, tagged := iota32(n), iota32(2 * n)[n:]
	for k, phase := range []struct {
		ops []uint32
		fn  func(w int, i uint32) error
	}{{plain, set(false)}, {tagged, set(true)}, {gets, get}} {
		el, _, err := ops(callersW10, phase.ops, false, phase.fn)
		if err != nil {
			return fmt.Errorf("%s: %w", w10Phases[k].label, err)
		}
		c.res.Seconds += el.Seconds()
		c.metric(w10Phases[k].metric, perSec(len(phase.ops), el))
	}
	if n := sum(misses); n > 0 {
		return fmt.Errorf("%d of %d tagged Gets missed", n, len(gets))
	}
	return m.Close()
}

// w10Cell is a deployment's entry for a W10 phase.
func (r *runner) w10Cell(d, metric string) string {
	res, ok := r.w10[d]
	switch {
	case !ok:
		return "–"
	case res.Error != "" && res.Metrics[metric] == 0:
		return "**error**"
	case res.Error != "":
		return perSecond(res.Metrics[metric]) + " (**error**)"
	case res.Skipped != "":
		short, _, _ := strings.Cut(res.Skipped, ":")
		return short
	}
	return perSecond(res.Metrics[metric])
}

// The W10 section of the report is delimited by these lines, so that a run
// of W10 alone can replace it in a report written by a full run.
const (
	w10Begin = "<!-- W10 begins: `go run -C benchmarks . -only W10` replaces this section -->\n"
	w10End   = "<!-- W10 ends -->\n"
)

// onlyW10 tells whether W10 is the one workload selected.
func (r *runner) onlyW10() bool {
	return len(r.cfg.workloads) == 1 && r.cfg.workloads[0] == "W10"
}

// spliceW10 replaces the W10 section of a report, or inserts it before
// the disk table (or at the end) when the report has none.
func spliceW10(report []byte, section string) []byte {
	s := string(report)
	if i := strings.Index(s, w10Begin); i >= 0 {
		if j := strings.Index(s[i:], w10End); j >= 0 {
			return []byte(s[:i] + section + s[i+j+len(w10End):])
		}
	}
	if i := strings.Index(s, "## Disk after each run"); i >= 0 {
		return []byte(s[:i] + section + "\n" + s[i:])
	}
	return []byte(s + "\n" + section)
}

// w10Section is W10's part of the report; separate says that it replaces
// the section of an earlier report, whose other numbers are not from this
// run.
func (r *runner) w10Section(separate bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s## Past one machine: the manager on each deployment (W10)\n\n", w10Begin)
	if separate {
		w("From a separate run, `go run -C benchmarks . -only W10`, on %s at scale %g in %s\n",
			r.w10At.UTC().Format("2006-01-02 15:04 MST"), r.cfg.scale, r.elapsed.Round(time.Second))
		w("(load average %s when it started, %s when it ended; diskcache %s):\n", r.loadStart, loadAvg(), repoVersion())
		w("the rest of this file comes from the run above.\n")
	} else {
		w("From the same run.\n")
	}
	w("The same manager calls against each deployment of the README's \"Past one machine\", the servers on loopback\n")
	w("ports of this machine, the calls from %d goroutines in a process of their own: %s `Set`s of %d-byte values,\n", callersW10, count(r.p.N10), valueW1)
	w("%s `Set`s of other keys each tagged with one of %d tags (a tagged `Set` reads its tag's version first),\n", count(r.p.N10), tagsW10)
	w("then %s uniform `Get`s of the tagged entries (each reads its tag's version beside the entry; none may\n", count(r.p.N10))
	runs := "Medians of 3 runs, the deployments taking turns"
	if r.cfg.scale < smokeScale {
		runs = "One run each (a smoke run)"
	}
	w("miss). %s; in parentheses, the ratio to one redis-server\n", runs)
	w("in the same run. All of it shares this machine's %d cores: the calls, the servers and their replicas.\n\n", runtime.NumCPU())
	names := map[string]string{
		"embedded":     "embedded",
		"serve":        "`diskcache serve`",
		"redis-server": "one redis-server",
		"cluster":      fmt.Sprintf("Redis Cluster, %d masters + %d replicas", mastersW10, mastersW10*replicasW10),
	}
	w("| W10 calls/s |")
	for _, d := range deploymentsW10 {
		w(" %s |", names[d.name])
	}
	w("\n|---|")
	for range deploymentsW10 {
		w("---|")
	}
	w("\n")
	base := r.w10["redis-server"]
	for _, ph := range w10Phases {
		w("| %s |", ph.label)
		for _, d := range deploymentsW10 {
			cell := r.w10Cell(d.name, ph.metric)
			if res := r.w10[d.name]; res != nil && res.Error == "" && res.Skipped == "" && d.name != "redis-server" &&
				base != nil && base.Error == "" && base.Skipped == "" && base.Metrics[ph.metric] > 0 {
				cell += fmt.Sprintf(" (%.2fx)", res.Metrics[ph.metric]/base.Metrics[ph.metric])
			}
			w(" %s |", cell)
		}
		w("\n")
	}
	w("\n")
	for _, d := range deploymentsW10 {
		w("- %s: %s.\n", names[d.name], d.what)
	}
	if r.redisVersion != "" {
		w("- %s (`redis-server --version`), Debian's package.\n", r.redisVersion)
	}
	w("- On one machine a cluster shows what its routing and its extra processes cost, not what it adds (memory\n")
	w("  and throughput per master): that takes masters on machines of their own.\n")
	for _, d := range deploymentsW10 {
		res := r.w10[d.name]
		switch {
		case res == nil:
		case res.Error != "":
			msg := oneLine(res.Error)
			if r.work != "" { // a temporary path of this machine
				msg = strings.ReplaceAll(msg, r.work, "<work>")
			}
			w("- %s error: `%s`\n", names[d.name], msg)
		case res.Skipped != "":
			w("- %s: %s\n", names[d.name], res.Skipped)
		}
	}
	w("%s", w10End)
	return b.String()
}
