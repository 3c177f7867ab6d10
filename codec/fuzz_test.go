package codec

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzMaxValue keeps what a fuzzed record may decode to small enough for the
// fuzzer to run many inputs a second.
const fuzzMaxValue = 1 << 20

// compressionFor returns the Compression whose records use algo.
func compressionFor(algo uint8) Compression {
	switch algo {
	case AlgoS2:
		return CompressionS2
	case AlgoZstd:
		return CompressionZstd
	}
	return CompressionNone
}

// FuzzDecode feeds arbitrary records to DecodeHeader, Decode and SetExpiry.
// None may panic; every failure must wrap ErrCorrupt; and a record that
// decodes must survive re-encoding. An input that looks like a version 1
// record is also tried with its checksum recomputed, so the fuzzer reaches
// the decompressors behind it.
func FuzzDecode(f *testing.F) {
	for _, comp := range []Compression{CompressionNone, CompressionS2, CompressionZstd} {
		c := mustNew(f, Config{Compression: comp, MinSize: 1})
		for _, value := range [][]byte{nil, []byte("v"), textBytes(1, 100), textBytes(2, 3000), randomBytes(3, 700)} {
			rec := c.AppendRecord(nil, 1_700_000_000_000_000_000, writeTime, value)
			f.Add(rec)
			f.Add(toV1(rec))
			f.Add(rec[:len(rec)-1])
			broken := bytes.Clone(rec)
			broken[len(broken)/2] ^= 0x40
			f.Add(broken)
		}
	}
	for _, expiry := range []int64{0, 1_700_000_000_000_000_000} {
		rec := AppendRefRecord(nil, expiry, writeTime, AlgoS2, Ref{Segment: 3, Offset: 12, Length: 4120, Sum: 7})
		f.Add(rec)
		f.Add(toV1(rec))
		f.Add(rec[:len(rec)-1])
	}
	f.Add([]byte{})
	f.Add(record(3, []byte("x")))
	f.Add(record(AlgoS2, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}))

	codecs := map[Compression]*Codec{}
	for _, comp := range []Compression{CompressionNone, CompressionS2, CompressionZstd} {
		codecs[comp] = mustNew(f, Config{Compression: comp, MaxValue: fuzzMaxValue})
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		checkDecode(t, codecs, rec)
		if len(rec) >= v1MinHeader && rec[0] == v1 && len(rec) >= v1HeaderLen(rec[v1OffFlags]) {
			checkDecode(t, codecs, resealV1(bytes.Clone(rec)))
		}
	})
}

func checkDecode(t *testing.T, codecs map[Compression]*Codec, rec []byte) {
	orig := bytes.Clone(rec)
	hh, herr := DecodeHeader(rec)
	h, value, err := codecs[CompressionS2].Decode(nil, rec)
	if !bytes.Equal(rec, orig) {
		t.Fatal("decoding changed the record")
	}
	if errors.Is(err, ErrRef) {
		checkRef(t, rec, hh, herr)
		return
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode error %v does not wrap ErrCorrupt", err)
		}
		if herr != nil && !errors.Is(herr, ErrCorrupt) {
			t.Fatalf("DecodeHeader error %v does not wrap ErrCorrupt", herr)
		}
		if _, serr := SetExpiry(rec, 1); serr != nil && !errors.Is(serr, ErrCorrupt) {
			t.Fatalf("SetExpiry error %v does not wrap ErrCorrupt", serr)
		}
		return
	}
	if herr != nil || hh != h {
		t.Fatalf("DecodeHeader = %+v, %v; Decode = %+v", hh, herr, h)
	}
	if len(value) > fuzzMaxValue {
		t.Fatalf("decoded %d bytes, more than MaxValue", len(value))
	}

	c := codecs[compressionFor(h.Algo)]
	again := c.AppendRecord(nil, h.Expiry, h.WriteTime, value)
	h2, value2, err := c.Decode(nil, again)
	if err != nil || h2.Expiry != h.Expiry || !sameMinute(h2, h) || !bytes.Equal(value2, value) {
		t.Fatalf("re-encoded record decodes to %+v, %d bytes, %v; want %+v, %d bytes", h2, len(value2), err, h, len(value))
	}

	moved, err := SetExpiry(rec, h.Expiry+1)
	if err != nil {
		t.Fatalf("SetExpiry on a record that decodes: %v", err)
	}
	h3, value3, err := c.Decode(nil, moved)
	if err != nil || h3.Expiry != h.Expiry+1 || !bytes.Equal(value3, value) {
		t.Fatalf("after SetExpiry: %+v, %v", h3, err)
	}
}

