package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// row is one line of the throughput table: a label and how to show a
// peer's result for it. chart, when set, is the panel the row gets in the
// chart, with the number it plots.
type row struct {
	workload string
	label    string
	cell     func(r *runner, res *result) string
	chart    string
	value    func(res *result) (float64, bool)
}

func metric(name string) func(*result) (float64, bool) {
	return func(res *result) (float64, bool) {
		v, ok := res.Metrics[name]
		return v, ok
	}
}

func (r *runner) rows() []row {
	p := r.p
	rate := func(name string) func(*runner, *result) string {
		return func(_ *runner, res *result) string { return perSecond(res.Metrics[name]) }
	}
	withLat := func(sfx string) func(*runner, *result) string {
		return func(_ *runner, res *result) string {
			return fmt.Sprintf("%s (%.1f / %.1f µs)", perSecond(res.Metrics["get_ops"+sfx]),
				res.Metrics["p50_us"+sfx], res.Metrics["p99_us"+sfx])
		}
	}
	withMB := func(ops, mbs string) func(*runner, *result) string {
		return func(_ *runner, res *result) string {
			return fmt.Sprintf("%s (%.0f MB/s)", perSecond(res.Metrics[ops]), res.Metrics[mbs])
		}
	}
	return []row{
		{"W1", fmt.Sprintf("W1 fill: %s Sets of %d B, random order", count(p.N1), valueW1), rate("set_ops"),
			"W1 fill, Sets/s", metric("set_ops")},
		{"W2", fmt.Sprintf("W2 read: %s uniform Gets, 1 worker (p50 / p99)", count(p.N2)), withLat("_1"),
			"W2 read, 1 worker, Gets/s", metric("get_ops_1")},
		{"W2", fmt.Sprintf("W2 read: %d workers (p50 / p99)", workersW2), withLat(fmt.Sprint("_", workersW2)),
			fmt.Sprintf("W2 read, %d workers, Gets/s", workersW2), metric(fmt.Sprint("get_ops_", workersW2))},
		{"W3", fmt.Sprintf("W3 zipf %.1f, 90%% Get / 10%% Set, %s ops, %d workers", zipfS, count(p.N3), workersW3), rate("ops"),
			"W3 zipf 90/10, ops/s", metric("ops")},
		{"W4", fmt.Sprintf("W4 large: %s Sets of %d KiB", count(p.N4), valueW4>>10), withMB("set_ops", "set_mbs"),
			"W4 16 KiB Sets/s", metric("set_ops")},
		{"W4", fmt.Sprintf("W4 large: %s random Gets", count(p.N4)), withMB("get_ops", "get_mbs"),
			"W4 16 KiB Gets/s", metric("get_ops")},
		{"W5", fmt.Sprintf("W5 TTL: %s Sets with a %s TTL", count(p.N5), ttlW5), rate("set_ops"),
			"W5 Sets with TTL, Sets/s", metric("set_ops")},
		{"W5", fmt.Sprintf("W5 returned %s after the last Set (must be 0)", checkW5), func(_ *runner, res *result) string {
			if n := res.Metrics["returned"]; n > 0 {
				return fmt.Sprintf("**%.0f: FAIL**", n)
			}
			return "0"
		}, "", nil},
		{"W5", fmt.Sprintf("W5 disk: empty → peak → after waiting up to %s", p.Window.Round(time.Second)), reclaimCell, "", nil},
		{"W5", "W5 disk after an explicit reclaim (see setup)", explicitCell, "", nil},
		{"W6", fmt.Sprintf("W6 size limit %s: %s Sets of %d KiB + hot Gets, ops/s", mib(p.Limit), count(p.N6), valueW6>>10), rate("ops"),
			"W6 size limit, ops/s", metric("ops")},
		{"W6", "W6 disk: max / final (after close)", func(_ *runner, res *result) string {
			return fmt.Sprintf("%s / %s", mib(res.DiskPeak), mib(res.DiskAfter))
		}, "", nil},
		{"W6", fmt.Sprintf("W6 hot-set (%s keys) hit ratio", count(p.Hot6)), func(_ *runner, res *result) string {
			return fmt.Sprintf("%.1f%%", 100*res.Metrics["hot_hit"])
		}, "", nil},
		{"W7", fmt.Sprintf("W7 %d processes: W2's Gets, total Gets/s", procsW7), rate("w2_ops"),
			fmt.Sprintf("W7 %d processes, W2 Gets/s", procsW7), metric("w2_ops")},
		{"W7", fmt.Sprintf("W7 %d processes: W3's ops, total ops/s", procsW7), rate("w3_ops"),
			fmt.Sprintf("W7 %d processes, W3 ops/s", procsW7), metric("w3_ops")},
		{"W7", fmt.Sprintf("W7 %d processes: sum of their PSS between the phases", procsW7), func(_ *runner, res *result) string {
			return size(int64(res.Metrics["pss_sum"]))
		}, "", nil},
		{"W8", fmt.Sprintf("W8 %d processes at once, each Open + Set (%.0f s TTL) + Close, %d rounds: wall (Open max / p50; a process's life p50)",
			procsW8, ttlW8.Seconds(), p.Rounds8), w8Example(""), "", nil},
		{"W8", "W8 the same, diskcache's processes a program that holds only the cache (opensetclose)", w8Example("tiny_"), "", nil},
		{"W8", fmt.Sprintf("W8 one process: Open + Set + Close of a %s-key cache, %s cycles (p50 / p99; Open, Close p50)", count(keysW8), count(p.N8)),
			func(_ *runner, res *result) string {
				m := res.Metrics
				if _, ok := m["cycle_p50_ms"]; !ok {
					return "–"
				}
				return fmt.Sprintf("%.1f / %.1f ms (%.1f, %.1f ms)", m["cycle_p50_ms"], m["cycle_p99_ms"], m["open_p50_ms"], m["close_p50_ms"])
			}, "W8 Open + Set + Close, cycles/s (p50)", func(res *result) (float64, bool) {
				v, ok := res.Metrics["cycle_p50_ms"]
				return 1000 / v, ok && v > 0
			}},
		{"W8", fmt.Sprintf("W8 disk after the last Close: the example's (one key) / the loop's (%s keys)", count(keysW8)), func(_ *runner, res *result) string {
			return fmt.Sprintf("%s / %s", size(res.DiskAfter), size(int64(res.Metrics["disk_loop"])))
		}, "", nil},
		{"W9", fmt.Sprintf("W9 scale: %s Sets of %d B, SizeLimit %s", count(p.N9), valueW1, gib(limitW9)), rate("set_ops"),
			"W9 fill, Sets/s", metric("set_ops")},
		{"W9", fmt.Sprintf("W9 %s uniform Gets, 1 worker: before the Close / right after the reopen", count(p.N9Gets)),
			func(_ *runner, res *result) string {
				return fmt.Sprintf("%s / %s", perSecond(res.Metrics["get_ops_before"]), perSecond(res.Metrics["get_ops"]))
			}, "W9 Gets/s right after a reopen", metric("get_ops")},
		{"W9", "W9 Close / reopen in a new process", func(_ *runner, res *result) string {
			return fmt.Sprintf("%s / %s", secs(res.Metrics["close_s"]), secs(res.Metrics["open_s"]))
		}, "", nil},
		{"W9", "W9 peak RSS: the fill's process / the reopen's", func(_ *runner, res *result) string {
			return fmt.Sprintf("%s / %s", mib(int64(res.Metrics["rss_fill"])), mib(int64(res.Metrics["rss_reopen"])))
		}, "", nil},
		{"W9", "W9 disk after the Close", func(_ *runner, res *result) string { return mib(res.DiskAfter) }, "", nil},
		{"W9", fmt.Sprintf("W9 %s keys: reopen at a %s / %s limit", count(p.N9Small), gib(limitW9Low), gib(limitW9High)),
			func(_ *runner, res *result) string {
				return fmt.Sprintf("%s / %s", secs(res.Metrics["open_s_low"]), secs(res.Metrics["open_s_high"]))
			}, "", nil},
		{"W9", fmt.Sprintf("W9 %s keys: Gets/s right after the reopen, %s / %s limit", count(p.N9Small), gib(limitW9Low), gib(limitW9High)),
			func(_ *runner, res *result) string {
				lo, hi := res.Metrics["get_ops_low"], res.Metrics["get_ops_high"]
				return fmt.Sprintf("%s / %s (%.2fx at the larger limit)", perSecond(lo), perSecond(hi), hi/lo)
			}, "", nil},
		{"W9", fmt.Sprintf("W9 %s keys: peak RSS of the reopen's process, %s / %s limit", count(p.N9Small), gib(limitW9Low), gib(limitW9High)),
			func(_ *runner, res *result) string {
				return fmt.Sprintf("%s / %s", mib(int64(res.Metrics["rss_reopen_low"])), mib(int64(res.Metrics["rss_reopen_high"])))
			}, "", nil},
		{"W9", "W9 after kill -9 of the fill (no Close): reopen / Gets/s right after it", func(_ *runner, res *result) string {
			m := res.Metrics
			if _, ok := m["open_s_crash"]; !ok {
				return "–"
			}
			return fmt.Sprintf("%s / %s", secs(m["open_s_crash"]), perSecond(m["get_ops_crash"]))
		}, "", nil},
		{"W11", fmt.Sprintf("W11 held at the %d MiB limit: entries held after %s Sets of %d B", limitW11>>20, count(p.N11), valueW11), heldCell, "", nil},
		{"W11", "W11 fill, Sets/s", rate("set_ops"), "W11 fill at a size limit, Sets/s", metric("set_ops")},
		{"W11", "W11 disk: max / final", func(_ *runner, res *result) string {
			return fmt.Sprintf("%.2fx / %.2fx the limit (%s / %s)", ofLimit(res.DiskPeak), ofLimit(res.DiskAfter), mib(res.DiskPeak), mib(res.DiskAfter))
		}, "", nil},
	}
}

