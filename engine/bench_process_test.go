package engine

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const benchProcessKeys = 10000

func init() {
	// getloop DIR N G: open DIR (a forwarder: the benchmark owns it), say
	// "ready", wait for a line, do N Gets of random keys from G
	// goroutines, then say "done SECONDS P50NS P99NS".
	childRoles["getloop"] = func(args []string) error {
		n, _ := strconv.Atoi(args[1])
		g, _ := strconv.Atoi(args[2])
		c, err := Open(args[0], &Options{SizeLimit: 64 << 20})
		if err != nil {
			return err
		}
		defer c.Close()
		if c.IsOwner() {
			return fmt.Errorf("getloop: owns %s, want a forwarder", args[0])
		}
		kv := newBenchKV(benchProcessKeys)
		lat := make([]time.Duration, n)
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, g)
		for w := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(w)))
				for i := w; i < n; i += g {
					t := time.Now()
					if _, err := c.Get(context.Background(), kv.keys[rng.IntN(len(kv.keys))]); err != nil {
						errs <- err
						return
					}
					lat[i] = time.Since(t)
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		slices.Sort(lat)
		fmt.Printf("done %f %d %d\n", el.Seconds(), lat[n/2], lat[n*99/100])
		return nil
	}
}

// BenchmarkProcesses measures the owner serving forwarding processes: the
// owner is this process, and 1 or 4 child processes each Get random keys
// of 10,000 (128 B values) from one goroutine, without pipelining. With
// tier=off (the owner's HotTierSize -1) every Get is a round trip, which
// is what the owner must keep up with; tier=on is the default, where the
// keys end up in the hot tier every process reads. Beside them, when redis-server and
// redis-benchmark are installed, redis-benchmark's GET rate against a real
// redis-server on a Unix socket with as many clients, in the same run.
//
//	go test ./engine -run XXX -bench Processes -benchtime 200000x
func BenchmarkProcesses(b *testing.B) {
	dir := b.TempDir()
	kv := newBenchKV(benchProcessKeys)
	for _, tier := range []struct {
		name string
		size int64
	}{{"off", -1}, {"on", 0}} {
		owner, err := Open(dir, &Options{SizeLimit: 64 << 20, HotTierSize: tier.size})
		if err != nil {
			b.Fatal(err)
		}
		for i := range kv.keys {
			if err := owner.Set(context.Background(), kv.keys[i], kv.values[i], 0); err != nil {
				b.Fatal(err)
			}
		}
		if tier.name == "off" {
			// One process, its Gets from 16 goroutines that rueidis pipelines.
			b.Run("diskcache/tier=off/procs=1/goroutines=16", func(b *testing.B) {
				runGetLoops(b, dir, 1, 16)
			})
		}
		for _, procs := range []int{1, 4} {
			b.Run(fmt.Sprintf("diskcache/tier=%s/procs=%d", tier.name, procs), func(b *testing.B) {
				runGetLoops(b, dir, procs, 1)
			})
		}
		owner.Close()
	}
	for _, procs := range []int{1, 4} {
		b.Run(fmt.Sprintf("redis/clients=%d", procs), func(b *testing.B) {
			redisBenchmarkGets(b, procs)
		})
	}
}

func runGetLoops(b *testing.B, dir string, procs int, goroutines int) {
	n := max(b.N/procs, 100)
	type loop struct {
		in  io.WriteCloser
		out *bufio.Scanner
		cmd *exec.Cmd
	}
	loops := make([]loop, procs)
	for i := range loops {
		cmd := childCommand(b, "getloop", dir, strconv.Itoa(n), strconv.Itoa(goroutines))
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer cmd.Wait()
		defer in.Close()
		loops[i] = loop{in: in, out: bufio.NewScanner(out), cmd: cmd}
		if !loops[i].out.Scan() || loops[i].out.Text() != "ready" {
			b.Fatalf("child %d did not start: %v", i, loops[i].out.Err())
		}
	}
	b.ResetTimer()
	start := time.Now()
	for _, l := range loops {
		fmt.Fprintln(l.in)
	}
	var p99 time.Duration
	for i, l := range loops {
		if !l.out.Scan() {
			b.Fatalf("child %d failed", i)
		}
		f := strings.Fields(l.out.Text())
		if len(f) != 4 || f[0] != "done" {
			b.Fatalf("child %d said %q", i, l.out.Text())
		}
		ns, _ := strconv.ParseInt(f[3], 10, 64)
		p99 = max(p99, time.Duration(ns))
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n*procs)/el.Seconds(), "gets/s")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
}

// redisBenchmarkGets runs redis-benchmark's GET test with the given number
// of clients against a fresh redis-server on a Unix socket, on the same
// keys and value size.
func redisBenchmarkGets(b *testing.B, clients int) {
	server, err1 := exec.LookPath("redis-server")
	bench, err2 := exec.LookPath("redis-benchmark")
	if err1 != nil || err2 != nil {
		b.Skip("redis-server or redis-benchmark not installed")
	}
	dir := b.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	srv := exec.Command(server, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 500 {
			b.Fatal("redis-server did not create its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	run := func(test string, n, clients int) float64 {
		out, err := exec.Command(bench, "-s", sock, "-t", test, "-n", strconv.Itoa(n), "-c", strconv.Itoa(clients),
			"-r", strconv.Itoa(benchProcessKeys), "-d", "128", "-P", "1", "--csv").Output()
		if err != nil {
			b.Fatalf("redis-benchmark: %v", err)
		}
		rows, _ := csv.NewReader(strings.NewReader(string(out))).ReadAll()
		for _, r := range rows {
			if len(r) > 1 && strings.EqualFold(r[0], test) {
				rps, _ := strconv.ParseFloat(r[1], 64)
				return rps
			}
		}
		b.Fatalf("redis-benchmark said %q", out)
		return 0
	}
	run("set", benchProcessKeys*4, 4)
	b.ResetTimer()
	rps := run("get", max(b.N, 1000), clients)
	b.StopTimer()
	b.ReportMetric(rps, "gets/s")
}
