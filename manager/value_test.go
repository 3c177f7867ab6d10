package manager

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/codec"
)

type user struct {
	Name   string
	Age    int
	Emb    []float32 `cbor:"emb"`
	Joined time.Time
	Next   *user
}

type celsius float64

// roundTrip encodes v and decodes it as a T.
func roundTrip[T any](t *testing.T, v T, cd *codec.Codec) T {
	t.Helper()
	enc, err := appendValue(nil, v, nil, cd, 16)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	e, err := parseEnvelope(enc)
	if err != nil {
		t.Fatalf("parse %T: %v", v, err)
	}
	got, err := decodeValue[T](e, mustCodec(t))
	if err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return got
}

func mustCodec(t testing.TB) *codec.Codec {
	cd, err := codec.New(codec.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return cd
}

func TestRoundTrip(t *testing.T) {
	joined := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("x", -7*3600))
	// A zone's name does not survive, only its offset: the struct holds UTC
	// so that DeepEqual applies, and the zoned time is checked with Equal.
	u := user{Name: "ada", Age: 36, Emb: []float32{1, 2}, Joined: joined.UTC(), Next: &user{Name: "bob"}}
	for _, cd := range []*codec.Codec{nil, mustCodec(t)} {
		check := func(name string, got, want any) {
			t.Helper()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s (compress %v): got %#v, want %#v", name, cd != nil, got, want)
			}
		}
		check("bytes", roundTrip(t, []byte("raw\x00"), cd), []byte("raw\x00"))
		check("empty bytes", roundTrip(t, []byte{}, cd), []byte{})
		check("string", roundTrip(t, "héllo", cd), "héllo")
		check("long string", roundTrip(t, strings.Repeat("abc", 1000), cd), strings.Repeat("abc", 1000))
		check("bool", roundTrip(t, true, cd), true)
		check("int min", roundTrip(t, math.MinInt64, cd), math.MinInt64)
		check("int8", roundTrip(t, int8(-128), cd), int8(-128))
		check("uint64 max", roundTrip(t, uint64(math.MaxUint64), cd), uint64(math.MaxUint64))
		check("float32", roundTrip(t, float32(1.5), cd), float32(1.5))
		check("float64", roundTrip(t, math.Pi, cd), math.Pi)
		check("inf", roundTrip(t, math.Inf(-1), cd), math.Inf(-1))
		check("negative zero sign", math.Signbit(roundTrip(t, math.Copysign(0, -1), cd)), true)
		check("[]float32", roundTrip(t, []float32{0.1, -2, float32(math.Inf(1))}, cd), []float32{0.1, -2, float32(math.Inf(1))})
		check("[]float64", roundTrip(t, []float64{1e300, 0}, cd), []float64{1e300, 0})
		check("long []float32", roundTrip(t, make([]float32, 1536), cd), make([]float32, 1536))
		check("struct", roundTrip(t, u, cd), u)
		check("pointer", roundTrip(t, &u, cd), &u)
		check("nil pointer", roundTrip(t, (*user)(nil), cd), (*user)(nil))
		check("named float", roundTrip(t, celsius(21.5), cd), celsius(21.5))
		check("[]string", roundTrip(t, []string{"a", ""}, cd), []string{"a", ""})
		check("map", roundTrip(t, map[string]int{"a": 1}, cd), map[string]int{"a": 1})
		check("time", roundTrip(t, joined, cd).Equal(joined), true)
		if got := math.Float64bits(roundTrip(t, math.NaN(), cd)); !math.IsNaN(math.Float64frombits(got)) {
			t.Errorf("NaN came back as %v", math.Float64frombits(got))
		}
	}
}

