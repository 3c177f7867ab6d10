package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// randomBytes returns n incompressible bytes from a seeded source.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// textBytes returns n bytes of compressible text: words from a small
// vocabulary, the way JSON or rendered pages repeat themselves.
func textBytes(seed uint64, n int) []byte {
	words := strings.Fields(`the quick brown fox jumps over lazy dog cache value
		record header payload "id": "name": {"items": [1, 2, 3]} <div class="row"> </div>`)
	r := rand.New(rand.NewPCG(seed, 2))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func mustNew(t testing.TB, cfg Config) *Codec {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

// writeTime is a write time a record keeps exactly: a whole minute.
const writeTime = 1_600_000_020_000_000_000

// record builds a record by hand with the given flags (which may set the
// version tag's bits too) and stored payload.
func record(flags byte, payload []byte) []byte {
	rec := make([]byte, MinHeaderSize, MinHeaderSize+len(payload))
	rec[0] = v2Tag ^ flags
	return append(rec, payload...)
}

// v1HeaderLen is headerLen for version 1.
func v1HeaderLen(flags byte) int {
	if flags&flagExpiry != 0 {
		return v1MaxHeader
	}
	return v1MinHeader
}

// resealV1 recomputes a version 1 record's checksum in place, so a test can
// reach the checks that come after it.
func resealV1(rec []byte) []byte {
	hl := v1HeaderLen(rec[v1OffFlags])
	binary.LittleEndian.PutUint32(rec[hl-4:], checksumV1(payloadSum(rec, hl), rec, hl))
	return rec
}

// toV1 rewrites a version 2 record as the version 1 writer wrote it, with
// the write time in seconds: what stores of before version 2 hold.
func toV1(rec []byte) []byte {
	hl, h, err := decodeHeader(rec)
	if err != nil {
		panic(err)
	}
	flags := rec[0] &^ v2TagMask
	nl := v1HeaderLen(flags)
	out := make([]byte, nl, nl+len(rec)-hl)
	out[0], out[v1OffFlags] = v1, flags
	if h.Expiry != 0 {
		binary.LittleEndian.PutUint64(out[v1OffExpiry:], uint64(h.Expiry))
	}
	binary.LittleEndian.PutUint32(out[nl-8:], uint32(h.WriteTime/1e9))
	return resealV1(append(out, rec[hl:]...))
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, a1 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&a[len(a)-1]))
	b0, b1 := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[len(b)-1]))
	return a0 <= b1 && b0 <= a1
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 127, 511, 512, 4 << 10, 1 << 20}
	kinds := []struct {
		name       string
		gen        func(seed uint64, n int) []byte
		compresses bool
	}{
		{"random", randomBytes, false},
		{"text", textBytes, true},
	}
	compressions := []struct {
		c    Compression
		algo uint8 // what compressible values at or above MinSize get
	}{
		{CompressionDefault, AlgoS2},
		{CompressionNone, AlgoNone},
		{CompressionS2, AlgoS2},
		{CompressionZstd, AlgoZstd},
	}
	expiries := []int64{0, 1_700_000_000_123_456_789}

	for _, comp := range compressions {
		c := mustNew(t, Config{Compression: comp.c})
		for _, kind := range kinds {
			for _, size := range sizes {
				for _, expiry := range expiries {
					name := fmt.Sprintf("%v/%s/%d/expiry=%d", comp.c, kind.name, size, expiry)
					t.Run(name, func(t *testing.T) {
						value := kind.gen(uint64(size), size)
						rec := c.AppendRecord(nil, expiry, writeTime, value)

						wantAlgo := AlgoNone
						if kind.compresses && size >= DefaultMinSize {
							wantAlgo = comp.algo
						}
						want := Header{Version: Version, Algo: wantAlgo, Expiry: expiry, WriteTime: writeTime}

						h, err := DecodeHeader(rec)
						if err != nil || h != want {
							t.Fatalf("DecodeHeader = %+v, %v; want %+v", h, err, want)
						}
						if wantAlgo == AlgoNone && PayloadLen(rec) != size {
							t.Errorf("PayloadLen = %d, want %d for a raw record", PayloadLen(rec), size)
						}
						if wantAlgo != AlgoNone && PayloadLen(rec) > size-size/8 {
							t.Errorf("compressed payload %d bytes, want at most %d", PayloadLen(rec), size-size/8)
						}

						h, got, err := c.Decode(nil, rec)
						if err != nil || h != want {
							t.Fatalf("Decode header = %+v, %v; want %+v", h, err, want)
						}
						if !bytes.Equal(got, value) || got == nil {
							t.Fatalf("Decode value differs: got %d bytes (nil %v), want %d", len(got), got == nil, len(value))
						}
						if overlaps(got, rec) {
							t.Fatal("Decode value aliases the record")
						}

						// Appending to a non-empty dst keeps the prefix.
						prefix := []byte("prefix")
						_, got, err = c.Decode(prefix, rec)
						if err != nil || !bytes.Equal(got, append([]byte("prefix"), value...)) {
							t.Fatalf("Decode with prefix: %v", err)
						}
						recs := c.AppendRecord([]byte("head"), expiry, writeTime, value)
						if !bytes.Equal(recs[:4], []byte("head")) || !bytes.Equal(recs[4:], rec) {
							t.Fatal("AppendRecord to a non-empty dst differs from a fresh record")
						}
					})
				}
			}
		}
	}
}