// heldCell is W11's count of entries, as a full scan found it, with the
// bytes of limit each one takes; the store's own count joins it where the
// two differ.
func heldCell(_ *runner, res *result) string {
	m := res.Metrics
	held := m["held"]
	if held <= 0 {
		return "–"
	}
	s := fmt.Sprintf("%s (%.0f B of limit each)", count(int(held)), limitW11/held)
	if n, ok := m["held_len"]; ok && n != held {
		s += fmt.Sprintf("; its own count says %s", count(int(n)))
	}
	return s
}

// ofLimit is a size in multiples of W11's limit.
func ofLimit(n int64) float64 { return float64(n) / limitW11 }

// w8Example is the cell of W8's multi-process example, for the variant
// whose metrics have prefix; a peer that did not run it gets a dash.
func w8Example(prefix string) func(*runner, *result) string {
	return func(_ *runner, res *result) string {
		m := res.Metrics
		if _, ok := m[prefix+"wall_s"]; !ok {
			return "–"
		}
		failed := ""
		if n := m[prefix+"failed"]; n > 0 {
			failed = fmt.Sprintf(", **%.0f processes failed**", n)
		}
		if _, ok := m[prefix+"open_max_ms"]; !ok {
			return fmt.Sprintf("%s%s", secs(m[prefix+"wall_s"]), failed)
		}
		return fmt.Sprintf("%s (%.0f / %.0f ms; %.0f ms)%s", secs(m[prefix+"wall_s"]), m[prefix+"open_max_ms"], m[prefix+"open_p50_ms"], m[prefix+"life_p50_ms"], failed)
	}
}

