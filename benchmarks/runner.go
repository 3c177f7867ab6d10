package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
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

	// python: the interpreter, the script and the spec file it reads.
	pyScript, pySpec string
	pyVersion        string
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

func (r *runner) command(peer, workload, dir string, part int) (*exec.Cmd, error) {
	if peer == pythonPeer.name {
		return r.pythonCommand(workload, dir, part), nil
	}
	j, err := json.Marshal(job{Peer: peer, Workload: workload, Dir: dir, Scale: r.cfg.scale, Part: part})
	if err != nil {
		return nil, err
	}
	return exec.Command(r.exe, "-child", string(j)), nil
}

func (r *runner) start(peer, workload, dir string, part int) (*proc, error) {
	cmd, err := r.command(peer, workload, dir, part)
	if err != nil {
		return nil, err
	}
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
		return nil, fmt.Errorf("%s %s: %w", peer, workload, err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	p := &proc{name: peer + " " + workload, cmd: cmd, stdin: stdin, lines: sc}
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
	if workload == "W7" {
		return r.runW7(peer, dir)
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