// sameMinute reports whether a record written again (in version 2) from
// h keeps h's write time as version 2 does: to the minute.
func sameMinute(again, h Header) bool {
	return writeMinutes(again.WriteTime) == writeMinutes(h.WriteTime)
}

// checkRef checks a sound reference record: its Ref parses, and it keeps
// its Ref and algorithm through a re-encoding and SetExpiry.
func checkRef(t *testing.T, rec []byte, hh Header, herr error) {
	h, payload, err := Verify(rec)
	if err != nil || herr != nil || hh != h || !h.Ref {
		t.Fatalf("Decode said ErrRef but Verify = %+v, %v; DecodeHeader = %+v, %v", h, err, hh, herr)
	}
	ref, err := ParseRef(payload)
	if err != nil {
		t.Fatalf("ParseRef of a sound reference record: %v", err)
	}
	if ExternalLen(rec) != int(ref.Length) {
		t.Fatalf("ExternalLen = %d, Ref.Length %d", ExternalLen(rec), ref.Length)
	}
	again := AppendRefRecord(nil, h.Expiry, h.WriteTime, h.Algo, ref)
	if h2, p2, err := Verify(again); err != nil || h2.Expiry != h.Expiry || h2.Algo != h.Algo || !h2.Ref || !sameMinute(h2, h) || !bytes.Equal(p2, payload) {
		t.Fatalf("re-encoded reference record: %+v, %v; want %+v", h2, err, h)
	}
	moved, err := SetExpiry(rec, h.Expiry+1)
	if err != nil {
		t.Fatalf("SetExpiry on a sound reference record: %v", err)
	}
	if h3, p3, err := Verify(moved); err != nil || !h3.Ref || h3.Expiry != h.Expiry+1 || !bytes.Equal(p3, payload) {
		t.Fatalf("after SetExpiry: %+v, %v", h3, err)
	}
}

// FuzzRoundTrip checks that every value and expiry survives AppendRecord and
// Decode under each compression setting, compressing even tiny values.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte(nil), int64(0))
	f.Add([]byte("hello"), int64(1))
	f.Add(textBytes(1, 600), int64(-1))
	f.Add(randomBytes(1, 600), int64(1<<62))
	f.Add(bytes.Repeat([]byte{0}, 5000), int64(1_700_000_000_000_000_000))

	var codecs []*Codec
	for _, comp := range []Compression{CompressionNone, CompressionS2, CompressionZstd} {
		codecs = append(codecs,
			mustNew(f, Config{Compression: comp}),
			mustNew(f, Config{Compression: comp, MinSize: 1}))
	}
	f.Fuzz(func(t *testing.T, value []byte, expiry int64) {
		for _, c := range codecs {
			rec := c.AppendRecord(nil, expiry, writeTime, value)
			if PayloadLen(rec) > len(value) {
				t.Fatalf("%v: stored %d bytes for a %d-byte value", c.compression, PayloadLen(rec), len(value))
			}
			h, got, err := c.Decode(nil, rec)
			if err != nil || h.Expiry != expiry || h.WriteTime != writeTime || !bytes.Equal(got, value) {
				t.Fatalf("%v: Decode = %+v, %d bytes, %v", c.compression, h, len(got), err)
			}
			if hh, err := DecodeHeader(rec); err != nil || hh != h {
				t.Fatalf("%v: DecodeHeader = %+v, %v", c.compression, hh, err)
			}
		}
	})
}
