package engine

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/diskcache-go/diskcache/ttl"
)

// openFuzzCaches opens an owner with Pebble's files in memory and a
// second Cache on the same directory, which forwards over the owner's
// socket (the lock and the socket need a real directory).
func openFuzzCaches(f *testing.F) (owner, fwd *Cache) {
	dir := f.TempDir()
	o := &Options{SizeLimit: 64 << 20, fs: vfs.NewMem()}
	owner, err := Open(dir, o)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { owner.Close() })
	fwd, err = Open(dir, o)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fwd.Close() })
	return owner, fwd
}

// FuzzKeys feeds arbitrary keys to the key encoding (keys.go and the
// expiry index of package ttl) and through a real store, directly and over
// the owner's socket. The data key must carry the key and its hash and
// fall in its slice of the hash space; the index key must parse back to
// its expiry and data key and sort by expiry; and any key of any bytes up
// to MaxKeySize must round-trip through Set, Get, TTL, Scan and Delete,
// while a longer one is refused with ErrKeyTooLarge.
func FuzzKeys(f *testing.F) {
	for _, k := range []string{
		"", "k", "\x00", "\xff\xff\xff\xff\xff\xff\xff\xff\xff", "user:42", "with space", "üñíçødé 日本",
		"\r\n", "*1\r\n$4\r\nPING\r\n", "mformat", "mstate", "d", "x", strings.Repeat("a", 300),
		"\xc3\x28", // invalid UTF-8
	} {
		f.Add([]byte(k), uint64(1_700_000_000_000_000_000), []byte("v"))
	}
	f.Add([]byte("k"), uint64(1), []byte{})
	f.Add([]byte("k"), ^uint64(0)>>1, []byte("\x00\x01"))
	owner, fwd := openFuzzCaches(f)

	f.Fuzz(func(t *testing.T, key []byte, expiry uint64, value []byte) {
		checkKeyEncoding(t, key, expiry)
		k := string(key)
		if len(key) > MaxKeySize {
			if err := owner.Set(ctx, k, value, 0); !errors.Is(err, ErrKeyTooLarge) {
				t.Fatalf("Set of a %d-byte key = %v", len(key), err)
			}
			return
		}
		for _, c := range []struct {
			name      string
			set, read *Cache
		}{{"owner", owner, owner}, {"forwarded set", fwd, owner}, {"forwarded get", owner, fwd}} {
			if err := c.set.Set(ctx, k, value, time.Hour); err != nil {
				t.Fatalf("%s: Set(%q): %v", c.name, key, err)
			}
			got, left, err := c.read.GetWithTTL(ctx, k)
			if err != nil || !bytes.Equal(got, value) || left <= 0 || left > time.Hour {
				t.Fatalf("%s: GetWithTTL(%q) = %q, %v, %v; want %q with about an hour", c.name, key, got, left, err, value)
			}
			if !scanFinds(t, c.read, k) {
				t.Fatalf("%s: Scan does not return %q", c.name, key)
			}
			if n, err := c.read.DeleteMany(ctx, k); err != nil || n != 1 {
				t.Fatalf("%s: DeleteMany(%q) = %d, %v", c.name, key, n, err)
			}
			if _, err := c.set.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: Get(%q) after Delete = %v", c.name, key, err)
			}
		}
	})
}