// TestDecodeAnyAlgorithm checks that the algorithm comes from the record, not
// from the Codec that reads it.
func TestDecodeAnyAlgorithm(t *testing.T) {
	value := textBytes(7, 8<<10)
	comps := []Compression{CompressionNone, CompressionS2, CompressionZstd}
	for _, wc := range comps {
		rec := mustNew(t, Config{Compression: wc}).AppendRecord(nil, 5, 6, value)
		for _, rc := range comps {
			_, got, err := mustNew(t, Config{Compression: rc}).Decode(nil, rec)
			if err != nil || !bytes.Equal(got, value) {
				t.Errorf("written with %v, read with %v: %v", wc, rc, err)
			}
		}
	}
}

func TestMinSize(t *testing.T) {
	value := bytes.Repeat([]byte("abcd"), 16)
	tests := []struct {
		minSize int
		want    uint8
	}{
		{0, AlgoNone}, // default 512
		{1, AlgoS2},
		{64, AlgoS2},
		{65, AlgoNone},
	}
	for _, tt := range tests {
		rec := mustNew(t, Config{MinSize: tt.minSize}).AppendRecord(nil, 0, 0, value)
		if h, _ := DecodeHeader(rec); h.Algo != tt.want {
			t.Errorf("MinSize %d: algo %d, want %d", tt.minSize, h.Algo, tt.want)
		}
	}
}

func TestZeroCodec(t *testing.T) {
	var c Codec
	value := textBytes(1, 4<<10)
	rec := c.AppendRecord(nil, 0, 1, value)
	if h, _ := DecodeHeader(rec); h.Algo != AlgoS2 {
		t.Errorf("zero Codec stored algo %d, want S2", h.Algo)
	}
	if _, got, err := c.Decode(nil, rec); err != nil || !bytes.Equal(got, value) {
		t.Errorf("zero Codec Decode: %v", err)
	}
	if c.MaxValue() != DefaultMaxValue {
		t.Errorf("zero Codec MaxValue = %d", c.MaxValue())
	}
}

func TestExpired(t *testing.T) {
	tests := []struct {
		expiry, now int64
		want        bool
	}{
		{0, 1 << 62, false},
		{100, 99, false},
		{100, 100, true},
		{100, 101, true},
	}
	for _, tt := range tests {
		if got := (Header{Expiry: tt.expiry}).Expired(tt.now); got != tt.want {
			t.Errorf("Expiry %d at %d: Expired = %v, want %v", tt.expiry, tt.now, got, tt.want)
		}
	}
}

