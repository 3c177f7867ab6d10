package engine

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	for _, tc := range []struct {
		class opClass
		kind  fileKind
		sync  bool
	}{
		{writes, walFile, false}, {writes, tableFile, false}, {syncs, walFile, true}, {reads, tableFile, false}, {writes, manifestFile, false}, {syncs, tableFile, false},
	} {
		t.Run(fmt.Sprint(tc), func(t *testing.T) {
			f := &fault{}
			dir := filepath.Join(t.TempDir(), "c")
			o := &Options{SizeLimit: 64 << 20, Sync: tc.sync, fs: newFaultFS(f)}
			c, err := Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			v := make([]byte, 4000)
			for i := 0; i < 3000; i++ {
				v[0] = byte(i)
				c.Set(ctx, fmt.Sprint("k", i), v, 0)
			}
			f.set(tc.class, tc.kind, syscall.EIO)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Logf("PANIC: %v", r)
					}
				}()
				for i := 0; i < 3000; i++ {
					done := make(chan error, 1)
					go func() {
						defer func() {
							if r := recover(); r != nil {
								done <- fmt.Errorf("panic %v", r)
							}
						}()
						_, err := c.Get(ctx, fmt.Sprint("k", i%50))
						if err != nil {
							done <- fmt.Errorf("get: %w", err)
							return
						}
						done <- c.Set(ctx, fmt.Sprint("n", i), v, 0)
					}()
					select {
					case err := <-done:
						if err != nil {
							t.Logf("op %d: %v (hits %d)", i, err, f.hits.Load())
							if i > 5 {
								return
							}
						}
					case <-time.After(3 * time.Second):
						t.Logf("op %d hangs (hits %d)", i, f.hits.Load())
						return
					}
				}
				t.Logf("no error in 3000 ops, hits %d", f.hits.Load())
			}()
			f.clear()
			err = c.Set(ctx, "after", v, 0)
			t.Logf("after clear: %v", err)
			cd := make(chan error, 1)
			go func() { cd <- c.Close() }()
			select {
			case err := <-cd:
				t.Logf("close: %v", err)
			case <-time.After(5 * time.Second):
				t.Logf("close hangs")
				return
			}
			c, err = Open(dir, &Options{SizeLimit: 64 << 20})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			mustGet(t, c, "k2999", func() []byte { v[0] = byte(2999 % 256); return v }())
			c.Close()
		})
	}
}