// size formats a byte count in KiB below a MiB, where mib would say 0.0.
func size(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return mib(n)
}

// secs formats seconds: 0.012 s, 1.41 s, 55.2 s.
func secs(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.1f s", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f s", v)
	}
	return fmt.Sprintf("%.3f s", v)
}

func reclaimCell(_ *runner, res *result) string {
	m := res.Metrics
	s := fmt.Sprintf("%s → %s → %s", mib(int64(m["disk_empty"])), mib(int64(m["disk_peak"])), mib(int64(m["disk_wait"])))
	if t := m["reclaim_s"]; t >= 0 {
		return s + fmt.Sprintf(": %.0f%% back by %.1f s", 100*m["back"], t)
	}
	return s + ": nothing back"
}

func explicitCell(_ *runner, res *result) string {
	m := res.Metrics
	if _, ok := m["disk_explicit"]; ok {
		return fmt.Sprintf("%s in %.1f s", mib(int64(m["disk_explicit"])), m["explicit_s"])
	}
	if m["back"] >= 0.5 {
		return "not needed"
	}
	if m["no_explicit"] == 1 {
		return "none: its sweeper is the way"
	}
	return "–"
}

// cell is a peer's entry for a row, or why it has none.
func (r *runner) cell(peer string, rw row) string {
	if _, ok := r.skipped[peer]; ok {
		return "skipped"
	}
	res, ok := r.results[peer][rw.workload]
	if !ok {
		return "–"
	}
	switch {
	case res.Error != "" && len(res.Metrics) == 0:
		return "**error**"
	case res.Error != "":
		// What the run measured before or beside its failure.
		return rw.cell(r, res) + " (**error**)"
	case res.Skipped != "":
		// "n/a: why" or "not yet: why": the why is in the setup table.
		short, _, _ := strings.Cut(res.Skipped, ":")
		return short
	}
	return rw.cell(r, res)
}

