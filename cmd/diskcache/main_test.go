package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the diskcache binary: with
// DISKCACHE_TEST_MAIN=1 it runs the command line instead of the tests, so
// that serve can be tested as a real process (signals, exit codes).
func TestMain(m *testing.M) {
	if os.Getenv("DISKCACHE_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cli runs the command line in this process with --dir dir.
func cli(t *testing.T, dir, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	if dir != "" {
		args = append([]string{"--dir", dir}, args...)
	}
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	steps := []struct {
		stdin    string
		args     []string
		out, err string // out exactly; err as a substring
		code     int
	}{
		{args: []string{"get", "k"}, err: `diskcache: "k": key not found`, code: 1},
		{args: []string{"set", "k", "hello"}},
		{args: []string{"get", "k"}, out: "hello"},
		{args: []string{"ttl", "k"}, out: "none\n"},
		{stdin: "from\nstdin\n", args: []string{"set", "s", "-", "--ttl", "5m"}},
		{args: []string{"get", "s"}, out: "from\nstdin\n"},
		{args: []string{"exists", "s"}, out: "true\n"},
		{args: []string{"exists", "nope"}, out: "false\n"},
		{args: []string{"ttl", "nope"}, err: "key not found", code: 1},
		{args: []string{"set", "--ttl", "1d", "d", "v"}},
		{args: []string{"len"}, out: "3\n"},
		{args: []string{"del", "k", "nope", "d"}, out: "2\n"},
		{args: []string{"ttl", "s"}, out: "CHECKED BELOW"},
		{args: []string{"len"}, out: "1\n"},
		{stdin: "no\n", args: []string{"clear"}, err: "not confirmed", code: 1},
		{args: []string{"clear"}, err: "not confirmed", code: 1}, // no answer at all
		{args: []string{"len"}, out: "1\n"},
		{stdin: "y\n", args: []string{"clear"}, err: "Delete all 1 entries of "},
		{args: []string{"len"}, out: "0\n"},
		{args: []string{"set", "k", "v"}},
		{args: []string{"clear", "--yes"}},
		{args: []string{"len"}, out: "0\n"},
	}
	for _, s := range steps {
		out, errs, code := cli(t, dir, s.stdin, s.args...)
		if s.out == "CHECKED BELOW" {
			if d, err := time.ParseDuration(strings.TrimSpace(out)); err != nil || d <= 4*time.Minute || d > 5*time.Minute {
				t.Errorf("ttl s = %q, want about 5m", out)
			}
			continue
		}
		if code != s.code || out != s.out || !strings.Contains(errs, s.err) || (s.err == "" && errs != "") {
			t.Errorf("diskcache %s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
				strings.Join(s.args, " "), code, out, errs, s.code, s.out, s.err)
		}
	}
}

func TestStats(t *testing.T) {
	dir := t.TempDir()
	cli(t, dir, "", "set", "a", "1")
	out, _, code := cli(t, dir, "", "stats")
	if code != 0 || !strings.Contains(out, "entries        1\n") || !strings.Contains(out, "disk bytes") {
		t.Errorf("stats: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, dir, "", "stats", "--json")
	if code != 0 || !strings.Contains(out, `"entries": 1,`) || !strings.Contains(out, `"disk_bytes": `) {
		t.Errorf("stats --json: exit %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{}, {"nosuch"}, {"get"}, {"get", "a", "b"}, {"set", "k"}, {"set", "k", "v", "--ttl", "soon"},
		{"set", "k", "v", "--ttl", "-5s"}, {"del"}, {"len", "x"}, {"stats", "--bogus"}, {"--bogus"},
		{"serve", "--size-limit", "lots"}, {"serve", "extra"}, {"help", "nosuch"}, {"exists"}, {"ttl"},
	} {
		out, errs, code := cli(t, dir, "", args...)
		if code != 2 || !strings.Contains(errs, "diskcache: ") || !strings.Contains(errs, "--help' for usage") {
			t.Errorf("diskcache %s: exit %d, stdout %q, stderr %q; want exit 2 and a usage hint",
				strings.Join(args, " "), code, out, errs)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"help", "serve"}, {"get", "--help"}, {"set", "--help"}, {"del", "--help"},
		{"exists", "--help"}, {"ttl", "--help"}, {"len", "--help"}, {"clear", "--help"}, {"stats", "--help"},
		{"serve", "--help"},
	} {
		out, errs, code := cli(t, "", "", args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errs != "" {
			t.Errorf("diskcache %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, errs, out)
		}
	}
	out, _, _ := cli(t, "", "", "serve", "--help")
	for _, flag := range []string{"--addr", "--password", "--metrics-addr", "--size-limit", "--dir", `"127.0.0.1:6380"`, "1.0 GiB"} {
		if !strings.Contains(out, flag) {
			t.Errorf("serve --help lacks %s:\n%s", flag, out)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"512MiB": 512 << 20, "1GiB": 1 << 30, "1GB": 1e9, "1gb": 1e9, "1.5G": 3 << 29, "4096": 4096,
		"64 MiB": 64 << 20, "10KB": 10000, "10k": 10240, "2TiB": 2 << 40, "7B": 7, "0": 0,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1GiB", "1XB", "GiB", "1e30", "NaN"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 1 << 30: "1.0 GiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90s": 90 * time.Second, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour, "0": 0,
	} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1s", "1.5d", "5"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}
