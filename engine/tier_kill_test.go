package engine

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The coherence torture test: writers and readers in several processes on
// one directory, the owner SIGKILLed over and over, every read checked
// against what was acknowledged. The processes share an "ack board", a
// file they all map: a word per key, written by the key's one writer after
// its Set returned, holding the version it wrote and, for a write with a
// TTL, a time by which the owner's expiry has passed. A reader loads the
// word before its Get, and a value it gets must be whole, of that key, of
// that version or a later one, and for that version not past the time.

const (
	tortureWriters = 3
	tortureKeys    = 16 // a writer's keys; the odd ones are written with a TTL
)

func tortureKey(writer, i int) string { return fmt.Sprintf("w%d-%d", writer, i) }

// tortureValue is version of key: a header, a padding whose length and
// bytes depend on the version, and a CRC of the rest.
func tortureValue(key string, version uint64) []byte {
	b := fmt.Appendf(nil, "%s|%d|", key, version)
	for i := range 20 + version%300 {
		b = append(b, byte(version+i))
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// tortureVersion checks that v is a whole value of key and returns its
// version.
func tortureVersion(key string, v []byte) (uint64, error) {
	if len(v) < 4 || crc32.ChecksumIEEE(v[:len(v)-4]) != binary.BigEndian.Uint32(v[len(v)-4:]) {
		return 0, fmt.Errorf("%s: torn value (%d bytes)", key, len(v))
	}
	f := strings.SplitN(string(v), "|", 3)
	if len(f) != 3 || f[0] != key {
		return 0, fmt.Errorf("%s: the value of another key (%.20q)", key, v)
	}
	return strconv.ParseUint(f[1], 10, 64)
}

// board is the ack board: word i is key i's, version<<40 | deadline in
// milliseconds since base (0 for no TTL).
type board struct {
	words []uint64
	base  time.Time
}

func mapBoard(path string, base time.Time) (*board, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, 8*tortureWriters*tortureKeys, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &board{words: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), tortureWriters*tortureKeys), base: base}, nil
}

func (b *board) load(i int) (version uint64, deadline time.Time) {
	w := atomic.LoadUint64(&b.words[i])
	if ms := w & (1<<40 - 1); ms != 0 {
		deadline = b.base.Add(time.Duration(ms) * time.Millisecond)
	}
	return w >> 40, deadline
}

func (b *board) store(i int, version uint64, deadline time.Time) {
	var ms uint64
	if !deadline.IsZero() {
		ms = uint64(deadline.Sub(b.base).Milliseconds()) + 1
	}
	atomic.StoreUint64(&b.words[i], version<<40|ms)
}