// checkKeyEncoding checks the data and index keys of key, in both layouts.
func checkKeyEncoding(t *testing.T, key []byte, expiry uint64) {
	for _, l := range []keyLayout{hashedKeys, bucketedKeys} {
		dk := l.dataKey(nil, string(key))
		if !l.isData(dk) || len(dk) != l.header+len(key) || !bytes.Equal(l.userKey(dk), key) ||
			l.hash(dk) != xxhash.Sum64(key) {
			t.Fatalf("format %d: data key %x of %q", l.format, dk, key)
		}
		if dk2, h := l.dataKeyHash(nil, string(key)); !bytes.Equal(dk2, dk) || h != xxhash.Sum64(key) {
			t.Fatalf("format %d: dataKeyHash(%q) = %x, %x", l.format, key, dk2, h)
		}
		lo, hi := dataSpan()
		if bytes.Compare(dk, lo) < 0 || bytes.Compare(dk, hi) >= 0 {
			t.Fatalf("format %d: data key %x outside the data span", l.format, dk)
		}
		if pos := l.position(dk); bytes.Compare(l.seek(pos), dk) > 0 || pos > l.hash(dk) {
			t.Fatalf("format %d: data key %x before its position %x", l.format, dk, pos)
		}
		in := 0
		for i := 0; i < reclaimSlices; i++ {
			slo, shi := l.slice(i, reclaimSlices)
			if bytes.Compare(dk, slo) >= 0 && bytes.Compare(dk, shi) < 0 {
				in++
			}
		}
		if in != 1 {
			t.Fatalf("format %d: data key %x falls in %d of the %d hash slices", l.format, dk, in, reclaimSlices)
		}
	}
	dk := bucketedKeys.dataKey(nil, string(key))
	e := int64(expiry >> 1) // a positive expiry
	if e == 0 {
		e = 1
	}
	ik := ttl.AppendIndexKey(nil, e, dk[1:])
	got, ref, err := ttl.ParseIndexKey(ik)
	if err != nil || got != e || !bytes.Equal(append([]byte{dataPrefix}, ref...), dk) {
		t.Fatalf("index key %x parses to %d, %x, %v", ik, got, ref, err)
	}
	if e < 1<<62 {
		later := ttl.AppendIndexKey(nil, e+1, []byte{})
		if bytes.Compare(ik, later) >= 0 {
			t.Fatalf("index key for %d sorts after one for %d", e, e+1)
		}
	}
	// Arbitrary bytes never make ParseIndexKey panic, and what it
	// accepts it gives back whole.
	if e, ref, err := ttl.ParseIndexKey(key); err == nil && !bytes.Equal(ttl.AppendIndexKey(nil, e, ref), key) {
		t.Fatalf("ParseIndexKey(%x) loses bytes", key)
	}
}

func scanFinds(t *testing.T, c *Cache, key string) bool {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, 100)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		for _, k := range keys {
			if k == key {
				return true
			}
		}
		if next == 0 {
			return false
		}
		cursor = next
	}
}

