package engine

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"
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

// Pebble recycles no log where logs are not synced (noRecycleCleaner): once
// the flushes are done, the store holds only the log being written. With
// Sync, logs are reused.
func TestLogsNotRecycled(t *testing.T) {
	dir := t.TempDir()
	c := openDir(t, dir, nil)
	defer c.Close()
	v := make([]byte, 1000)
	rand.Read(v) // 20 MB: five memtables of 4 MiB, so five logs
	for i := range 20_000 {
		v[0] = byte(i)
		if err := c.Set(ctx, fmt.Sprint("k", i), v, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Pebble flushes in the background and deletes obsolete files after.
	var logs []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if logs = logsIn(t, dir); len(logs) == 1 {
			break
		}
	}
	if len(logs) != 1 {
		t.Fatalf("the store holds the logs %v once its flushes are done, want only the one being written", logs)
	}
	o := (&Options{Sync: true}).withDefaults()
	if _, ok := pebbleOptions(&o, o.durability()).Cleaner.(noRecycleCleaner); ok {
		t.Error("with Sync, Pebble's logs are not reused")
	}
}
