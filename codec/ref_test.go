package codec

import (
	"bytes"
	"errors"
	"testing"
)

func TestRefRecord(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("a value that compresses well "), 100)
	stored, algo := c.AppendStored(nil, value)
	if algo != AlgoS2 || len(stored) >= len(value) {
		t.Fatalf("AppendStored: algo %d, %d bytes of %d", algo, len(stored), len(value))
	}
	ref := Ref{Segment: 7, Offset: 4096, Length: uint32(len(stored) + 40), Sum: 0xdeadbeef}
	for _, expiry := range []int64{0, 1_800_000_000_000_000_000} {
		rec := AppendRefRecord(nil, expiry, 1_700_000_000_000_000_000, algo, ref)
		h, payload, err := Verify(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Ref || h.Algo != algo || h.Expiry != expiry {
			t.Fatalf("header %+v, want a reference with algo %d and expiry %d", h, algo, expiry)
		}
		got, err := ParseRef(payload)
		if err != nil || got != ref {
			t.Fatalf("ParseRef = %+v, %v; want %+v", got, err, ref)
		}
		if n := ExternalLen(rec); n != int(ref.Length) {
			t.Fatalf("ExternalLen = %d, want %d", n, ref.Length)
		}
		if _, _, err := c.Decode(nil, rec); !errors.Is(err, ErrRef) {
			t.Fatalf("Decode of a reference record: %v, want ErrRef", err)
		}
		// A new expiry keeps the reference.
		moved, err := SetExpiry(rec, 42)
		if err != nil {
			t.Fatal(err)
		}
		if h, payload, err := Verify(moved); err != nil || !h.Ref || h.Expiry != 42 || !bytes.Equal(payload, rec[len(rec)-RefSize:]) {
			t.Fatalf("after SetExpiry: %+v %x %v", h, payload, err)
		}
		out, err := c.DecodeStored(nil, h.Algo, stored)
		if err != nil || !bytes.Equal(out, value) {
			t.Fatalf("DecodeStored: %v", err)
		}
		// A damaged Ref of version 2 is found by the value log, which
		// checks the entry against it (vlog); version 1 records' checksum
		// finds it first.
		old := toV1(rec)
		old[len(old)-1] ^= 1
		if _, _, err := Verify(old); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Verify of a flipped version 1 reference: %v, want ErrCorrupt", err)
		}
	}
	if n := ExternalLen(c.AppendRecord(nil, 0, 0, value)); n != 0 {
		t.Fatalf("ExternalLen of a record that holds its value = %d", n)
	}
	if _, err := ParseRef(make([]byte, RefSize-1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ParseRef of 15 bytes: %v", err)
	}
	if _, err := c.DecodeStored(nil, 3, []byte("x")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeStored with algorithm 3: %v", err)
	}
}