// Integers read back as any integer type that holds them exactly.
func TestIntegerConversions(t *testing.T) {
	cd := mustCodec(t)
	decode := func(v any, as func(envelope) (any, error)) (any, error) {
		enc, err := appendValue(nil, v, nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseEnvelope(enc)
		if err != nil {
			t.Fatal(err)
		}
		return as(e)
	}
	asInt8 := func(e envelope) (any, error) { return decodeValue[int8](e, cd) }
	asUint16 := func(e envelope) (any, error) { return decodeValue[uint16](e, cd) }
	asInt64 := func(e envelope) (any, error) { return decodeValue[int64](e, cd) }
	asFloat32 := func(e envelope) (any, error) { return decodeValue[float32](e, cd) }
	asFloat64 := func(e envelope) (any, error) { return decodeValue[float64](e, cd) }
	for _, tc := range []struct {
		name string
		v    any
		as   func(envelope) (any, error)
		want any // nil: ErrWrongType
	}{
		{"int as int8", 100, asInt8, int8(100)},
		{"int too big for int8", 300, asInt8, nil},
		{"negative int as uint16", -1, asUint16, nil},
		{"int as uint16", 65535, asUint16, uint16(65535)},
		{"uint as int64", uint(7), asInt64, int64(7)},
		{"huge uint as int64", uint64(math.MaxUint64), asInt64, nil},
		{"float32 as float64", float32(0.5), asFloat64, float64(0.5)},
		{"exact float64 as float32", 0.5, asFloat32, float32(0.5)},
		{"inexact float64 as float32", 0.1, asFloat32, nil},
		{"int as float64", 1, asFloat64, nil},
		{"float as int64", 1.0, asInt64, nil},
	} {
		got, err := decode(tc.v, tc.as)
		if tc.want == nil {
			if !errors.Is(err, ErrWrongType) {
				t.Errorf("%s: got %v, %v; want ErrWrongType", tc.name, got, err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("%s: got %#v, %v; want %#v", tc.name, got, err, tc.want)
		}
	}
}

func TestWrongType(t *testing.T) {
	cd := mustCodec(t)
	type order struct{ Name string }
	stored := map[string]any{
		"bytes":  []byte("b"),
		"string": "s",
		"int":    1,
		"user":   user{Name: "u"},
		"floats": []float32{1},
	}
	reads := map[string]func(envelope) error{
		"bytes":   func(e envelope) error { _, err := decodeValue[[]byte](e, cd); return err },
		"string":  func(e envelope) error { _, err := decodeValue[string](e, cd); return err },
		"int":     func(e envelope) error { _, err := decodeValue[int](e, cd); return err },
		"user":    func(e envelope) error { _, err := decodeValue[user](e, cd); return err },
		"order":   func(e envelope) error { _, err := decodeValue[order](e, cd); return err },
		"floats":  func(e envelope) error { _, err := decodeValue[[]float32](e, cd); return err },
		"float64": func(e envelope) error { _, err := decodeValue[[]float64](e, cd); return err },
	}
	for sn, v := range stored {
		var enc []byte
		var err error
		switch x := v.(type) {
		case user:
			enc, err = appendValue(nil, x, nil, nil, 0) // stored as user, not any
		default:
			enc, err = appendValue(nil, v, nil, nil, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseEnvelope(enc)
		if err != nil {
			t.Fatal(err)
		}
		for rn, read := range reads {
			err := read(e)
			if ok := rn == sn; ok != (err == nil) || (!ok && !errors.Is(err, ErrWrongType)) {
				t.Errorf("stored %s, read as %s: %v", sn, rn, err)
			}
		}
	}
}

// Values written through an interface type keep their dynamic type.
func TestInterfaceValues(t *testing.T) {
	cd := mustCodec(t)
	var v any = user{Name: "u"}
	enc, err := appendValue(nil, v, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := parseEnvelope(enc)
	if u, err := decodeValue[user](e, cd); err != nil || u.Name != "u" {
		t.Errorf("Set[any](user), Get[user] = %+v, %v", u, err)
	}
	if m, err := decodeValue[any](e, cd); err != nil || m.(map[string]any)["Name"] != "u" {
		t.Errorf("Get[any] of a struct = %#v, %v", m, err)
	}
	for _, tc := range []struct {
		v    any
		want any
	}{{"s", "s"}, {int16(-3), int64(-3)}, {[]float32{1}, []float32{1}}, {nil, nil}} {
		enc, err := appendValue(nil, tc.v, nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := parseEnvelope(enc)
		if got, err := decodeValue[any](e, cd); err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Get[any] of %#v = %#v, %v; want %#v", tc.v, got, err, tc.want)
		}
	}
	e, _ = parseEnvelope(mustEncode(t, "s"))
	if _, err := decodeValue[error](e, cd); !errors.Is(err, ErrWrongType) {
		t.Errorf("Get[error] of a string: %v", err)
	}
}

func mustEncode[T any](t *testing.T, v T) []byte {
	t.Helper()
	enc, err := appendValue(nil, v, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func TestCompression(t *testing.T) {
	cd := mustCodec(t)
	for _, tc := range []struct {
		name       string
		value      []byte
		compressed bool
	}{
		{"compressible", bytes.Repeat([]byte("cache me "), 200), true},
		{"short", []byte("cache me"), false},
		{"incompressible", func() []byte {
			b := make([]byte, 4096)
			x := uint32(1)
			for i := range b {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				b[i] = byte(x)
			}
			return b
		}(), false},
	} {
		enc, err := appendValue(nil, tc.value, nil, cd, 64)
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseEnvelope(enc)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.flags&flagStored != 0; got != tc.compressed {
			t.Errorf("%s: compressed %v, want %v (%d bytes for %d)", tc.name, got, tc.compressed, len(enc), len(tc.value))
		}
		if tc.compressed && len(enc) >= len(tc.value) {
			t.Errorf("%s: %d bytes stored for %d", tc.name, len(enc), len(tc.value))
		}
		if got, err := decodeValue[[]byte](e, cd); err != nil || !bytes.Equal(got, tc.value) {
			t.Errorf("%s: decoded %d bytes, %v", tc.name, len(got), err)
		}
	}
}

// TestReadsEngineRecordValues: values compressed before flagStored carry
// an engine record (flagCompressed); they still decode.
func TestReadsEngineRecordValues(t *testing.T) {
	cd := mustCodec(t)
	value := bytes.Repeat([]byte("cache me "), 200)
	rec := cd.AppendRecord(nil, 0, 0, value)
	old := append([]byte{typeBytes, flagCompressed}, rec...)
	e, err := parseEnvelope(old)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeValue[[]byte](e, cd); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("old compressed value decoded to %d bytes, %v", len(got), err)
	}
	enc, err := appendValue(nil, value, nil, cd, 64)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc, rec[:8]) || enc[1]&flagCompressed != 0 {
		t.Fatal("a new value still carries an engine record")
	}
}

func TestStamps(t *testing.T) {
	stamps := []stamp{{tag: "a", version: [16]byte{1}}, {tag: "", version: [16]byte{2}}, {tag: strings.Repeat("t", 300)}}
	enc, err := appendValue(nil, user{Name: "x"}, stamps, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := parseEnvelope(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.stamps, stamps) {
		t.Errorf("stamps = %v, want %v", e.stamps, stamps)
	}
	if u, err := decodeValue[user](e, mustCodec(t)); err != nil || u.Name != "x" {
		t.Errorf("decode after stamps = %+v, %v", u, err)
	}
}

func TestCorrupt(t *testing.T) {
	cd := mustCodec(t)
	good := mustEncode(t, user{Name: "x"})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{typeBytes}},
		{"unknown type", []byte{0x7f, 0}},
		{"unknown flag", []byte{typeBytes, 0x80}},
		{"no stamps after the flag", []byte{typeBytes, flagStamped}},
		{"stamp count past the end", []byte{typeBytes, flagStamped, 200, 1}},
		{"stamp length past the end", append([]byte{typeBytes, flagStamped, 1, 100}, make([]byte, 20)...)},
		{"short fingerprint", []byte{typeCBOR, 0, 1, 2}},
		{"bad CBOR", append(good[:len(good)-3:len(good)-3], 0xff)},
		{"bad varint", []byte{typeInt, 0, 0x80}},
		{"bool 2", []byte{typeBool, 0, 2}},
		{"float of 3 bytes", []byte{typeFloat64, 0, 1, 2, 3}},
		{"packed floats of 5 bytes", []byte{typeFloat32s, 0, 1, 2, 3, 4, 5}},
		{"compressed garbage", []byte{typeBytes, flagCompressed, 1, 2, 3}},
		{"stored garbage", []byte{typeBytes, flagStored, 1, 2, 3}},
		{"stored, unknown algorithm", []byte{typeBytes, flagStored, 9, 2, 3}},
		{"stored, no algorithm", []byte{typeBytes, flagStored}},
	} {
		e, err := parseEnvelope(tc.b)
		if err == nil {
			_, err = decodeValue[user](e, cd)
			if err == nil || errors.Is(err, ErrWrongType) {
				_, err = decodeValue[any](e, cd)
			}
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
		}
	}
}

// FuzzDecode checks that no stored bytes make decoding panic or hang. The
// seeds run in every go test; go test -fuzz explores further.
func FuzzDecode(f *testing.F) {
	for _, v := range []any{[]byte("x"), "s", 1, uint(2), 1.5, float32(2), true, []float32{1}, []float64{2}, user{Name: "u", Emb: []float32{1}}} {
		enc, err := appendValue(nil, v, []stamp{{tag: "t"}}, nil, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	cd := mustCodec(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEnvelope(b)
		if err != nil {
			return
		}
		decodeValue[any](e, cd)
		decodeValue[user](e, cd)
		decodeValue[[]byte](e, cd)
		decodeValue[int8](e, cd)
		decodeValue[[]float32](e, cd)
	})
}
