package vlog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/diskcache-go/diskcache/codec"
)

func openLog(t testing.TB, fs vfs.FS, segment int64) *Log {
	t.Helper()
	l, err := Open(fs, "values", Options{SegmentSize: segment})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func value(i, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), uint64(n)))
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	return b
}

func TestAppendReadAcrossSegmentsAndReopen(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, 64<<10)
	refs := map[string]codec.Ref{}
	for i := range 100 {
		k := fmt.Sprintf("key-%d", i)
		ref, pin, err := l.Append([]byte(k), value(i, 1000+i*10))
		if err != nil {
			t.Fatal(err)
		}
		pin.Release()
		refs[k] = ref
	}
	segs := l.Segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments for 100 KiB+ in 64 KiB segments", len(segs))
	}
	var total int64
	for _, s := range segs {
		total += s.Size
		if s.Size > 64<<10 {
			t.Fatalf("segment %d has %d bytes, more than its 64 KiB", s.ID, s.Size)
		}
	}
	if total != l.Size() {
		t.Fatalf("Size %d, segments hold %d", l.Size(), total)
	}
	check := func(l *Log) {
		for i := range 100 {
			k := fmt.Sprintf("key-%d", i)
			got, err := l.Read(nil, refs[k], []byte(k))
			if err != nil || !bytes.Equal(got, value(i, 1000+i*10)) {
				t.Fatalf("Read %s: %d bytes, %v", k, len(got), err)
			}
		}
	}
	check(l)
	l.Close()
	if _, err := l.Read(nil, refs["key-1"], []byte("key-1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l2 := openLog(t, fs, 64<<10)
	check(l2)
	if l2.Size() != total {
		t.Fatalf("after reopening Size %d, want %d", l2.Size(), total)
	}
	// New entries go to a new segment, after the old ones.
	ref, pin, err := l2.Append([]byte("new"), []byte("value"))
	if err != nil {
		t.Fatal(err)
	}
	pin.Release()
	if ref.Segment <= segs[len(segs)-1].ID {
		t.Fatalf("new entry in segment %d, the last old one is %d", ref.Segment, segs[len(segs)-1].ID)
	}
}

func TestReadChecksItsReference(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, 1<<20)
	a, pa, _ := l.Append([]byte("a"), []byte("the value of a"))
	b, pb, _ := l.Append([]byte("b"), []byte("the value of b"))
	pa.Release()
	pb.Release()
	cases := map[string]struct {
		ref codec.Ref
		key string
	}{
		"another key":          {a, "b"},
		"another entry's sum":  {codec.Ref{Segment: a.Segment, Offset: a.Offset, Length: a.Length, Sum: b.Sum}, "a"},
		"a wrong offset":       {codec.Ref{Segment: a.Segment, Offset: a.Offset + 1, Length: a.Length, Sum: a.Sum}, "a"},
		"a wrong length":       {codec.Ref{Segment: a.Segment, Offset: a.Offset, Length: a.Length + b.Length, Sum: a.Sum}, "a"},
		"past the end":         {codec.Ref{Segment: b.Segment, Offset: b.Offset, Length: b.Length + 1, Sum: b.Sum}, "b"},
		"inside the magic":     {codec.Ref{Segment: a.Segment, Offset: 0, Length: a.Length, Sum: a.Sum}, "a"},
		"shorter than headers": {codec.Ref{Segment: a.Segment, Offset: a.Offset, Length: 3, Sum: a.Sum}, "a"},
	}
	for name, c := range cases {
		if v, err := l.Read(nil, c.ref, []byte(c.key)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %q, %v; want ErrCorrupt", name, v, err)
		}
	}
	if _, err := l.Read(nil, codec.Ref{Segment: 99, Offset: 8, Length: 20}, []byte("a")); !errors.Is(err, ErrGone) {
		t.Errorf("a missing segment: %v, want ErrGone", err)
	}
	// A flipped bit in the stored bytes.
	path := l.Segments()[0].Path
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{'X'}, int64(a.Offset)+int64(a.Length)-1)
	f.Close()
	if _, err := l.Read(nil, a, []byte("a")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a flipped byte: %v, want ErrCorrupt", err)
	}
	if v, err := l.Read(nil, b, []byte("b")); err != nil || string(v) != "the value of b" {
		t.Errorf("the next entry: %q, %v", v, err)
	}
}

