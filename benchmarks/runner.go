package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// shortRun: a run whose timed part is shorter is repeated, and the medians
// of three runs are reported (needsAnother).
const shortRun = 5 * time.Second

// runner is the parent: it starts the children and collects their results.
type runner struct {
	cfg     config
	exe     string
	work    string
	p       params
	results map[string]map[string]*result // peer, workload
	skipped map[string]string             // peer: why
	digests map[string]string             // workload: SHA-256 of its ops
	filled  map[string]bool               // peer: W1's directory is filled
	elapsed time.Duration
	// loadStart is /proc/loadavg when the run started.
	loadStart string

	// python: the interpreter, the script and the spec file it reads,
	// and W8's process script.
	pyScript, pySpec string
	pyLifecycle      string
	pyVersion        string
	// tinyExe is opensetclose, built for W8 when it first runs.
	tinyExe string

	// w10 are W10's results by deployment, w10At when it ended;
	// redisVersion is the redis-server it ran against.
	w10          map[string]*result
	w10At        time.Time
	redisVersion string
}

// proc is one running child, Go or Python, speaking the child protocol.
type proc struct {
	name     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    *bufio.Scanner
	timer    *time.Timer
	timedOut atomic.Bool
}

// childTimeout ends a child that hangs, so that a run fails rather than
// waits forever. The longest child of a full run takes about a minute.
const childTimeout = 10 * time.Minute

func (r *runner) command(j job) (*exec.Cmd, error) {
	if j.Peer == pythonPeer.name {
		return r.pythonCommand(j.Workload, j.Dir, j.Part), nil
	}
	arg, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return exec.Command(r.exe, "-child", string(arg)), nil
}

func (r *runner) start(peer, workload, dir string, part int) (*proc, error) {
	return r.startJob(job{Peer: peer, Workload: workload, Dir: dir, Scale: r.cfg.scale, Part: part, Tier: r.cfg.tier})
}

func (r *runner) startJob(j job) (*proc, error) {
	cmd, err := r.command(j)
	if err != nil {
		return nil, err
	}
	return startCmd(j.Peer+" "+j.Workload, cmd)
}

// startCmd starts a child that prints its result as the last line of
// stdout, Go or Python, the harness's binary or another program.
func startCmd(name string, cmd *exec.Cmd) (*proc, error) {
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	p := &proc{name: name, cmd: cmd, stdin: stdin, lines: sc}
	p.timer = time.AfterFunc(childTimeout, func() {
		p.timedOut.Store(true)
		cmd.Process.Kill()
	})
	return p, nil
}

// next returns the child's next line of output.
func (p *proc) next() (string, error) {
	if !p.lines.Scan() {
		if err := p.lines.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return p.lines.Text(), nil
}

// expect reads a protocol word, or the result if the child ended early.
func (p *proc) expect(word string) (*result, error) {
	line, err := p.next()
	if err != nil {
		return nil, fmt.Errorf("%s: waiting for %q: %w", p.name, word, err)
	}
	if line == word {
		return nil, nil
	}
	if strings.HasPrefix(line, "{") {
		return p.parse(line)
	}
	return nil, fmt.Errorf("%s: want %q, got %q", p.name, word, line)
}

func (p *proc) parse(line string) (*result, error) {
	var res result
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return nil, fmt.Errorf("%s: bad result %q: %w", p.name, line, err)
	}
	return &res, nil
}

// wait reads the result line and waits for the child to exit.
func (p *proc) wait() (*result, error) {
	var res *result
	for {
		line, err := p.next()
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "{") {
			if res, err = p.parse(line); err != nil {
				return nil, err
			}
		}
	}
	p.stdin.Close()
	err := p.cmd.Wait()
	p.timer.Stop()
	if p.timedOut.Load() {
		err = fmt.Errorf("killed after %s: %v", childTimeout, err)
		if res != nil {
			res.Error = err.Error()
		}
	}
	if res == nil {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s: no result: %w", p.name, err)
	}
	if err != nil && res.Error == "" {
		res.Error = err.Error()
	}
	return res, nil
}

