package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mpValue is the value the multi-process tests write under key.
func mpValue(key string) []byte { return []byte("value of " + key) }

func init() {
	// repl DIR: open DIR and answer commands read from stdin, one a line:
	//   set K V | get K | write PREFIX N (N keys PREFIX-0...) |
	//   loop PREFIX (write PREFIX-i until stdin closes, "ack i" after each) |
	//   role | localhits | close
	// Every answer is one line; errors are "err ...".
	childRoles["repl"] = func(args []string) error {
		// A 64 MiB limit keeps what an owner saves on Close and loads on
		// Open (the access clock is sized from the limit) small, so that
		// handoffs are quick even under the race detector.
		c, err := Open(args[0], &Options{SizeLimit: 64 << 20})
		if err != nil {
			return err
		}
		defer c.Close()
		out := bufio.NewWriter(os.Stdout)
		say := func(format string, a ...any) {
			fmt.Fprintf(out, format+"\n", a...)
			out.Flush()
		}
		say("ready %v", c.IsOwner())
		in := bufio.NewScanner(os.Stdin)
		ctx := context.Background()
		for in.Scan() {
			f := strings.Fields(in.Text())
			switch f[0] {
			case "set":
				if err := c.Set(ctx, f[1], []byte(f[2]), 0); err != nil {
					say("err %v", err)
				} else {
					say("ok")
				}
			case "get":
				v, err := c.Get(ctx, f[1])
				if err != nil {
					say("err %v", err)
				} else {
					say("value %s", v)
				}
			case "write":
				n, _ := strconv.Atoi(f[2])
				var err error
				for i := 0; i < n && err == nil; i++ {
					k := fmt.Sprintf("%s-%d", f[1], i)
					err = c.Set(ctx, k, mpValue(k), 0)
				}
				if err != nil {
					say("err %v", err)
				} else {
					say("done")
				}
			case "loop":
				// Runs until the parent closes stdin.
				stop := make(chan struct{})
				go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
				for i := 0; ; i++ {
					select {
					case <-stop:
						say("stopped")
						return c.Close()
					default:
					}
					k := fmt.Sprintf("%s-%d", f[1], i)
					if err := c.Set(ctx, k, mpValue(k), 0); err != nil {
						say("err %d %v", i, err)
						continue
					}
					say("ack %d %d", i, time.Now().UnixNano())
				}
			case "role":
				say("owner %v", c.IsOwner())
			case "localhits":
				say("%d", c.Stats().LocalHits)
			case "close":
				say("closed %v", c.Close())
			}
		}
		return nil
	}
}

// child is a repl process.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := childCommand(t, "repl", dir)
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	t.Cleanup(func() {
		ch.in.Close()
		ch.cmd.Process.Kill()
		ch.cmd.Wait()
	})
	if line := ch.read(t); !strings.HasPrefix(line, "ready") {
		t.Fatalf("child said %q", line)
	}
	return ch
}

func (ch *child) read(t *testing.T) string {
	t.Helper()
	if !ch.out.Scan() {
		t.Fatalf("child exited: %v", ch.out.Err())
	}
	return ch.out.Text()
}

func (ch *child) ask(t *testing.T, line string) string {
	t.Helper()
	fmt.Fprintln(ch.in, line)
	return ch.read(t)
}

// (a) Four processes open one directory at once and each write 2,000 keys;
// they close as they finish, so ownership changes hands on the way.
func TestProcessesWriteOneDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes handing off; under -race a handoff can pass HandoffWindow")
	}
	dir := t.TempDir()
	children := make([]*child, 4)
	var wg sync.WaitGroup
	for p := range children {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			children[p] = startChild(t, dir)
		}(p)
	}
	wg.Wait()
	owners := 0
	for _, ch := range children {
		if ch.ask(t, "role") == "owner true" {
			owners++
		}
	}
	for p, ch := range children {
		fmt.Fprintf(ch.in, "write p%d 2000\n", p)
	}
	if owners != 1 {
		t.Fatalf("%d processes own the directory, want 1", owners)
	}
	for p, ch := range children {
		if line := ch.read(t); line != "done" {
			t.Fatalf("process %d: %s", p, line)
		}
		if line := ch.ask(t, "close"); line != "closed <nil>" {
			t.Fatalf("process %d close: %s", p, line)
		}
	}
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for p := 0; p < 4; p++ {
		for i := 0; i < 2000; i++ {
			k := fmt.Sprintf("p%d-%d", p, i)
			mustGet(t, c, k, mpValue(k))
		}
	}
	mustLen(t, c, 8000)
}