func TestCorrupt(t *testing.T) {
	c := mustNew(t, Config{})
	small := mustNew(t, Config{MaxValue: 1000})
	raw := c.AppendRecord(nil, 0, writeTime, []byte("hello, world"))
	expiring := c.AppendRecord(nil, 9, writeTime, []byte("hello, world"))

	zeros := make([]byte, 64<<10)
	s2Big := mustNew(t, Config{Compression: CompressionS2}).AppendRecord(nil, 0, 0, zeros)
	zstdBig := mustNew(t, Config{Compression: CompressionZstd}).AppendRecord(nil, 0, 0, zeros)

	var stream bytes.Buffer // a zstd frame without a content size
	zw, _ := zstd.NewWriter(&stream)
	zw.Write(zeros)
	zw.Close()

	s2Claim := binary.AppendUvarint(nil, 1<<32-1) // claims 4 GiB, holds nothing
	zstdClaim := mustNew(t, Config{Compression: CompressionZstd}).AppendRecord(nil, 0, 0, textBytes(1, 4<<10))[MinHeaderSize:]
	zstdTrail := append(bytes.Clone(zstdClaim), "trailing garbage"...)

	tests := []struct {
		name  string
		codec *Codec
		rec   []byte
		want  string // in the error message
	}{
		{"empty", c, nil, "empty"},
		{"header only minus one", c, raw[:MinHeaderSize-1], "too short"},
		{"expiry header cut", c, expiring[:MaxHeaderSize-1], "too short"},
		{"expiry flag with zero expiry", c, func() []byte {
			r := bytes.Clone(expiring)
			binary.LittleEndian.PutUint64(r[offExpiry:], 0)
			return r
		}(), "zero expiry"},
		{"version 0", c, func() []byte { r := bytes.Clone(raw); r[0] = 0; return r }(), "version"},
		{"version 2 without its tag", c, func() []byte { r := bytes.Clone(raw); r[0] = 2; return r }(), "version"},
		{"algo 3", c, record(3, []byte("x")), "flags"},
		{"version 1 cut", c, toV1(raw)[:v1MinHeader-1], "too short"},
		{"version 1 checksum", c, func() []byte { r := toV1(raw); r[len(r)-1] ^= 1; return r }(), "checksum"},
		{"version 1 zero expiry", c, func() []byte {
			r := toV1(expiring)
			binary.LittleEndian.PutUint64(r[v1OffExpiry:], 0)
			return resealV1(r)
		}(), "zero expiry"},
		{"version 1 algo 3", c, func() []byte { r := toV1(raw); r[v1OffFlags] = 3; return resealV1(r) }(), "flags"},
		{"s2 garbage", c, record(AlgoS2, []byte{0x10, 0xff, 0xff, 0xff, 0xff}), "s2"},
		{"s2 bad varint", c, record(AlgoS2, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), "s2"},
		{"s2 empty", c, record(AlgoS2, nil), "s2"},
		{"s2 claims 4 GiB", c, record(AlgoS2, s2Claim), "MaxValue"},
		{"s2 bomb", small, s2Big, "MaxValue"},
		{"zstd garbage", c, record(AlgoZstd, []byte("not a zstd frame at all")), "zstd"},
		{"zstd empty", c, record(AlgoZstd, nil), "zstd"},
		{"zstd truncated", c, record(AlgoZstd, zstdClaim[:len(zstdClaim)/2]), "zstd"},
		{"zstd trailing garbage", c, record(AlgoZstd, zstdTrail), "zstd"},
		{"zstd bomb", small, zstdBig, "MaxValue"},
		{"zstd bomb without content size", small, record(AlgoZstd, stream.Bytes()), "MaxValue"},
		{"raw too large", small, record(AlgoNone, zeros[:1001]), "MaxValue"},
	}
	tests = append(tests, struct {
		name  string
		codec *Codec
		rec   []byte
		want  string
	}{"reference of the wrong length", c, record(flagRef, []byte("x")), "reference record"})
	for bit := 4; bit < 8; bit++ { // bits 0-3 are the flags, 4-7 the version tag
		tests = append(tests, struct {
			name  string
			codec *Codec
			rec   []byte
			want  string
		}{fmt.Sprintf("tag bit %d", bit), c, record(1<<bit, []byte("x")), "version"},
			struct {
				name  string
				codec *Codec
				rec   []byte
				want  string
			}{fmt.Sprintf("version 1 flag bit %d", bit), c, func() []byte {
				r := toV1(raw)
				r[v1OffFlags] |= 1 << bit
				return resealV1(r)
			}(), "flags"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, v, err := tt.codec.Decode(nil, tt.rec)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode error = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error %q does not mention %q", err, tt.want)
			}
			if v != nil {
				t.Errorf("Decode returned a value with an error")
			}
		})
	}
}

