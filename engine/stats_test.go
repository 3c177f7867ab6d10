package engine

import (
	"path/filepath"
	"testing"
)

// Each process's Stats counts its own calls, whichever process answered
// them, and a forwarder that takes the store over keeps counting from where
// it was instead of starting again or taking on the old owner's calls.
func TestStatsCountOwnCallsAcrossHandoff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	owner, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	fwd, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	if fwd.IsOwner() {
		t.Fatal("want the second Cache to forward")
	}
	mustSet := func(c *Cache, k string) {
		t.Helper()
		if err := c.Set(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	mustSet(owner, "o")
	owner.Get(ctx, "o")
	owner.Get(ctx, "none")
	mustSet(fwd, "f1")
	mustSet(fwd, "f2")
	fwd.Delete(ctx, "f2")
	fwd.Get(ctx, "missing")
	fwd.Get(ctx, "o")

	want := func(c *Cache, who string, hits, misses, sets, deletes int64) {
		t.Helper()
		s := c.Stats()
		if s.Hits != hits || s.Misses != misses || s.Sets != sets || s.Deletes != deletes {
			t.Fatalf("%s: Stats hits %d (%d local), misses %d, sets %d, deletes %d; want hits %d, misses %d, sets %d, deletes %d",
				who, s.Hits, s.LocalHits, s.Misses, s.Sets, s.Deletes, hits, misses, sets, deletes)
		}
		if s.Entries != 2 {
			t.Fatalf("%s: Entries %d, want 2 (the store's)", who, s.Entries)
		}
	}
	want(owner, "owner", 1, 1, 1, 0)
	want(fwd, "forwarder", 1, 1, 2, 1)

	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	// A miss asks the owner, and so hands off: fwd owns the store now. (A
	// hit may come from the gone owner's hot tier, which is right until a
	// new owner serves.)
	fwd.Get(ctx, "none")
	if !fwd.IsOwner() {
		t.Fatal("the forwarder did not take the store over")
	}
	want(fwd, "new owner", 1, 2, 2, 1)
	mustSet(fwd, "f3")
	fwd.Delete(ctx, "f3")
	want(fwd, "new owner", 1, 2, 3, 2)
}