// (b) An owner and two forwarding processes see each other's writes at
// once.
func TestProcessesSeeEachOthersWrites(t *testing.T) {
	dir := t.TempDir()
	owner, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	a, b := startChild(t, dir), startChild(t, dir)
	if a.ask(t, "role") != "owner false" || b.ask(t, "role") != "owner false" {
		t.Fatal("a child owns the directory")
	}
	for i := 0; i < 50; i++ {
		k := fmt.Sprint("k", i)
		owner.Set(ctx, k, []byte("o"+k), 0)
		if got := a.ask(t, "get "+k); got != "value o"+k {
			t.Fatalf("forwarder a read %q after the owner's write", got)
		}
		if got := a.ask(t, "set "+k+" a"+k); got != "ok" {
			t.Fatal(got)
		}
		if got := b.ask(t, "get "+k); got != "value a"+k {
			t.Fatalf("forwarder b read %q after a's write", got)
		}
		if got := b.ask(t, "set "+k+" b"+k); got != "ok" {
			t.Fatal(got)
		}
		mustGet(t, owner, k, []byte("b"+k))
	}
	// One key, in the hot tier all along: every read follows the
	// write before it, whichever process wrote.
	for i := 0; i < 50; i++ {
		owner.Set(ctx, "hot", []byte(fmt.Sprint("o", i)), 0)
		for _, ch := range []*child{a, b, a} {
			if got := ch.ask(t, "get hot"); got != fmt.Sprint("value o", i) {
				t.Fatalf("round %d: a forwarder read %q after the owner wrote o%d", i, got, i)
			}
		}
		if got := b.ask(t, fmt.Sprint("set hot b", i)); got != "ok" {
			t.Fatal(got)
		}
		if got := a.ask(t, "get hot"); got != fmt.Sprint("value b", i) {
			t.Fatalf("round %d: a read %q after b wrote b%d", i, got, i)
		}
	}
	if got := a.ask(t, "localhits"); got == "0" {
		t.Fatal("forwarder a never answered from the hot tier")
	}
}

// loopAcks reads a looping child's acks: the keys acknowledged and the
// longest gap between two acks after start.
func loopAcks(t *testing.T, ch *child, until func(n int) bool) (acked []int, maxGap time.Duration, errs []string) {
	var last int64
	for ch.out.Scan() {
		f := strings.Fields(ch.out.Text())
		switch f[0] {
		case "ack":
			i, _ := strconv.Atoi(f[1])
			at, _ := strconv.ParseInt(f[2], 10, 64)
			acked = append(acked, i)
			if last != 0 && time.Duration(at-last) > maxGap {
				maxGap = time.Duration(at - last)
			}
			last = at
		case "err":
			errs = append(errs, ch.out.Text())
		case "stopped":
			return
		}
		if until(len(acked)) {
			return
		}
	}
	return
}

// (c) SIGKILL of the owner while a forwarder writes in a loop: the forwarder
// takes over and carries on within a second, and every write it was told
// had succeeded is there afterwards. (d) The same with a clean Close of the
// owner: no error at all reaches the forwarder.
func TestHandoff(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes; timings under -race mean little")
	}
	for _, how := range []string{"sigkill", "close"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			owner := startChild(t, dir)
			writer := startChild(t, dir)
			if owner.ask(t, "role") != "owner true" || writer.ask(t, "role") != "owner false" {
				t.Fatal("unexpected roles")
			}
			fmt.Fprintln(writer.in, "loop w")
			acked, _, errs := loopAcks(t, writer, func(n int) bool { return n >= 2000 })
			start := time.Now()
			if how == "sigkill" {
				owner.cmd.Process.Signal(syscall.SIGKILL)
			} else if line := owner.ask(t, "close"); line != "closed <nil>" {
				t.Fatalf("owner close: %s", line)
			}
			more, gap, errs2 := loopAcks(t, writer, func(n int) bool { return n >= 3000 })
			acked = append(acked, more...)
			errs = append(errs, errs2...)
			t.Logf("%s: %d writes acknowledged, longest pause %v (handoff at %v)", how, len(acked), gap.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			if len(more) < 3000 {
				t.Fatalf("the writer stopped after the owner went away: %d more acks, errors %v", len(more), errs)
			}
			// After a SIGKILL the writer must carry on within a second. A
			// clean Close first drains the calls in flight and closes the
			// store (saving its state), so its pause is longer and has no
			// bound but HandoffWindow: its promise is no errors.
			if how == "sigkill" && gap > time.Second {
				t.Errorf("the writer paused %v across the handoff (max 1s)", gap)
			}
			if len(errs) > 0 {
				t.Errorf("the writer saw errors: %v", errs[:min(len(errs), 3)])
			}
			writer.in.Close() // stops the loop; the writer closes its cache
			for writer.out.Scan() {
			}
			writer.cmd.Wait()
			c, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, i := range acked {
				k := fmt.Sprintf("w-%d", i)
				mustGet(t, c, k, mpValue(k))
			}
		})
	}
}

// (e) A directory whose socket path would pass the 108-byte limit works:
// the socket is abstract.
func TestLongDirectoryPath(t *testing.T) {
	dir := t.TempDir()
	for len(dir) < 150 {
		dir = filepath.Join(dir, "a-rather-long-directory-name")
	}
	owner, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if p := socketPath(owner.Dir()); p[0] != '@' {
		t.Fatalf("socket path %q for a %d-byte directory", p, len(owner.Dir()))
	}
	ch := startChild(t, dir)
	if ch.ask(t, "role") != "owner false" {
		t.Fatal("the child owns the directory")
	}
	owner.Set(ctx, "k", []byte("v"), 0)
	if got := ch.ask(t, "get k"); got != "value v" {
		t.Fatalf("forwarder read %q", got)
	}
}

// (f) The owner's socket is for its user only.
func TestSocketMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new") // Open creates it
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fi, err := os.Stat(filepath.Join(c.Dir(), sockName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if dfi, _ := os.Stat(c.Dir()); dfi.Mode().Perm() != 0o700 {
		t.Fatalf("a directory Open creates has mode %v, want 0700", dfi.Mode())
	}
}