func TestScanCollectRemove(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, 4<<10)
	var refs []codec.Ref
	var pins []Pin
	for i := range 20 {
		ref, pin, err := l.Append(fmt.Appendf(nil, "k%d", i), value(i, 900))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
		pins = append(pins, pin)
	}
	first := l.Segments()[0]
	if first.Collectable {
		t.Fatal("a segment with pinned entries is collectable")
	}
	if err := l.Remove(first.ID); err == nil {
		t.Fatal("Remove of a pinned segment succeeded")
	}
	for _, p := range pins {
		p.Release()
	}
	segs := l.Segments()
	if !segs[0].Collectable || segs[len(segs)-1].Collectable {
		t.Fatalf("collectable: first %v, active %v; want true, false", segs[0].Collectable, segs[len(segs)-1].Collectable)
	}
	var seen []codec.Ref
	err := l.Scan(first.ID, func(k, v []byte, ref codec.Ref) error {
		i := len(seen)
		if string(k) != fmt.Sprintf("k%d", i) || !bytes.Equal(v, value(i, 900)) {
			t.Fatalf("entry %d: key %q, %d bytes", i, k, len(v))
		}
		seen = append(seen, ref)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range seen {
		if ref != refs[i] {
			t.Fatalf("Scan gave %+v for entry %d, Append %+v", ref, i, refs[i])
		}
	}
	before := l.Size()
	if err := l.Remove(first.ID); err != nil {
		t.Fatal(err)
	}
	if l.Size() != before-first.Size {
		t.Fatalf("Size %d after removing %d of %d", l.Size(), first.Size, before)
	}
	if _, err := l.Read(nil, refs[0], []byte("k0")); !errors.Is(err, ErrGone) {
		t.Fatalf("Read in a removed segment: %v, want ErrGone", err)
	}
	if _, err := fs.Stat(first.Path); err == nil {
		t.Fatal("the removed segment's file is still there")
	}
}

// A crash mid-append leaves a torn last entry: Scan ends before it, and a
// reopened log appends to a new segment.
func TestTornTail(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, 1<<20)
	for i := range 5 {
		_, pin, _ := l.Append(fmt.Appendf(nil, "k%d", i), value(i, 100))
		pin.Release()
	}
	path := l.Segments()[0].Path
	l.Close()
	for i, torn := range []func(f vfs.File){
		func(f vfs.File) { f.Write([]byte{1, 2, 3}) },                                              // a partial header
		func(f vfs.File) { f.Write([]byte{0, 0, 0, 0, 50, 0, 0, 0, 50, 0, 0, 0, 'x', 'y'}) },       // a partial body
		func(f vfs.File) { f.Write(append([]byte{9, 9, 9, 9, 1, 0, 0, 0, 1, 0, 0, 0}, 'k', 'v')) }, // garbage of the right length
	} {
		// Rewrite the file with the torn tail.
		whole := readAll(t, fs, path)
		g, _ := fs.Create(path, vfs.WriteCategoryUnspecified)
		g.Write(bytes.Clone(whole)) // Write may scribble on its argument
		torn(g)
		g.Close()

		l := openLog(t, fs, 1<<20)
		n := 0
		if err := l.Scan(1, func(k, v []byte, ref codec.Ref) error { n++; return nil }); err != nil || n != 5 {
			t.Fatalf("Scan of torn segment %d: %d entries, %v; want 5 (%q)", i, n, err, readAll(t, fs, path))
		}
		ref, pin, err := l.Append([]byte("after"), []byte("crash"))
		if err != nil || ref.Segment == 1 {
			t.Fatalf("append after reopening: segment %d, %v", ref.Segment, err)
		}
		pin.Release()
		l.Close()
		// Put the segment back as it was.
		g, _ = fs.Create(path, vfs.WriteCategoryUnspecified)
		g.Write(bytes.Clone(whole)) // Write may scribble on its argument
		g.Close()
		for _, s := range []string{"00000002.vlog", "00000003.vlog", "00000004.vlog"} {
			fs.Remove(fs.PathJoin("values", s))
		}
	}
	// Damage before the last entry is reported, not skipped.
	whole := readAll(t, fs, path)
	whole[int(headerSize)+entryHeader] ^= 0xff
	g, _ := fs.Create(path, vfs.WriteCategoryUnspecified)
	g.Write(bytes.Clone(whole)) // Write may scribble on its argument
	g.Close()
	l = openLog(t, fs, 1<<20)
	if err := l.Scan(1, func(k, v []byte, ref codec.Ref) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Scan of a damaged segment: %v, want ErrCorrupt", err)
	}
}