func (r *runner) writeReport() error {
	if r.onlyW10() {
		if old, err := os.ReadFile(r.cfg.out); err == nil {
			return os.WriteFile(r.cfg.out, spliceW10(old, r.w10Section(true)), 0o644)
		}
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	ps := r.cfg.peers
	w("# diskcache beside its peers\n\n")
	w("Written by the harness in this folder (`cd benchmarks && go run .`) on %s, at scale %g, in %s.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), r.cfg.scale, r.elapsed.Round(time.Second))
	w("The chart is [results.svg](results.svg). Every workload ran against each peer in a process of its own.\n\n")

	w("## Throughput\n\n")
	w("| workload |")
	for _, p := range ps {
		w(" %s |", p)
	}
	w("\n|---|")
	for range ps {
		w("---|")
	}
	w("\n")
	for _, rw := range r.rows() {
		if !r.selected(rw.workload) {
			continue
		}
		w("| %s |", rw.label)
		for _, p := range ps {
			w(" %s |", r.cell(p, rw))
		}
		w("\n")
	}
	if r.w10 != nil {
		w("\n%s", r.w10Section(false))
	}

	w("\n## Disk after each run, and peak RSS\n\n")
	w("Disk is what `du` counts under the store's directory after the process closed it; peak RSS is the\n")
	w("process's VmHWM (for W7 the largest of the %d processes). W8: the example's directory (one key) and the\n", procsW7)
	w("one-process loop's RSS; W9: the large store after its Close and the largest of its processes' RSS.\n\n")
	w("| workload |")
	for _, p := range ps {
		w(" %s |", p)
	}
	w("\n|---|")
	for range ps {
		w("---|")
	}
	w("\n")
	for _, wl := range workloads {
		if !r.selected(wl) || wl == "W10" { // W10's section says what it measured
			continue
		}
		w("| %s |", wl)
		for _, p := range ps {
			res, ok := r.results[p][wl]
			switch {
			case r.skipped[p] != "":
				w(" skipped |")
			case !ok:
				w(" – |")
			case res.Error != "":
				w(" **error** |")
			case res.Skipped != "":
				w(" n/a |")
			default:
				w(" %s / %s |", mib(res.DiskAfter), mib(res.PeakRSS))
			}
		}
		w("\n")
	}
	r.writeErrors(w)
	r.writeSetup(w)
	if err := os.MkdirAll(filepath.Dir(r.cfg.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(r.cfg.out, b.Bytes(), 0o644); err != nil {
		return err
	}
	return r.writeChart(filepath.Join(filepath.Dir(r.cfg.out), "results.svg"))
}

func (r *runner) selected(w string) bool {
	for _, s := range r.cfg.workloads {
		if s == w {
			return true
		}
	}
	return false
}

func (r *runner) writeErrors(w func(string, ...any)) {
	var lines []string
	for _, p := range r.cfg.peers {
		if why := r.skipped[p]; why != "" {
			lines = append(lines, fmt.Sprintf("- %s skipped: %s", p, why))
		}
		for _, wl := range workloads {
			if res, ok := r.results[p][wl]; ok && res.Error != "" {
				// The work directory is a temporary path of this machine.
				msg := strings.ReplaceAll(oneLine(res.Error), r.work, "<work>")
				lines = append(lines, fmt.Sprintf("- %s %s error: `%s`", p, wl, msg))
			}
		}
	}
	if len(lines) > 0 {
		w("\n## Errors and skips\n\n%s\n", strings.Join(lines, "\n"))
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func (r *runner) writeSetup(w func(string, ...any)) {
	p := r.p
	w("\n## How each peer is set up\n\n")
	w("| peer | durability of a returned write | read cache | TTL | size limit | expired entries' space | several processes |\n")
	w("|---|---|---|---|---|---|---|\n")
	for _, name := range r.cfg.peers {
		pr, _ := peerByName(name)
		mp := pr.multiProcess
		if mp == "" {
			mp = "yes"
			if name == diskcachePeer.name {
				mp = "by handing off to the owner process"
			}
		}
		w("| %s | %s | %s | %s | %s | %s | %s |\n", name, pr.durability, pr.blockCache, pr.ttl, pr.limit, pr.reclaim, mp)
	}
	w("\nAll peers compare writes at the same durability: a write that returned survives kill -9 of the process\n")
	w("but not a power cut. diskcache runs with its defaults (1 GiB size limit, S2 compression of values from\n")
	w("512 B) except SweepInterval 1 s in W5 and SizeLimit in W6 and W11; raw Pebble gets exactly the Pebble options and\n")
	w("write options diskcache derives for the same settings (`engine.PebbleOptions`, Snappy blocks). Badger runs\n")
	w("its defaults (Snappy blocks) with WithTTL, SyncWrites off and its logger off; bbolt one bucket with\n")
	w("NoSync, one read-write transaction per Set. python-diskcache runs its defaults but for the page cache.\n\n")

	w("## Workloads\n\n")
	w("Keys are 16-24 bytes; half of every workload's values are random bytes, half text (W11's all random). Seeds are fixed and every\n")
	w("peer runs the same operations: SHA-256 over each workload's operations, checked against the Python\n")
	w("script's own: ")
	for _, wl := range []string{"W1", "W2", "W3", "W4", "W5", "W6", "W8", "W11"} {
		w("%s `%.12s` ", wl, r.digests[wl])
	}
	w("(W7 reuses W2's and W3's; W8's is its one-process loop; W9 runs on Go peers only).\n\n")
	w("- W1 fill: %s Sets of %d-byte values in a random order, one worker, into an empty store.\n", count(p.N1), valueW1)
	w("- W2 read: %s uniform random Gets over W1's keys, with 1 and %d workers (goroutines; threads in Python).\n", count(p.N2), workersW2)
	w("- W3 zipf: %s ops over W1's keys, zipf s = %.1f over ranks scattered across the keys, 1 in %d a Set, %d workers.\n", count(p.N3), zipfS, setShare, workersW3)
	w("- W4 large: %s Sets of %d KiB values, then %s uniform random Gets, one worker, into an empty store.\n", count(p.N4), valueW4>>10, count(p.N4))
	w("- W5 TTL: %s Sets of %d B with a %s TTL; %s after the last Set every key is read and none may come back;\n", count(p.N5), valueW1, ttlW5, checkW5)
	w("  then `du` every 250 ms until %s after the last Set, or until half of what the Sets added is back and\n", p.Window.Round(time.Second))
	w("  nothing more came back for %s. A peer that gave less than half back is then asked to reclaim the way\n", settleW5)
	w("  its users would (setup table), and `du` is read again once it stops falling. Pebble keeps its recycled\n")
	w("  WAL files: diskcache and raw Pebble never go back to the empty size. python-diskcache culls expired rows\n")
	w("  on every Set, so its peak stays low while Sets keep coming.\n")
	w("- W6 size limit: a %s limit (diskcache's SizeLimit, python-diskcache's size_limit; the other peers have\n", mib(p.Limit))
	w("  none), %s of %d KiB values (the limit stays at every scale; the scale applies to the data past it):\n", mib(int64(p.N6)*valueW6), valueW6>>10)
	w("  %s hot keys first, then each other key's Set is followed by a Get of the next hot key; a hot Get that\n", count(p.Hot6))
	w("  misses sets the key again. Max disk is sampled every 100 ms.\n")
	w("- W7 multi-process: %d processes on W1's directory, each running a quarter of W2's Gets, then of W3's ops,\n", procsW7)
	w("  each phase started in all processes at once; throughput is all their ops over the phase's wall time.\n")
	w("- W8 lifecycle (diskcache and python-diskcache; raw Pebble the loop only): python-diskcache's multi-process example. %d processes are\n", procsW8)
	w("  started at once; each opens the same new directory with the defaults, sets the key %q with a %.0f s TTL, and\n", keyW8, ttlW8.Seconds())
	w("  closes; %d rounds, each when the last ended. Reported: the rounds' wall time in all and, over every process,\n", p.Rounds8)
	w("  how long its Open took (max and median: an Open may wait for another process's Close) and its life from\n")
	w("  start to exit. diskcache's processes are the harness's own binary (`engine.Open(dir, nil)`), then\n")
	w("  opensetclose, a program that holds only the cache, as a user's program would; python-diskcache's are fresh\n")
	w("  python3 processes running pyopensetclose.py, interpreter start and `import diskcache` included in a\n")
	w("  process's life (not in its Open). Then one process: a cache of %s keys of %d B, closed, then %s cycles\n", count(keysW8), valueW1, count(p.N8))
	w("  of Open, a Set of one of its keys with a %.0f s TTL, Close, each cycle timed (no process start); raw Pebble\n", ttlW8.Seconds())
	w("  runs it with diskcache's Pebble options (its Close leaves the log for the next Open to replay). Disk is\n")
	w("  `du` after the last Close of the example's directory (one key) and of the loop's.\n")
	w("- W9 scale (diskcache and raw Pebble): %s Sets of %d B (key index order; keys are hashes, so in random\n", count(p.N9), valueW1)
	w("  key order) under a %s SizeLimit (raw Pebble: the Pebble options diskcache derives for it), then %s\n", gib(limitW9), count(p.N9Gets))
	w("  uniform Gets with one worker, then Close (timed); a new process reopens the store (timed), runs the same\n")
	w("  Gets at once, and closes. Then a store of %s keys is filled and reopened the same way at a %s and at a\n", count(p.N9Small), gib(limitW9Low))
	w("  %s limit: the size limit must not change read speed. For diskcache the large fill runs once more and\n", gib(limitW9High))
	w("  is killed (SIGKILL) after its last Set, without a Close; the reopen and Gets after that are timed the same\n")
	w("  way. The processes hold no key lists (keys are made as they go), so peak RSS is the store's but for the\n")
	w("  harness's %s of value pools and the Go runtime.\n", mib(2*poolSize))
	w("- W11 held at the limit (diskcache and python-diskcache): a %d MiB limit as in W6 (python-diskcache's\n", limitW11>>20)
	w("  least-recently-used), %s Sets of %d B values of random bytes, which no peer can compress (%s in all:\n", count(p.N11), valueW11, mib(int64(p.N11)*valueW11))
	w("  the limit stays at every scale, the scale applies to the data past it), under fresh keys in order, one\n")
	w("  writer, no reads. Once `du` has not fallen for 1 s, the entries held are counted by a full scan (diskcache's\n")
	w("  Scan, iterating python-diskcache's Cache), and each store's own count is read beside it. Reported: the\n")
	w("  entries held and the bytes of limit each takes, the fill's Sets/s, and max disk (sampled every 100 ms)\n")
	w("  and disk after the Close as multiples of the limit.\n\n")

	w("## Notes\n\n")
	if res, ok := r.results[diskcachePeer.name]["W6"]; ok && res.Error == "" {
		maxX, finalX := float64(res.DiskPeak)/float64(p.Limit), float64(res.DiskAfter)/float64(p.Limit)
		if maxX > 2 {
			w("- diskcache kept everything in W6 (max %.2fx, final %.2fx its limit): the size limit (issue 3) is not\n", maxX, finalX)
			w("  in the build measured, so its W6 numbers are those of a store without a limit.\n")
		} else {
			w("- diskcache's disk use in W6: max %.2fx, final %.2fx its limit (sampled every 100 ms).\n", maxX, finalX)
		}
	}
	if res, ok := r.results[diskcachePeer.name]["W7"]; ok && res.Skipped != "" {
		_, why, _ := strings.Cut(res.Skipped, ": ")
		w("- W7 for diskcache is not yet possible: it %s. The harness tries it on every run and reports it once a\n", why)
		w("  second process can open the directory.\n")
	}
	if r.cfg.scale < smokeScale {
		w("- This is a smoke run (scale %g): each workload ran once and the numbers only show that the harness works.\n", r.cfg.scale)
	} else {
		w("- Numbers are the medians of 3 runs where a run's timed part took under %s; W5, W7, W8 and W9 run once\n", shortRun)
		w("  (W8 reports medians over its own rounds and cycles).\n")
	}
	w("- The page cache is warm: every store fits in this machine's RAM and nothing drops caches between runs, so\n")
	w("  reads measure the stores' code paths and their in-memory caches, not the disk.\n")
	w("- Peak RSS includes the harness's own data in the same process (keys and op streams): in Go %s at W2,\n", mib(r.baseRSS("W2", false)))
	w("  in Python %s at W2 (the interpreter and the lists).\n", mib(r.baseRSS("W2", true)))
	w("- python-diskcache's numbers include the interpreter: the same operations from Python code, as its\n")
	w("  users run them; its 4 workers are threads under the GIL (W7 gives it 4 processes). In W8's example each\n")
	w("  process's life includes starting the interpreter, as it does for the example's users.\n")
	w("- Latencies (p50 / p99) are each Get's wall time, taken around the call in the worker.\n")
	w("- Disk bytes are allocated blocks as `du` counts them (sparse preallocated files count what they hold).\n")

	w("\n## Machine and versions\n\n")
	for _, l := range r.machine() {
		w("- %s\n", l)
	}
}

// baseRSS is the harness's own peak RSS in a workload's process, for the
// Go peers or for Python.
func (r *runner) baseRSS(wl string, python bool) int64 {
	for _, p := range r.cfg.peers {
		if (p == pythonPeer.name) != python {
			continue
		}
		if res, ok := r.results[p][wl]; ok && res.BaseRSS > 0 {
			return res.BaseRSS
		}
	}
	return 0
}

func (r *runner) machine() []string {
	var lines []string
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	var si syscall.Sysinfo_t
	syscall.Sysinfo(&si)
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	lines = append(lines, fmt.Sprintf("%s, %d cores, %.0f GiB RAM, Linux %s, stores on %s",
		cpu, runtime.NumCPU(), float64(si.Totalram)*float64(si.Unit)/(1<<30), strings.TrimSpace(string(kernel)), fsType(r.work)))
	lines = append(lines, fmt.Sprintf("load average (1, 5, 15 min): %s when the run started, %s when it ended (the machine is shared)", r.loadStart, loadAvg()))
	lines = append(lines, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	var mods []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/cockroachdb/pebble/v2", "github.com/dgraph-io/badger/v4", "go.etcd.io/bbolt", "gonum.org/v1/plot":
				mods = append(mods, d.Path+" "+d.Version)
			}
		}
	}
	lines = append(lines, "diskcache: "+repoVersion()+"; "+strings.Join(mods, ", "))
	if r.pyVersion != "" {
		lines = append(lines, r.pyVersion+" (Debian's python3-diskcache)")
	}
	return lines
}

// repoVersion names the commit the harness was built from, if git can tell.
func repoVersion() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "the working tree"
	}
	v := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=all", "..").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		v += " with uncommitted changes"
	}
	return v
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "an unknown file system"
	}
	switch st.Type {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs (memory!)"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system type %#x", st.Type)
}

// perSecond formats a rate: 950/s, 12.3k/s, 1.23M/s.
func perSecond(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM/s", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk/s", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk/s", v/1e3)
	}
	return fmt.Sprintf("%.0f/s", v)
}

// count formats an operation count: 500,000.
func count(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
