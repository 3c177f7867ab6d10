package disk_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/disk"
)

// TestMain lets the test binary stand in for a worker process: with
// DISKCACHE_GETORSET_DIR set it runs one GetOrSet and exits.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DISKCACHE_GETORSET_DIR"); dir != "" {
		if err := getOrSetWorker(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// getOrSetWorker asks for one key with GetOrSet; fn counts its runs in the
// cache itself (an atomic IncrBy through the owner) and takes its time, so
// that the other processes ask while it runs.
func getOrSetWorker(dir string) error {
	b, err := disk.Open(dir, testOptions())
	if err != nil {
		return err
	}
	m, err := manager.New(b, &manager.Options{Namespace: "mp"})
	if err != nil {
		return err
	}
	defer m.Close()
	ctx := context.Background()
	v, err := manager.GetOrSet(ctx, m, m.Keys().MustKey(manager.KindResponse, "expensive"), func(ctx context.Context) (string, error) {
		if _, err := b.Engine().IncrBy(ctx, "runs", 1); err != nil {
			return "", err
		}
		time.Sleep(300 * time.Millisecond)
		return "the answer", nil
	})
	if err != nil {
		return err
	}
	fmt.Println(v)
	return nil
}

// TestGetOrSetAcrossProcesses: four processes ask for the same missing key
// at once; fn runs in one of them and all four get its value.
func TestGetOrSetAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	// An owner that stays up, so the workers forward through it.
	owner, err := engine.Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "DISKCACHE_GETORSET_DIR="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("worker %d: %v: %s", i, err, out)
			}
			outs[i] = strings.TrimSpace(string(out))
		}(i)
	}
	wg.Wait()
	for i, o := range outs {
		if o != "the answer" {
			t.Errorf("worker %d got %q", i, o)
		}
	}
	runs, err := owner.Get(ctx, "runs")
	if err != nil || string(runs) != "1" {
		t.Fatalf("fn ran %s times across 4 processes, want 1 (%v)", runs, err)
	}
}
