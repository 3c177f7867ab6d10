package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// syncCounter counts the syncs of files and directories by kind.
type syncCounter struct {
	vfs.FS
	mu     sync.Mutex
	counts map[string]int
}

func (s *syncCounter) kind(name string, dir bool) string {
	b := filepath.Base(name)
	switch {
	case dir:
		return "dir " + b
	case strings.HasPrefix(b, "temporary."):
		return "OPTIONS"
	case strings.HasPrefix(b, "MANIFEST-"):
		return "MANIFEST"
	}
	return filepath.Ext(b)
}

func (s *syncCounter) count(kind string) {
	s.mu.Lock()
	s.counts[kind]++
	s.mu.Unlock()
}

func (s *syncCounter) reset() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	s.counts = make(map[string]int)
	return c
}

type countedFile struct {
	vfs.File
	s    *syncCounter
	kind string
}

func (f countedFile) Sync() error     { f.s.count(f.kind); return f.File.Sync() }
func (f countedFile) SyncData() error { f.s.count(f.kind); return f.File.SyncData() }

func (s *syncCounter) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := s.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return countedFile{f, s, s.kind(name, false)}, nil
}

func (s *syncCounter) OpenDir(name string) (vfs.File, error) {
	f, err := s.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return countedFile{f, s, s.kind(name, true)}, nil
}

// TestOpenSyncs counts the fsyncs of an Open that replays a small log: in
// the default mode, none of the parent directory (which the Open that made
// the store synced), the OPTIONS file or the
// new log's entry (openSyncs), while the table the log is flushed into,
// the new manifest and their directory entries are synced as with Sync.
func TestOpenSyncs(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("Sync=%v", sync), func(t *testing.T) {
			dir := t.TempDir()
			fs := &syncCounter{FS: vfs.Default, counts: map[string]int{}}
			o := Options{Sync: sync, fs: fs}
			for i := range 2 {
				c, err := Open(dir, &o)
				if err != nil {
					t.Fatal(err)
				}
				if got := fs.reset(); i == 0 && got["dir "+filepath.Base(dir)] != 1 {
					t.Errorf("the Open that made the store synced its parent %d times, want 1 (all syncs: %v)", got["dir "+filepath.Base(dir)], got)
				}
				if err := c.Set(ctx, fmt.Sprintf("k%d", i), []byte("v"), 0); err != nil {
					t.Fatal(err)
				}
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
			fs.reset()
			c, err := Open(dir, &o)
			if err != nil {
				t.Fatal(err)
			}
			got := fs.reset()
			defer c.Close()
			if got[".sst"] != 1 || got["MANIFEST"] != 1 {
				t.Errorf("Open synced %d tables and %d manifests, want the flushed table and the new manifest (all syncs: %v)", got[".sst"], got["MANIFEST"], got)
			}
			parent, store, options := got["dir "+filepath.Base(dir)], got["dir "+storeDir], got["OPTIONS"]
			if sync {
				// Pebble's own: parent, table, marker, log, OPTIONS.
				if parent != 1 || store != 4 || options != 1 {
					t.Errorf("with Sync, Open synced the parent %d times, the store directory %d, OPTIONS %d; want 1, 4, 1 (all syncs: %v)", parent, store, options, got)
				}
				return
			}
			if parent != 0 || store != 2 || options != 0 {
				t.Errorf("Open synced the parent %d times, the store directory %d, OPTIONS %d; want 0, 2 (the table and the manifest's marker), 0 (all syncs: %v)", parent, store, options, got)
			}
			if v, err := c.Get(ctx, "k1"); err != nil || string(v) != "v" {
				t.Errorf("Get after the reopen = %q, %v", v, err)
			}
		})
	}
}

// TestTornOptions: Pebble's newest OPTIONS file cut short or zeroed by a
// power cut, which the default mode allows (it does not sync it), fails
// Pebble's Open, which then removes it and opens again; the cache opens
// with what it held. An empty one Pebble reads as no options and is kept.
// Check reads such a store whole and notes the file.
func TestTornOptions(t *testing.T) {
	for _, tear := range []string{"cut", "zeros", "empty"} {
		t.Run(tear, func(t *testing.T) {
			dir := t.TempDir()
			storeOneKey(t, dir)
			names, _ := filepath.Glob(filepath.Join(dir, storeDir, "OPTIONS-*"))
			if len(names) != 1 {
				t.Fatalf("OPTIONS files: %v", names)
			}
			data, err := os.ReadFile(names[0])
			if err != nil {
				t.Fatal(err)
			}
			switch tear {
			case "cut":
				i := bytes.Index(data, []byte("comparer="))
				data = data[:i+len("compar")]
			case "zeros":
				data = make([]byte, len(data))
			case "empty":
				data = nil
			}
			if err := os.WriteFile(names[0], data, 0o644); err != nil {
				t.Fatal(err)
			}
			removed, err := dropTornOptions(vfs.Default, filepath.Join(dir, storeDir))
			if err != nil || (removed != "") != (tear != "empty") {
				t.Fatalf("dropTornOptions = %q, %v", removed, err)
			}
			if err := os.WriteFile(names[0], data, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Check(ctx, dir, nil)
			if err != nil || r.Damaged() || r.Entries != 1 {
				t.Fatalf("Check = %+v, %v; want the one entry and no problem", r, err)
			}
			if noted := strings.Contains(strings.Join(r.Notes, "\n"), "cut short"); noted != (tear != "empty") {
				t.Errorf("Check's notes %q", r.Notes)
			}
			c, err := Open(dir, nil)
			if err != nil {
				t.Fatalf("Open with a torn OPTIONS file: %v", err)
			}
			defer c.Close()
			if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
}