// TestCorruptEveryByteV1 truncates version 1 records at every length and
// flips every bit of every byte of small records of each algorithm: their
// checksum makes all fail to decode. (A version 2 record leaves that to
// Pebble's checksums: TestCorruptHeaderV2.)
func TestCorruptEveryByteV1(t *testing.T) {
	c := mustNew(t, Config{MinSize: 1})
	recs := map[string][]byte{
		"raw":  toV1(c.AppendRecord(nil, 1, 2, randomBytes(1, 40))),
		"s2":   toV1(c.AppendRecord(nil, 1, 2, textBytes(1, 200))),
		"zstd": toV1(mustNew(t, Config{MinSize: 1, Compression: CompressionZstd}).AppendRecord(nil, 1, 2, textBytes(1, 200))),
	}
	for name, rec := range recs {
		t.Run(name, func(t *testing.T) {
			if _, _, err := c.Decode(nil, rec); err != nil {
				t.Fatalf("intact record: %v", err)
			}
			for n := range len(rec) {
				if _, _, err := c.Decode(nil, rec[:n]); !errors.Is(err, ErrCorrupt) {
					t.Errorf("truncated to %d: error %v", n, err)
				}
				if _, err := SetExpiry(rec[:n], 1); !errors.Is(err, ErrCorrupt) {
					t.Errorf("SetExpiry truncated to %d: error %v", n, err)
				}
			}
			for i := range rec {
				for bit := range 8 {
					r := bytes.Clone(rec)
					r[i] ^= 1 << bit
					if _, _, err := c.Decode(nil, r); !errors.Is(err, ErrCorrupt) {
						t.Errorf("byte %d bit %d flipped: error %v", i, bit, err)
					}
				}
			}
		})
	}
}

// TestCorruptHeaderV2: a version 2 record cut inside its header, or whose
// first byte is not a version 2 tag with known flags, fails to decode.
func TestCorruptHeaderV2(t *testing.T) {
	c := mustNew(t, Config{MinSize: 1})
	for _, rec := range [][]byte{
		c.AppendRecord(nil, 0, writeTime, randomBytes(1, 40)),
		c.AppendRecord(nil, 1, writeTime, textBytes(1, 200)),
		AppendRefRecord(nil, 1, writeTime, AlgoS2, Ref{Segment: 1, Offset: 2, Length: 3, Sum: 4}),
	} {
		hl, _, err := decodeHeader(rec)
		if err != nil {
			t.Fatal(err)
		}
		for n := range hl {
			if _, _, err := c.Decode(nil, rec[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("cut to %d of a %d-byte header: error %v", n, hl, err)
			}
		}
		for b := range 256 {
			r := bytes.Clone(rec)
			r[0] = byte(b)
			_, _, err := c.Decode(nil, r)
			known := b&v2TagMask == v2Tag && b&algoMask != 3
			if !known && b != v1 && !errors.Is(err, ErrCorrupt) {
				t.Errorf("first byte %#02x: error %v, want ErrCorrupt", b, err)
			}
		}
	}
}

// Reading old stores: a version 1 record decodes, with its write time to
// the second, and its header reads without the checksum.
func TestDecodeHeaderSkipsChecksum(t *testing.T) {
	rec := toV1(mustNew(t, Config{}).AppendRecord(nil, 42, writeTime, []byte("value")))
	if h, v, err := mustNew(t, Config{}).Decode(nil, rec); err != nil || h.Version != v1 || h.Expiry != 42 || h.WriteTime != writeTime || string(v) != "value" {
		t.Fatalf("Decode of a version 1 record = %+v, %q, %v", h, v, err)
	}
	rec[len(rec)-1] ^= 0xff
	h, err := DecodeHeader(rec)
	if err != nil || h.Expiry != 42 || h.WriteTime != writeTime {
		t.Fatalf("DecodeHeader = %+v, %v", h, err)
	}
	if _, _, err := mustNew(t, Config{}).Decode(nil, rec); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Decode error = %v, want checksum mismatch", err)
	}
}

