package engine

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
)

// logsIn returns the logs in the store of the cache in dir.
func logsIn(t *testing.T, dir string) []string {
	return storeFiles(t, dir, func(name string) bool { return strings.HasSuffix(name, ".log") })
}

// A Close that flushed leaves one log, the newest, and the store opens
// with every entry; a Close that did not flush leaves the logs the next
// Open replays.
func TestCloseDropsOldLogs(t *testing.T) {
	dir := t.TempDir()
	c := openDir(t, dir, nil)
	v := make([]byte, 1000)
	rand.Read(v) // not compressed: 20 MB, several memtables of 4 MiB, so several logs
	const n = 20_000
	for i := range n {
		v[0] = byte(i)
		if err := c.Set(ctx, fmt.Sprint("k", i), v, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if logs := logsIn(t, dir); len(logs) != 1 {
		t.Fatalf("after a Close that flushed the store holds the logs %v, want only the newest", logs)
	}
	c = openDir(t, dir, nil)
	mustLen(t, c, n)
	for i := range n {
		v[0] = byte(i)
		mustGet(t, c, fmt.Sprint("k", i), v)
	}
	// A short session: Close does not flush, and its log is replayed.
	if err := c.Set(ctx, "short", []byte("session"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openDir(t, dir, nil)
	mustGet(t, c, "short", []byte("session"))
	mustLen(t, c, n+1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, dir, nil)
	if err != nil || r.Damaged() {
		t.Fatalf("Check: %+v, %v", r, err)
	}
}
