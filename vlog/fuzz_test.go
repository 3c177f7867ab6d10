package vlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/diskcache-go/diskcache/codec"
)

// FuzzSegment opens arbitrary bytes as a segment: Scan ends (quietly at a
// torn tail, with ErrCorrupt at damage) and never panics, every entry it
// gives reads back through its Ref, and a Ref made of fuzz reads as its
// entry or as an error.
func FuzzSegment(f *testing.F) {
	fs := vfs.NewMem()
	l, _ := Open(fs, "seed", Options{SegmentSize: 1 << 20})
	for i, v := range [][]byte{nil, []byte("v"), value(1, 300)} {
		_, pin, _ := l.Append([]byte{byte('a' + i)}, v)
		pin.Release()
	}
	seed := readAll(f, fs, l.Segments()[0].Path)
	l.Close()
	f.Add(seed, uint32(8), uint32(14), uint32(0))
	f.Add(seed[:len(seed)-1], uint32(8), uint32(14), uint32(0))
	f.Add([]byte(magic), uint32(0), uint32(0), uint32(0))
	f.Add([]byte("not a segment"), uint32(8), uint32(12), uint32(1))
	f.Add(append([]byte(magic), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0), uint32(8), uint32(1<<31), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, off, length, sum uint32) {
		fs := vfs.NewMem()
		fs.MkdirAll("values", 0o755)
		w, _ := fs.Create("values/00000001.vlog", vfs.WriteCategoryUnspecified)
		w.Write(bytes.Clone(data))
		w.Close()
		l, err := Open(fs, "values", Options{SegmentSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		err = l.Scan(1, func(k, v []byte, ref codec.Ref) error {
			got, err := l.Read(nil, ref, k)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("entry at %d scans as %d bytes but reads as %d, %v", ref.Offset, len(v), len(got), err)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Scan: %v does not wrap ErrCorrupt", err)
		}
		key := []byte{}
		if int(off)+entryHeader <= len(data) {
			kl := binary.LittleEndian.Uint32(data[off+4:])
			if int64(off)+entryHeader+int64(kl) <= int64(len(data)) {
				key = data[off+entryHeader : off+entryHeader+kl]
			}
		}
		if _, err := l.Read(nil, codec.Ref{Segment: 1, Offset: off, Length: length, Sum: sum}, key); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Read: %v does not wrap ErrCorrupt", err)
		}
	})
}