func readAll(t testing.TB, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b := make([]byte, st.Size())
	f.ReadAt(b, 0)
	return b
}

func TestForeignFilesUntouched(t *testing.T) {
	fs := vfs.NewMem()
	fs.MkdirAll("values", 0o755)
	for _, name := range []string{"notes.txt", "1.vlog", "0000000x.vlog", "00000000.vlog"} {
		f, _ := fs.Create(fs.PathJoin("values", name), vfs.WriteCategoryUnspecified)
		f.Write([]byte("keep me"))
		f.Close()
	}
	l := openLog(t, fs, 1<<20)
	if len(l.Segments()) != 0 || l.Size() != 0 {
		t.Fatalf("foreign files taken for segments: %+v", l.Segments())
	}
	_, pin, _ := l.Append([]byte("k"), []byte("v"))
	pin.Release()
	l.Close()
	for _, name := range []string{"notes.txt", "1.vlog", "0000000x.vlog", "00000000.vlog"} {
		if got := readAll(t, fs, fs.PathJoin("values", name)); string(got) != "keep me" {
			t.Fatalf("%s changed: %q", name, got)
		}
	}
}

func TestSync(t *testing.T) {
	l, err := Open(vfs.Default, t.TempDir(), Options{SegmentSize: 1 << 20, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				ref, pin, err := l.Append(fmt.Appendf(nil, "k%d-%d", g, i), value(i, 500))
				if err == nil {
					err = l.Sync(ref)
				}
				pin.Release()
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Readers, writers and a collector at once (run with -race): every read
// gives its value or ErrGone for a removed segment, never anything else.
func TestConcurrent(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, 16<<10)
	var mu sync.Mutex
	refs := map[int]codec.Ref{}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * 1000; i < g*1000+300; i++ {
				ref, pin, err := l.Append(fmt.Appendf(nil, "k%d", i), value(i, 700))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				refs[i] = ref
				mu.Unlock()
				pin.Release()
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 2000 {
			mu.Lock()
			var i int
			var ref codec.Ref
			for i, ref = range refs {
				break
			}
			mu.Unlock()
			if ref.Segment == 0 {
				continue
			}
			v, err := l.Read(nil, ref, fmt.Appendf(nil, "k%d", i))
			if err != nil && !errors.Is(err, ErrGone) || err == nil && !bytes.Equal(v, value(i, 700)) {
				t.Errorf("read k%d: %v", i, err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			for _, s := range l.Segments() {
				if s.Collectable && s.ID%2 == 0 {
					l.Scan(s.ID, func(k, v []byte, ref codec.Ref) error { return nil })
					l.Remove(s.ID)
				}
			}
		}
	}()
	wg.Wait()
}