// kill ends a child that this runner started.
func (p *proc) kill() {
	p.timer.Stop()
	p.stdin.Close()
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

func (r *runner) runOnce(peer, workload, dir string) *result {
	if why := notFor(peer, workload); why != "" {
		return &result{Skipped: why}
	}
	switch workload {
	case "W7":
		return r.runW7(peer, dir)
	case "W8":
		return r.runW8(peer, dir)
	case "W9":
		return r.runW9(peer, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &result{Error: err.Error()}
	}
	sampler := sampleDisk(dir, 100*time.Millisecond)
	p, err := r.start(peer, workload, dir, 0)
	if err != nil {
		sampler.Stop()
		return &result{Error: err.Error()}
	}
	res, err := p.wait()
	peak := sampler.Stop()
	if err != nil {
		res = &result{Error: err.Error()}
	}
	res.DiskPeak = peak
	res.DiskAfter = diskBytes(dir)
	res.Runs = 1
	return res
}

// runW7 runs procsW7 processes on W1's directory, phase by phase: W2's Gets,
// then W3's mixed ops, each process its part. Throughput is all the
// processes' ops over the phase's wall time.
func (r *runner) runW7(peer, dir string) *result {
	pr, _ := peerByName(peer)
	if pr.multiProcess != "" {
		return &result{Skipped: pr.multiProcess}
	}
	sampler := sampleDisk(dir, 100*time.Millisecond)
	defer sampler.Stop()
	var procs []*proc
	fail := func(err error) *result {
		for _, p := range procs {
			p.kill()
		}
		return &result{Error: err.Error()}
	}
	for k := range procsW7 {
		p, err := r.start(peer, "W7", dir, k)
		if err != nil {
			return fail(err)
		}
		procs = append(procs, p)
	}
	res := &result{Metrics: map[string]float64{}, Runs: 1}
	for _, phase := range []struct {
		name string
		ops  int
	}{{"w2", r.p.N2}, {"w3", r.p.N3}} {
		for _, p := range procs {
			early, err := p.expect("ready")
			if err != nil {
				return fail(err)
			}
			if early != nil { // it could not start, for a reason it gives
				for _, q := range procs {
					q.kill()
				}
				if early.Unsupported != "" {
					return &result{Skipped: early.Unsupported}
				}
				return &result{Error: fmt.Sprintf("%s: %s", p.name, early.Error)}
			}
		}
		if phase.name == "w3" {
			// Between the phases every process is alive and idle: the
			// sum of their proportional set sizes counts memory they share
			// (diskcache's hot tier) once.
			for _, p := range procs {
				res.Metrics["pss_sum"] += float64(pss(p.cmd.Process.Pid))
			}
		}
		t0 := time.Now()
		for _, p := range procs {
			if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
				return fail(err)
			}
		}
		for _, p := range procs {
			if _, err := p.expect("done"); err != nil {
				return fail(err)
			}
		}
		el := time.Since(t0)
		res.Seconds += el.Seconds()
		res.Metrics[phase.name+"_ops"] = perSec(phase.ops, el)
	}
	for _, p := range procs {
		pr, err := p.wait()
		if err != nil {
			return &result{Error: err.Error()}
		}
		if pr.Error != "" {
			return &result{Error: p.name + ": " + pr.Error}
		}
		res.PeakRSS = max(res.PeakRSS, pr.PeakRSS)
		res.BaseRSS = max(res.BaseRSS, pr.BaseRSS)
	}
	res.DiskPeak = sampler.Stop()
	res.DiskAfter = diskBytes(dir)
	return res
}

// combine reports the median of each metric over runs, the highest disk
// peak and the disk use after the last run; a failed or skipped run stands
// for them all.
func combine(runs []*result) *result {
	for _, r := range runs {
		if r.Error != "" || r.Skipped != "" {
			return r
		}
	}
	if len(runs) == 1 {
		return runs[0]
	}
	c := &result{Metrics: map[string]float64{}, Runs: len(runs)}
	med := func(f func(*result) float64) float64 {
		var xs []float64
		for _, r := range runs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	keys := slices.Sorted(maps.Keys(runs[0].Metrics))
	for _, k := range keys {
		c.Metrics[k] = med(func(r *result) float64 { return r.Metrics[k] })
	}
	c.Seconds = med(func(r *result) float64 { return r.Seconds })
	c.PeakRSS = int64(med(func(r *result) float64 { return float64(r.PeakRSS) }))
	c.BaseRSS = int64(med(func(r *result) float64 { return float64(r.BaseRSS) }))
	for _, r := range runs {
		c.DiskPeak = max(c.DiskPeak, r.DiskPeak)
	}
	c.DiskAfter = runs[len(runs)-1].DiskAfter
	return c
}

func (r *runner) failures() int {
	n := 0
	for _, res := range r.w10 {
		if res.Error != "" {
			n++
		}
	}
	for _, byW := range r.results {
		for _, res := range byW {
			if res.Error != "" {
				n++
			}
		}
	}
	return n
}

// summary is a result in one line, for the log.
func (res *result) summary() string {
	switch {
	case res.Error != "":
		return "ERROR " + res.Error
	case res.Skipped != "":
		return "skipped: " + res.Skipped
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(res.Metrics)) {
		parts = append(parts, fmt.Sprintf("%s=%.4g", k, res.Metrics[k]))
	}
	return fmt.Sprintf("%s; %.2fs x%d, disk %s, rss %s", strings.Join(parts, " "), res.Seconds, res.Runs, mib(res.DiskAfter), mib(res.PeakRSS))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// notFor says why a workload does not run on a peer: W8 sets diskcache's
// Open and Close beside python-diskcache's (and raw Pebble's one-process
// loop: the floor of a cache built on Pebble), W9 diskcache's scale beside
// raw Pebble's with the same Pebble options; W11 counts what a size limit
// holds, and only diskcache and python-diskcache have one.
func notFor(peer, workload string) string {
	switch {
	case workload == "W11" && peer != diskcachePeer.name && peer != pythonPeer.name:
		return "n/a: W11 needs a size limit, which only diskcache and python-diskcache have"
	case workload == "W8" && peer != diskcachePeer.name && peer != pythonPeer.name && peer != pebblePeer.name:
		return "n/a: W8 sets diskcache's lifecycle beside python-diskcache's (and raw Pebble's, in one process)"
	case workload == "W9" && peer != diskcachePeer.name && peer != pebblePeer.name:
		return "n/a: W9 sets diskcache beside raw Pebble with the same options"
	}
	return ""
}

// runW8 runs the model's multi-process example, procsW8 fresh processes at
// a time for Rounds8 rounds, then the one-process Open/Set/Close loop.
// diskcache runs the example twice: as the harness's own child, and as
// opensetclose, a program that holds nothing but the cache, as its users'
// programs do; python-diskcache as pyopensetclose.py.
func (r *runner) runW8(peer, dir string) *result {
	res := &result{Metrics: map[string]float64{}, Runs: 1}
	type variant struct {
		name, prefix string
		command      func(dir string, k int) (*exec.Cmd, error)
	}
	value := func(k int) string { return fmt.Sprint("process ", k) }
	var vs []variant
	switch peer {
	case pebblePeer.name:
		// One process per directory: raw Pebble runs only the loop.
	case pythonPeer.name:
		vs = []variant{{"pyopensetclose.py", "", func(d string, k int) (*exec.Cmd, error) {
			return exec.Command(r.cfg.python, r.pyLifecycle, d, keyW8, value(k), fmt.Sprint(ttlW8.Seconds())), nil
		}}}
	default:
		tiny, err := r.buildOpenSetClose()
		if err != nil {
			return &result{Error: err.Error()}
		}
		vs = []variant{
			{"the harness's child", "", func(d string, k int) (*exec.Cmd, error) {
				return r.command(job{Peer: peer, Workload: "W8proc", Dir: d, Scale: r.cfg.scale, Part: k})
			}},
			{"opensetclose", "tiny_", func(d string, k int) (*exec.Cmd, error) {
				return exec.Command(tiny, d, keyW8, value(k), ttlW8.String()), nil
			}},
		}
	}
	// A process that fails is an error of the run, but the parts that
	// follow still run: the report shows what they measured beside it.
	var errs []error
	for _, v := range vs {
		d := filepath.Join(dir, v.prefix+"procs")
		if err := r.rounds(d, v.command, v.prefix, res.Metrics); err != nil {
			errs = append(errs, fmt.Errorf("the example's processes (%s): %w", v.name, err))
		}
		if v.prefix == "" {
			res.DiskAfter = diskBytes(d) // every process set the same key
		}
	}
	loop := filepath.Join(dir, "loop")
	p, err := r.startJob(job{Peer: peer, Workload: "W8loop", Dir: loop, Scale: r.cfg.scale})
	if err == nil {
		var lr *result
		if lr, err = p.wait(); err == nil {
			maps.Copy(res.Metrics, lr.Metrics)
			res.Metrics["disk_loop"] = float64(diskBytes(loop))
			res.PeakRSS, res.BaseRSS = lr.PeakRSS, lr.BaseRSS
			res.Seconds = res.Metrics["wall_s"] + lr.Seconds
			if lr.Error != "" {
				err = errors.New(lr.Error)
			}
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("the Open/Set/Close loop: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		res.Error = oneLine(err.Error())
	}
	return res
}

// rounds starts procsW8 processes on dir at once, Rounds8 times, each
// round when the last one ended. It records (keys prefixed) the rounds'
// wall time in all, and over every process that succeeded its Open (max,
// median: Open waits for another process's Close), its Close and its whole
// life; and how many failed, with the first failure as its error.
func (r *runner) rounds(dir string, command func(dir string, k int) (*exec.Cmd, error), prefix string, m map[string]float64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	type exit struct {
		res  *result
		err  error
		life time.Duration
	}
	var opens, closes, lives []time.Duration
	var wall time.Duration
	var errs []error
	failed := 0
	for round := range r.p.Rounds8 {
		exits := make(chan exit, procsW8)
		started := 0
		t0 := time.Now()
		for k := range procsW8 {
			cmd, err := command(dir, k)
			var p *proc
			if err == nil {
				p, err = startCmd(fmt.Sprintf("W8 round %d process %d", round, k), cmd)
			}
			if err != nil {
				return err // the harness cannot start processes: no use going on
			}
			started++
			t := time.Now() // a life counts from its Start returning
			go func() {
				res, err := p.wait()
				exits <- exit{res, err, time.Since(t)}
			}()
		}
		for range started {
			e := <-exits
			switch {
			case e.err != nil:
				errs = append(errs, e.err)
			case e.res.Error != "":
				errs = append(errs, fmt.Errorf("round %d: %s", round, e.res.Error))
			default:
				opens = append(opens, seconds(e.res.Metrics["open_s"]))
				closes = append(closes, seconds(e.res.Metrics["close_s"]))
				lives = append(lives, e.life)
				continue
			}
			failed++
		}
		wall += time.Since(t0)
	}
	m[prefix+"wall_s"] = wall.Seconds()
	m[prefix+"failed"] = float64(failed)
	var err error
	if failed > 0 {
		err = fmt.Errorf("%d of %d processes failed; the first: %w", failed, r.p.Rounds8*procsW8, errs[0])
	}
	if len(opens) == 0 {
		return err
	}
	for _, d := range [][]time.Duration{opens, closes, lives} {
		slices.Sort(d)
	}
	m[prefix+"open_max_ms"] = millis(opens[len(opens)-1])
	m[prefix+"open_p50_ms"] = millis(percentile(opens, 50))
	m[prefix+"close_p50_ms"] = millis(percentile(closes, 50))
	m[prefix+"life_p50_ms"] = millis(percentile(lives, 50))
	m[prefix+"life_max_ms"] = millis(lives[len(lives)-1])
	return err
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// buildOpenSetClose builds the opensetclose command into the work
// directory, once, from its source beside the harness's.
func (r *runner) buildOpenSetClose() (string, error) {
	if r.tinyExe != "" {
		return r.tinyExe, nil
	}
	_, file, _, ok := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "opensetclose")
	if _, err := os.Stat(src); !ok || err != nil {
		return "", fmt.Errorf("opensetclose: its source is not beside the harness's (built with -trimpath?): %v", err)
	}
	exe := filepath.Join(r.work, "opensetclose")
	r.logf("building opensetclose for W8")
	cmd := exec.Command("go", "build", "-o", exe, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building opensetclose: %v: %s", err, out)
	}
	r.tinyExe = exe
	return exe, nil
}

// runW9 fills a large store, closes it, and reopens it in a new process;
// fills and reopens a smaller store at two size limits; and for diskcache
// fills the large store again and kills the process instead of closing.
func (r *runner) runW9(peer, dir string) *result {
	res := &result{Metrics: map[string]float64{}, Runs: 1}
	m := res.Metrics
	fail := func(err error) *result { return &result{Error: err.Error()} }
	run := func(j job) (*result, error) {
		j.Peer, j.Scale = peer, r.cfg.scale
		p, err := r.startJob(j)
		if err != nil {
			return nil, err
		}
		cr, err := p.wait()
		if err != nil {
			return nil, err
		}
		if cr.Error != "" {
			return nil, fmt.Errorf("%s of %s keys at a %s limit: %s", j.Workload, count(j.Keys), gib(j.Limit), cr.Error)
		}
		return cr, nil
	}
	reopen := func(d string, keys int, limit int64, sfx string) error {
		o, err := run(job{Workload: "W9reopen", Dir: d, Keys: keys, Limit: limit})
		if err != nil {
			return err
		}
		m["open_s"+sfx] = o.Metrics["open_s"]
		m["get_ops"+sfx] = o.Metrics["get_ops"]
		m["rss_reopen"+sfx] = float64(o.PeakRSS)
		m["base_reopen"+sfx] = float64(o.BaseRSS)
		res.Seconds += o.Seconds
		res.PeakRSS = max(res.PeakRSS, o.PeakRSS)
		return os.RemoveAll(d)
	}

	d := filepath.Join(dir, "large")
	f, err := run(job{Workload: "W9fill", Dir: d, Keys: r.p.N9, Limit: limitW9, GetsBefore: true})
	if err != nil {
		return fail(err)
	}
	m["set_ops"] = f.Metrics["set_ops"]
	m["get_ops_before"] = f.Metrics["get_ops"]
	m["close_s"] = f.Metrics["close_s"]
	m["rss_fill"] = float64(f.PeakRSS)
	res.Seconds, res.PeakRSS, res.BaseRSS = f.Seconds, f.PeakRSS, f.BaseRSS
	res.DiskAfter = diskBytes(d)
	if err := reopen(d, r.p.N9, limitW9, ""); err != nil {
		return fail(err)
	}

	for _, l := range []struct {
		sfx   string
		limit int64
	}{{"_low", limitW9Low}, {"_high", limitW9High}} {
		d := filepath.Join(dir, "limit"+l.sfx)
		if _, err := run(job{Workload: "W9fill", Dir: d, Keys: r.p.N9Small, Limit: l.limit}); err != nil {
			return fail(err)
		}
		if err := reopen(d, r.p.N9Small, l.limit, l.sfx); err != nil {
			return fail(err)
		}
	}

	if peer != diskcachePeer.name {
		return res
	}
	d = filepath.Join(dir, "crash")
	p, err := r.startJob(job{Peer: peer, Workload: "W9fill", Dir: d, Scale: r.cfg.scale, Keys: r.p.N9, Limit: limitW9, Crash: true})
	if err != nil {
		return fail(err)
	}
	early, err := p.expect("filled")
	// SIGKILL before anything else: closing its stdin would let it Close.
	p.cmd.Process.Kill()
	p.kill()
	switch {
	case err != nil:
		return fail(err)
	case early != nil:
		return fail(fmt.Errorf("the fill to kill: %s", early.Error))
	}
	if err := reopen(d, r.p.N9, limitW9, "_crash"); err != nil {
		return fail(err)
	}
	return res
}

func gib(n int64) string { return fmt.Sprintf("%g GiB", float64(n)/(1<<30)) }

// pss returns a process's proportional set size in bytes (0 if it cannot
// be read): its private memory plus its share of memory mapped by others.
func pss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