func TestSetExpiry(t *testing.T) {
	values := map[string][]byte{
		"raw":   []byte("short value"),
		"empty": nil,
		"text":  textBytes(2, 16<<10),
	}
	for _, comp := range []Compression{CompressionNone, CompressionS2, CompressionZstd} {
		c := mustNew(t, Config{Compression: comp})
		for name, value := range values {
			t.Run(fmt.Sprintf("%v/%s", comp, name), func(t *testing.T) {
				v2 := c.AppendRecord(nil, 0, writeTime, value)
				for _, rec := range [][]byte{v2, toV1(v2)} {
					orig := bytes.Clone(rec)
					for _, expiry := range []int64{123, 0, -1} {
						out, err := SetExpiry(rec, expiry)
						if err != nil {
							t.Fatalf("SetExpiry(%d): %v", expiry, err)
						}
						if !bytes.Equal(rec, orig) {
							t.Fatal("SetExpiry changed its input")
						}
						ho, _, _ := Verify(out)
						hr, pr, _ := Verify(rec)
						if !bytes.Equal(out[len(out)-PayloadLen(out):], pr) || ho.Algo != hr.Algo {
							t.Fatal("SetExpiry changed the stored payload")
						}
						h, got, err := c.Decode(nil, out)
						if err != nil || h.Version != Version || h.Expiry != expiry || h.WriteTime != writeTime || !bytes.Equal(got, value) {
							t.Fatalf("Decode after SetExpiry(%d) = %+v, %v", expiry, h, err)
						}
					}
				}
			})
		}
	}
	bad := toV1(mustNew(t, Config{}).AppendRecord(nil, 0, 0, []byte("x")))
	bad[v1MinHeader] ^= 1
	if _, err := SetExpiry(bad, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("SetExpiry on a damaged record: %v, want ErrCorrupt", err)
	}
}

func TestCompressionNames(t *testing.T) {
	tests := []struct {
		in   string
		want Compression
		name string
	}{
		{"", CompressionDefault, "default"},
		{"default", CompressionDefault, "default"},
		{"none", CompressionNone, "none"},
		{"S2", CompressionS2, "s2"},
		{"zstd", CompressionZstd, "zstd"},
	}
	for _, tt := range tests {
		got, err := ParseCompression(tt.in)
		if err != nil || got != tt.want || got.String() != tt.name {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", tt.in, got, err, tt.name)
		}
	}
	if _, err := ParseCompression("lz4"); err == nil {
		t.Error("ParseCompression(lz4) succeeded")
	}
	if s := Compression(9).String(); s != "Compression(9)" {
		t.Errorf("String of an unknown value = %q", s)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{Compression: CompressionZstd + 1},
		{MinSize: -1},
		{MaxValue: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	c := mustNew(t, Config{})
	z := mustNew(t, Config{Compression: CompressionZstd})
	small := textBytes(1, 128)
	large := textBytes(1, 16<<10)
	buf := make([]byte, 0, 64<<10)
	smallRec := c.AppendRecord(nil, 1, 2, small)
	largeRec := c.AppendRecord(nil, 1, 2, large)
	zstdRec := z.AppendRecord(nil, 1, 2, large)
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"encode 128B nil dst", 1, func() { c.AppendRecord(nil, 1, 2, small) }},
		{"encode 128B reused dst", 0, func() { c.AppendRecord(buf[:0], 1, 2, small) }},
		{"encode 16KiB s2 reused dst", 0, func() { c.AppendRecord(buf[:0], 1, 2, large) }},
		{"encode 16KiB zstd reused dst", 0, func() { z.AppendRecord(buf[:0], 1, 2, large) }},
		{"decode 128B nil dst", 1, func() { c.Decode(nil, smallRec) }},
		{"decode 128B reused dst", 0, func() { c.Decode(buf[:0], smallRec) }},
		{"decode 16KiB s2 reused dst", 0, func() { c.Decode(buf[:0], largeRec) }},
		{"decode 16KiB zstd reused dst", 0, func() { z.Decode(buf[:0], zstdRec) }},
		{"decode 16KiB zstd nil dst", 1, func() { z.Decode(nil, zstdRec) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n > tt.max {
			t.Errorf("%s: %v allocations, want at most %v", tt.name, n, tt.max)
		}
	}
}

// TestConcurrent shares one Codec of each kind between goroutines; run with
// -race.
func TestConcurrent(t *testing.T) {
	for _, comp := range []Compression{CompressionS2, CompressionZstd} {
		c := mustNew(t, Config{Compression: comp})
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					value := textBytes(uint64(g*100+i), 600+i*37)
					rec := c.AppendRecord(nil, int64(i), int64(g), value)
					h, got, err := c.Decode(nil, rec)
					if err != nil || h.Expiry != int64(i) || !bytes.Equal(got, value) {
						t.Errorf("%v goroutine %d iteration %d: %v", comp, g, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// TestS2BlockFormat pins the payload to the S2 block format, which other
// tools can read.
func TestS2BlockFormat(t *testing.T) {
	value := textBytes(4, 4<<10)
	rec := mustNew(t, Config{}).AppendRecord(nil, 0, 0, value)
	got, err := s2.Decode(nil, rec[MinHeaderSize:])
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("s2.Decode of the payload: %v", err)
	}
}