func init() {
	// torture DIR BOARD BASE WRITER: open DIR, write WRITER's keys with
	// rising versions (from the board's on, past what a killed writer may
	// have left unacknowledged) and read every writer's keys from three
	// goroutines, checking each read; print "violation ..." for a bad
	// one. A WRITER of -1 only reads, and only keys without a TTL: with
	// its reads answered by the hot tier it may go a long time without
	// noticing a new owner. When stdin closes, print "reads N hits H local L" and exit.
	childRoles["torture"] = func(args []string) error {
		baseNs, _ := strconv.ParseInt(args[2], 10, 64)
		writer, _ := strconv.Atoi(args[3])
		b, err := mapBoard(args[1], time.Unix(0, baseNs))
		if err != nil {
			return err
		}
		c, err := Open(args[0], &Options{SizeLimit: 64 << 20, HotTierSize: 4 << 20})
		if err != nil {
			return err
		}
		out := bufio.NewWriter(os.Stdout)
		var outMu sync.Mutex
		say := func(format string, a ...any) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(out, format+"\n", a...)
			out.Flush()
		}
		say("ready")
		var stop atomic.Bool
		go func() { io.Copy(io.Discard, os.Stdin); stop.Store(true) }()
		ctx := context.Background()
		var reads, hits atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if writer < 0 {
				return
			}
			r := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
			next := make([]uint64, tortureKeys)
			for i := range next {
				v, _ := b.load(writer*tortureKeys + i)
				next[i] = v + 1000
			}
			for !stop.Load() {
				i := r.IntN(tortureKeys)
				k := tortureKey(writer, i)
				next[i]++
				var ttl time.Duration
				if i%2 == 1 {
					ttl = time.Duration(20+r.IntN(200)) * time.Millisecond
				}
				if err := c.Set(ctx, k, tortureValue(k, next[i]), ttl); err != nil {
					continue // not acknowledged: the owner went away for too long
				}
				var deadline time.Time
				if ttl > 0 {
					deadline = time.Now().Add(ttl)
				}
				b.store(writer*tortureKeys+i, next[i], deadline)
			}
		}()
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(10+g)))
				for !stop.Load() {
					w, i := r.IntN(tortureWriters), r.IntN(tortureKeys)
					if writer < 0 {
						i &^= 1 // keys without a TTL: hits that never expire
					}
					k := tortureKey(w, i)
					floor, deadline := b.load(w*tortureKeys + i)
					start := time.Now()
					v, err := c.Get(ctx, k)
					reads.Add(1)
					if errors.Is(err, ErrNotFound) || err != nil {
						continue
					}
					hits.Add(1)
					ver, err := tortureVersion(k, v)
					switch {
					case err != nil:
						say("violation %v", err)
					case ver < floor:
						say("violation %s: read version %d, version %d was acknowledged before the read began", k, ver, floor)
					case ver == floor && !deadline.IsZero() && start.After(deadline):
						say("violation %s: read version %d %v after its expiry", k, ver, start.Sub(deadline))
					}
				}
			}()
		}
		wg.Wait()
		say("reads %d hits %d local %d", reads.Load(), hits.Load(), c.Stats().LocalHits)
		return c.Close()
	}
}

// TestTortureTierCoherence: three processes write and read one directory,
// two more only read, while the owner is SIGKILLed every 100-400 ms and a
// new process takes its place; no read may return a torn value, one older than a write
// acknowledged before it began, or one past its expiry.
func TestTortureTierCoherence(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process torture test")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	boardPath := filepath.Join(t.TempDir(), "board")
	if err := os.WriteFile(boardPath, make([]byte, 8*tortureWriters*tortureKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	type proc struct {
		cmd *exec.Cmd
		in  io.WriteCloser
	}
	var mu sync.Mutex
	var violations []string
	var summaries []string
	var readers sync.WaitGroup
	start := func(writer int) *proc {
		cmd := childCommand(t, "torture", dir, boardPath, strconv.FormatInt(base.UnixNano(), 10), strconv.Itoa(writer))
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "ready" {
			t.Fatalf("torture child did not start: %q %v", sc.Text(), sc.Err())
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for sc.Scan() {
				mu.Lock()
				if line := sc.Text(); strings.HasPrefix(line, "violation") {
					violations = append(violations, line)
				} else {
					summaries = append(summaries, line)
				}
				mu.Unlock()
			}
		}()
		return &proc{cmd: cmd, in: in}
	}
	procs := make([]*proc, tortureWriters+2)
	writerOf := func(i int) int {
		if i >= tortureWriters {
			return -1
		}
		return i
	}
	for i := range procs {
		procs[i] = start(writerOf(i))
	}
	defer func() {
		for _, p := range procs {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	}()
	r := rand.New(rand.NewPCG(7, 7))
	kills := 0
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		time.Sleep(time.Duration(100+r.IntN(300)) * time.Millisecond)
		pid := ownerPID(filepath.Join(dir, lockName))
		for i, p := range procs {
			if p.cmd.Process.Pid == pid {
				p.cmd.Process.Signal(syscall.SIGKILL)
				p.cmd.Wait()
				procs[i] = start(writerOf(i))
				kills++
			}
		}
	}
	for _, p := range procs {
		p.in.Close()
	}
	for _, p := range procs {
		p.cmd.Wait()
	}
	readers.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d owners killed; survivors: %s", kills, strings.Join(summaries, "; "))
	if kills < 3 {
		t.Errorf("only %d owners killed", kills)
	}
	for _, v := range violations {
		t.Error(v)
	}
}
