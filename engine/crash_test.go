package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// crashValue is the value the crash writer stores under key i: its length
// varies so that records straddle WAL blocks, and every third value (up to
// 12 KiB) goes to the value log.
func crashValue(i int) []byte {
	n := 1 + i%97
	if i%3 == 0 {
		n *= 20
	}
	return []byte(strings.Repeat(strconv.Itoa(i)+"-", n))
}

func init() {
	// crash-writer DIR SYNC: Set keys 0, 1, 2, ... forever and delete every
	// tenth key after writing it, printing "set i" / "del i" after each call
	// returns. The parent kills it with SIGKILL.
	childRoles["crash-writer"] = func(args []string) error {
		sync := args[1] == "sync"
		c, err := Open(args[0], &Options{Sync: sync})
		if err != nil {
			return err
		}
		out := bufio.NewWriterSize(osStdout(), 4096)
		for i := 0; ; i++ {
			if err := c.Set(context.Background(), "key-"+strconv.Itoa(i), crashValue(i), 0); err != nil {
				return err
			}
			fmt.Fprintf(out, "set %d\n", i)
			if i%10 == 0 {
				if err := c.Delete(context.Background(), "key-"+strconv.Itoa(i)); err != nil {
					return err
				}
				fmt.Fprintf(out, "del %d\n", i)
			}
			if i%64 == 0 || sync {
				out.Flush()
			}
		}
	}
}

// TestKillKeepsAcknowledgedWrites SIGKILLs a writer process mid-stream and
// checks that every Set and Delete it reported as returned is in the store
// after reopening, with its exact value.
func TestKillKeepsAcknowledgedWrites(t *testing.T) {
	for _, mode := range []string{"default", "sync"} {
		t.Run(mode, func(t *testing.T) {
			for round := 0; round < 3; round++ {
				dir := t.TempDir()
				cmd := childCommand(t, "crash-writer", dir, mode)
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				target, step := 20000, 997
				if mode == "sync" {
					target, step = 40, 17 // a synced write takes milliseconds
				}
				set, del := map[int]bool{}, map[int]bool{}
				sc := bufio.NewScanner(stdout)
				killed := false
				for sc.Scan() {
					var op string
					var i int
					if _, err := fmt.Sscanf(sc.Text(), "%s %d", &op, &i); err != nil {
						t.Fatalf("child said %q", sc.Text())
					}
					if op == "set" {
						set[i] = true
					} else {
						del[i] = true
					}
					// Kill at a point that varies from round to round; lines
					// already in the pipe still count as acknowledged.
					if !killed && len(set) >= target+round*step {
						cmd.Process.Signal(syscall.SIGKILL)
						killed = true
					}
				}
				cmd.Wait()
				if !killed {
					t.Fatalf("writer exited before it was killed after %d sets", len(set))
				}

				c, err := Open(dir, nil)
				if err != nil {
					t.Fatalf("reopen after SIGKILL: %v", err)
				}
				for i := range set {
					k := "key-" + strconv.Itoa(i)
					v, err := c.Get(context.Background(), k)
					switch {
					case del[i]:
						if !errors.Is(err, ErrNotFound) {
							t.Fatalf("%s was deleted before the kill, Get = %v", k, err)
						}
					case err != nil:
						t.Fatalf("acknowledged %s lost: %v", k, err)
					case string(v) != string(crashValue(i)):
						t.Fatalf("%s = %q, want %q", k, v, crashValue(i))
					}
				}
				// Len is exact: it matches a scan, whatever the kill cut.
				n, _ := c.Len(context.Background())
				if scanned := countScan(t, c); n != scanned {
					t.Fatalf("Len = %d after the crash, a scan finds %d", n, scanned)
				}
				c.Close()
				t.Logf("round %d: %d sets and %d deletes acknowledged, all present", round, len(set), len(del))
			}
		})
	}
}
