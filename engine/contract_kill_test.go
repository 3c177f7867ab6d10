package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Entries of one batch of the kill tests: each has a TTL of its own, so a
// test can tell that every entry kept the TTL it was written with.
const (
	batchEntries = 40
	batchTTL     = time.Hour
)

func batchKey(prefix string, i, j int) string { return fmt.Sprintf("%s-%d-%d", prefix, i, j) }

func batchEntryTTL(j int) time.Duration { return batchTTL + time.Duration(j)*time.Second }

func init() {
	// owner DIR [kill-after METHOD]: own DIR and serve until stdin closes;
	// with kill-after, SIGKILL this process right after it applied the
	// first forwarded call of METHOD, before it answers.
	childRoles["owner"] = func(args []string) error {
		if len(args) == 3 && args[1] == "kill-after" {
			testHookServed = func(name string) {
				if name == args[2] {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
			}
		}
		c, err := Open(args[0], &Options{SizeLimit: 64 << 20})
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Printf("ready %v\n", c.IsOwner())
		io.Copy(io.Discard, os.Stdin)
		return nil
	}
	// batches DIR PREFIX many|absent: write batches of batchEntries
	// entries with SetMany (or SetManyIfAbsent, of new keys) until killed;
	// "ack I" after batch I returned.
	childRoles["batches"] = func(args []string) error {
		c, err := Open(args[0], &Options{SizeLimit: 64 << 20})
		if err != nil {
			return err
		}
		defer c.Close()
		out := bufio.NewWriter(os.Stdout)
		fmt.Fprintf(out, "ready %v\n", c.IsOwner())
		out.Flush()
		ctx := context.Background()
		for i := 0; ; i++ {
			es := make([]Entry, batchEntries)
			for j := range es {
				k := batchKey(args[1], i, j)
				es[j] = Entry{Key: k, Value: mpValue(k), TTL: batchEntryTTL(j)}
			}
			if args[2] == "absent" {
				ok, err := c.SetManyIfAbsent(ctx, es)
				if err == nil && !ok {
					err = fmt.Errorf("batch %d: keys present", i)
				}
				if err != nil {
					return err
				}
			} else if err := c.SetMany(ctx, es); err != nil {
				return err
			}
			fmt.Fprintf(out, "ack %d\n", i)
			out.Flush()
		}
	}
}

// proc is a child process whose stdout the test reads line by line.
type proc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func startProc(t *testing.T, role string, args ...string) *proc {
	t.Helper()
	cmd := childCommand(t, role, args...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, in: in, lines: make(chan string, 1<<16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	select {
	case line := <-p.lines:
		if !strings.HasPrefix(line, "ready") {
			t.Fatalf("%s said %q", role, line)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s did not start within a minute", role)
	}
	return p
}

// kill SIGKILLs p and waits for it.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// TestBatchesAtomicAcrossOwnerKill: forwarding processes write batches
// with TTLs (SetMany, SetManyIfAbsent) while the owner is SIGKILLed. Every
// batch is found whole or not at all, every entry with its own TTL, and
// every acknowledged batch whole.
func TestBatchesAtomicAcrossOwnerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("three processes and a takeover; TestAddAppliedBeforeOwnerDied stays in -short")
	}
	dir := t.TempDir()
	owner := startProc(t, "owner", dir)
	modes := []string{"many", "absent"}
	writers := make([]*proc, len(modes))
	for i, m := range modes {
		writers[i] = startProc(t, "batches", dir, m, m)
	}
	// Let each writer get a few batches through, then kill the owner with
	// calls in flight, and the writers right after (else they take over
	// and finish their batch, which shows nothing).
	acked := make([]int, len(modes))
	for i, w := range writers {
		for acked[i] < 10 {
			line, ok := <-w.lines
			if !ok {
				t.Fatalf("writer %s exited after %d batches", modes[i], acked[i])
			}
			n, err := strconv.Atoi(strings.TrimPrefix(line, "ack "))
			if err != nil {
				t.Fatalf("writer %s said %q", modes[i], line)
			}
			acked[i] = n + 1
		}
	}
	owner.kill()
	for _, w := range writers {
		w.kill()
	}
	for i, w := range writers {
		for line := range w.lines {
			if n, err := strconv.Atoi(strings.TrimPrefix(line, "ack ")); err == nil {
				acked[i] = n + 1
			}
		}
	}

	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for m, mode := range modes {
		whole := 0
		for i := 0; ; i++ {
			present := 0
			for j := 0; j < batchEntries; j++ {
				k := batchKey(mode, i, j)
				v, left, err := c.GetWithTTL(ctx, k)
				if err != nil {
					continue
				}
				present++
				if string(v) != string(mpValue(k)) {
					t.Fatalf("%s = %q", k, v)
				}
				// The TTL was set when the owner applied the batch, moments
				// ago: it is within a minute of the one it was written with.
				if want := batchEntryTTL(j); left > want || left < want-time.Minute {
					t.Fatalf("%s has %v left, written with %v", k, left, want)
				}
			}
			if present != 0 && present != batchEntries {
				t.Fatalf("%s batch %d: %d of %d entries", mode, i, present, batchEntries)
			}
			if present == 0 {
				if i < acked[m] {
					t.Fatalf("%s batch %d was acknowledged and is missing", mode, i)
				}
				if i > acked[m] {
					break // past the batch in flight: nothing more was written
				}
				continue
			}
			whole++
		}
		t.Logf("%s: %d batches acknowledged, %d found whole", mode, acked[m], whole)
	}
}

// TestAddAppliedBeforeOwnerDied: the owner applies an Add from a
// forwarder and is SIGKILLed before it answers. The forwarder takes over
// and repeats the call with its token: it learns that its Add was applied
// (true), not that someone else holds the key.
func TestAddAppliedBeforeOwnerDied(t *testing.T) {
	dir := t.TempDir()
	startProc(t, "owner", dir, "kill-after", "SetWithOptions")
	c, err := Open(dir, &Options{SizeLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.IsOwner() {
		t.Fatal("the test process owns the directory; want a forwarder")
	}
	ok, err := c.Add(ctx, "lease", []byte("mine"), time.Hour)
	if err != nil || !ok {
		t.Fatalf("Add applied by an owner that died before answering = %v, %v; want true", ok, err)
	}
	if !c.IsOwner() {
		t.Fatal("the forwarder did not take over")
	}
	mustGet(t, c, "lease", []byte("mine"))
	// A second Add, a new call, finds the key taken.
	if ok, err := c.Add(ctx, "lease", []byte("other"), time.Hour); err != nil || ok {
		t.Fatalf("second Add = %v, %v; want false", ok, err)
	}
}

// TestCountingCallsAppliedOnce: IncrBy and Append applied by an owner that
// died before answering are not applied twice by the repeat.
func TestCountingCallsAppliedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("four takeovers; TestAddAppliedBeforeOwnerDied stays in -short")
	}
	for _, m := range []string{"IncrBy", "Append", "DeleteMany", "GetDelete"} {
		t.Run(m, func(t *testing.T) {
			dir := t.TempDir()
			seed, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			seed.Set(ctx, "k", []byte("10"), 0)
			seed.Close()
			startProc(t, "owner", dir, "kill-after", m)
			c, err := Open(dir, &Options{SizeLimit: 64 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			switch m {
			case "IncrBy":
				if n, err := c.IncrBy(ctx, "k", 5); err != nil || n != 15 {
					t.Fatalf("IncrBy = %d, %v; want 15", n, err)
				}
				mustGet(t, c, "k", []byte("15"))
			case "Append":
				if n, err := c.Append(ctx, "k", []byte("x")); err != nil || n != 3 {
					t.Fatalf("Append = %d, %v; want 3", n, err)
				}
				mustGet(t, c, "k", []byte("10x"))
			case "DeleteMany":
				if n, err := c.DeleteMany(ctx, "k", "missing"); err != nil || n != 1 {
					t.Fatalf("DeleteMany = %d, %v; want 1", n, err)
				}
				mustMiss(t, c, "k")
			case "GetDelete":
				if v, err := c.GetDelete(ctx, "k"); err != nil || string(v) != "10" {
					t.Fatalf("GetDelete = %q, %v; want 10", v, err)
				}
				mustMiss(t, c, "k")
			}
			if !c.IsOwner() {
				t.Fatal("the forwarder did not take over")
			}
		})
	}
}