// TestLimitsEveryMethod: a key of MaxKeySize bytes works and one byte more
// is refused with ErrKeyTooLarge by every method that takes a key; a value
// of MaxValueSize works and one byte more is refused with ErrValueTooLarge
// by every method that stores one, with nothing written (a SetMany with
// one bad entry writes none). Both in the owner and through the socket.
func TestLimitsEveryMethod(t *testing.T) {
	const limit = 64 << 20
	dir := filepath.Join(t.TempDir(), "cache")
	owner, err := Open(dir, &Options{SizeLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	fwd, err := Open(dir, &Options{SizeLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	maxValue := limit / maxValueFraction
	longest, tooLong := strings.Repeat("k", MaxKeySize), strings.Repeat("k", MaxKeySize+1)
	big, tooBig := make([]byte, maxValue), make([]byte, maxValue+1)

	for _, c := range []struct {
		name string
		c    *Cache
	}{{"owner", owner}, {"forwarder", fwd}} {
		t.Run(c.name, func(t *testing.T) {
			cc := c.c
			keyOps := map[string]func(k string) error{
				"Get":        func(k string) error { _, err := cc.Get(ctx, k); return err },
				"GetWithTTL": func(k string) error { _, _, err := cc.GetWithTTL(ctx, k); return err },
				"Exists":     func(k string) error { _, err := cc.Exists(ctx, k); return err },
				"TTL":        func(k string) error { _, err := cc.TTL(ctx, k); return err },
				"GetMany":    func(k string) error { _, err := cc.GetMany(ctx, []string{"a", k}); return err },
				"Set":        func(k string) error { return cc.Set(ctx, k, []byte("v"), 0) },
				"SetMany": func(k string) error {
					return cc.SetMany(ctx, []Entry{{Key: "a", Value: []byte("v")}, {Key: k, Value: []byte("v")}})
				},
				"SetManyIfAbsent": func(k string) error {
					_, err := cc.SetManyIfAbsent(ctx, []Entry{{Key: k, Value: []byte("v")}})
					return err
				},
				"Delete":         func(k string) error { return cc.Delete(ctx, k) },
				"DeleteMany":     func(k string) error { _, err := cc.DeleteMany(ctx, "a", k); return err },
				"Touch":          func(k string) error { return cc.Touch(ctx, k, time.Hour) },
				"SetWithOptions": func(k string) error { _, err := cc.SetWithOptions(ctx, k, []byte("v"), SetOptions{}); return err },
				"GetDelete":      func(k string) error { _, err := cc.GetDelete(ctx, k); return err },
				"GetExpire":      func(k string) error { _, err := cc.GetExpire(ctx, k, Expiry{Persist: true}); return err },
				"Expire":         func(k string) error { _, err := cc.Expire(ctx, k, Expiry{Persist: true}); return err },
				"IncrBy":         func(k string) error { _, err := cc.IncrBy(ctx, k, 1); return err },
				"Append":         func(k string) error { _, err := cc.Append(ctx, k, []byte("x")); return err },
			}
			for name, op := range keyOps {
				if err := op(tooLong); !errors.Is(err, ErrKeyTooLarge) {
					t.Errorf("%s with a %d-byte key = %v; want ErrKeyTooLarge", name, len(tooLong), err)
				}
				if err := op(longest); errors.Is(err, ErrKeyTooLarge) {
					t.Errorf("%s with a %d-byte key = %v", name, len(longest), err)
				}
			}
			if err := cc.Set(ctx, longest, []byte("longest"), 0); err != nil {
				t.Fatal(err)
			}
			mustGet(t, cc, longest, []byte("longest"))

			valueOps := map[string]func(v []byte) error{
				"Set": func(v []byte) error { return cc.Set(ctx, "v", v, 0) },
				"SetMany": func(v []byte) error {
					return cc.SetMany(ctx, []Entry{{Key: "small", Value: []byte("s")}, {Key: "v", Value: v}})
				},
				"SetManyIfAbsent": func(v []byte) error { _, err := cc.SetManyIfAbsent(ctx, []Entry{{Key: "v", Value: v}}); return err },
				"SetWithOptions":  func(v []byte) error { _, err := cc.SetWithOptions(ctx, "v", v, SetOptions{}); return err },
			}
			for name, op := range valueOps {
				cc.Delete(ctx, "v")
				cc.Delete(ctx, "small")
				if err := op(tooBig); !errors.Is(err, ErrValueTooLarge) {
					t.Errorf("%s with a %d-byte value = %v; want ErrValueTooLarge", name, len(tooBig), err)
				}
				if ok, _ := cc.Exists(ctx, "small"); ok {
					t.Errorf("%s with one value too large wrote the others", name)
				}
				if ok, _ := cc.Exists(ctx, "v"); ok {
					t.Errorf("%s with a value too large wrote it", name)
				}
				if err := op(big); err != nil {
					t.Errorf("%s with a %d-byte value = %v", name, len(big), err)
				}
			}
			mustGet(t, cc, "v", big)
			if _, err := cc.Append(ctx, "v", []byte("x")); !errors.Is(err, ErrValueTooLarge) {
				t.Errorf("Append past MaxValueSize = %v; want ErrValueTooLarge", err)
			}
			mustGet(t, cc, "v", big)
		})
	}
}

// TestPathWithSpacesAndUnicode: a cache directory whose path has spaces,
// accents, CJK and an emoji works for the owner, for a forwarding process
// (the socket path holds the same bytes), and for Check.
func TestPathWithSpacesAndUnicode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my cache", "ünïcødé 日本語 🗄", "d i r")
	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	ch := startChild(t, dir)
	if got := ch.ask(t, "get k"); got != "value v" {
		t.Fatalf("a forwarding process read %q", got)
	}
	if got := ch.ask(t, "set k2 v2"); got != "ok" {
		t.Fatalf("a forwarding process's set: %q", got)
	}
	mustGet(t, c, "k2", []byte("v2"))
	ch.ask(t, "close")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, dir, nil)
	if err != nil || r.Damaged() || r.Entries != 2 {
		t.Fatalf("Check: %+v, %v", r, err)
	}
	c, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustGet(t, c, "k2", []byte("v2"))
}
