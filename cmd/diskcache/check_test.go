package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/diskcache-go/diskcache/engine"
)

func TestCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		c.Set(context.Background(), "k"+strconv.Itoa(i), []byte("v"), 0)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "mine.txt")
	os.WriteFile(mine, []byte("mine"), 0o600)

	out, errs, code := cli(t, dir, "", "check")
	if code != 0 || !line(out, "entries", "100 ") || !line(out, "format", "2 ") || !line(out, "result", "ok") ||
		!line(out, "note", "mine.txt is not the cache's: left alone") || errs != "" {
		t.Fatalf("check of a sound store: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
	out, _, code = cli(t, dir, "", "check", "--json")
	var r struct {
		Entries  int64
		Problems []struct{ File, What string }
	}
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Entries != 100 || len(r.Problems) != 0 {
		t.Fatalf("check --json: exit %d, %v:\n%s", code, err, out)
	}

	// Damage: the MANIFEST is gone.
	manifests, _ := filepath.Glob(filepath.Join(dir, "store", "MANIFEST-*"))
	for _, m := range manifests {
		os.Remove(m)
	}
	out, errs, code = cli(t, dir, "", "check")
	if code != 1 || !line(out, "problem", "store/MANIFEST-") || !line(out, "result", "DAMAGED") ||
		!strings.Contains(errs, "is damaged (1 problem); 'diskcache check --repair'") {
		t.Fatalf("check of a damaged store: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
	out, _, code = cli(t, dir, "", "check", "--json")
	if err := json.Unmarshal([]byte(out), &r); code != 1 || err != nil || len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0].File, "store/MANIFEST-") {
		t.Fatalf("check --json of a damaged store: exit %d, %v:\n%s", code, err, out)
	}
	out, errs, code = cli(t, dir, "", "check", "--repair")
	if code != 0 || !line(out, "result", "damaged; the store was deleted and recreated empty") {
		t.Fatalf("check --repair: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
	if b, err := os.ReadFile(mine); err != nil || string(b) != "mine" {
		t.Fatalf("check --repair touched a file that is not the cache's: %q, %v", b, err)
	}
	if out, _, code := cli(t, dir, "", "check"); code != 0 || !line(out, "entries", "0 ") {
		t.Fatalf("check after the repair: exit %d:\n%s", code, out)
	}
	if out, _, code := cli(t, dir, "", "len"); code != 0 || out != "0\n" {
		t.Fatalf("len after the repair: exit %d, %q", code, out)
	}
}

// line reports whether the report out has a line with label and a value
// that starts with value.
func line(out, label, value string) bool {
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, label+" "); ok && strings.HasPrefix(strings.TrimLeft(rest, " "), value) {
			return true
		}
	}
	return false
}

func TestCheckOwnedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := engine.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, errs, code := cli(t, dir, "", "check", "--repair")
	if code != 1 || out != "" || !strings.Contains(errs, "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(errs, "stop that process first") {
		t.Fatalf("check of an open directory: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestCheckHelpAndUsage(t *testing.T) {
	out, errs, code := cli(t, "", "", "check", "--help")
	if code != 0 || errs != "" || !strings.Contains(out, "--repair") || !strings.Contains(out, "--json") {
		t.Errorf("check --help: exit %d, stderr %q:\n%s", code, errs, out)
	}
	if _, errs, code := cli(t, t.TempDir(), "", "check", "extra"); code != 2 || !strings.Contains(errs, "--help' for usage") {
		t.Errorf("check extra: exit %d, stderr %q", code, errs)
	}
	if _, errs, code := cli(t, filepath.Join(t.TempDir(), "nosuch"), "", "check"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("check of a missing directory: exit %d, stderr %q", code, errs)
	}
}

// TestCheckFormat1 checks the store of format 1 the engine's tests keep
// (a store written before the bucketed keyspace): it is sound, and the
// report says which format it is.
func TestCheckFormat1(t *testing.T) {
	src := filepath.Join("..", "..", "engine", "testdata", "format1")
	dir := filepath.Join(t.TempDir(), "cache")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := cli(t, dir, "", "check")
	if code != 0 || !line(out, "format", "1 (keys by hash") || !line(out, "entries", "301 ") || !line(out, "result", "ok") {
		t.Fatalf("check of a store of format 1: exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
}
