package manager

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"

	"github.com/fxamacker/cbor/v2"

	"github.com/diskcache-go/diskcache/codec"
)

// The manager stores each value in an envelope that says what the payload
// holds, so that reading it as another type fails clearly instead of
// returning garbage:
//
//	offset  size  field
//	0       1     type: typeBytes ... typeCBOR
//	1       1     flags: flagStored, flagStamped, flagCompressed; other
//	              bits must be 0
//	2       ...   stamps, when flagStamped: uvarint n, then n times
//	              (uvarint length, tag, 16-byte tag version)
//	...     4     for typeCBOR: FNV-1a of the Go type's name, little-endian
//	...     ...   payload; when flagStored, its compressed form: one byte
//	              of codec algorithm, then codec's stored form of the payload
//	              (Codec.AppendStored); when flagCompressed (written before
//	              flagStored, still read), an engine record of it
//
// []byte and strings are stored as they are and numbers in binary, so they
// cost two bytes over their size and no encoding work. Other values go
// through CBOR (RFC 8949), which decodes only into the type the caller
// names: unlike pickle or gob of interfaces, data never picks a type to
// build or code to run.
const (
	typeBytes    byte = 0x01
	typeString   byte = 0x02
	typeBool     byte = 0x03
	typeInt      byte = 0x04 // zigzag varint
	typeUint     byte = 0x05 // uvarint
	typeFloat32  byte = 0x06 // IEEE 754 bits, little-endian
	typeFloat64  byte = 0x07
	typeFloat32s byte = 0x08 // packed, little-endian: embeddings
	typeFloat64s byte = 0x09
	typeCBOR     byte = 0x10

	flagCompressed byte = 0x01 // read only: older values
	flagStamped    byte = 0x02
	flagStored     byte = 0x04
	knownFlags          = flagCompressed | flagStamped | flagStored

	envelopeHeader = 2
	fingerprintLen = 4
	versionLen     = 16 // bytes of a tag version
)

// stamp records the version a tag had when an entry was written.
type stamp struct {
	tag     string
	version [versionLen]byte
}

// envelope is a parsed stored value. payload aliases the stored bytes.
type envelope struct {
	typ     byte
	flags   byte
	stamps  []stamp
	fp      uint32
	payload []byte
}

// parseEnvelope checks b's header and splits it; it never panics on
// garbage, and bounds every count by the bytes that are there.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) < envelopeHeader {
		return envelope{}, fmt.Errorf("%w: %d bytes, shorter than the header", ErrCorrupt, len(b))
	}
	e := envelope{typ: b[0], flags: b[1]}
	if typeName(e.typ) == "" {
		return envelope{}, fmt.Errorf("%w: unknown type %#02x", ErrCorrupt, e.typ)
	}
	if e.flags&^knownFlags != 0 {
		return envelope{}, fmt.Errorf("%w: unknown flags %#02x", ErrCorrupt, e.flags)
	}
	rest := b[envelopeHeader:]
	if e.flags&flagStamped != 0 {
		n, k := binary.Uvarint(rest)
		// Each stamp takes at least 1+versionLen bytes.
		if k <= 0 || n == 0 || n > uint64(len(rest)/(1+versionLen)) {
			return envelope{}, fmt.Errorf("%w: bad stamp count", ErrCorrupt)
		}
		rest = rest[k:]
		e.stamps = make([]stamp, n)
		for i := range e.stamps {
			l, k := binary.Uvarint(rest)
			if k <= 0 || l > uint64(len(rest)-k) || uint64(len(rest)-k)-l < versionLen {
				return envelope{}, fmt.Errorf("%w: bad stamp", ErrCorrupt)
			}
			rest = rest[k:]
			e.stamps[i].tag = string(rest[:l])
			copy(e.stamps[i].version[:], rest[l:l+versionLen])
			rest = rest[l+versionLen:]
		}
	}
	if e.typ == typeCBOR {
		if len(rest) < fingerprintLen {
			return envelope{}, fmt.Errorf("%w: no type fingerprint", ErrCorrupt)
		}
		e.fp = binary.LittleEndian.Uint32(rest)
		rest = rest[fingerprintLen:]
	}
	e.payload = rest
	return e, nil
}

// appendValue appends the envelope of v to dst. Compression, when cd is not
// nil, applies to payloads of at least minSize bytes and is kept only when
// the codec found it worth it.
func appendValue[T any](dst []byte, v T, stamps []stamp, cd *codec.Codec, minSize int) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0)
	if len(stamps) > 0 {
		dst[start+1] |= flagStamped
		dst = binary.AppendUvarint(dst, uint64(len(stamps)))
		for _, s := range stamps {
			dst = binary.AppendUvarint(dst, uint64(len(s.tag)))
			dst = append(dst, s.tag...)
			dst = append(dst, s.version[:]...)
		}
	}
	var typ byte
	off := len(dst)
	switch x := any(v).(type) {
	case []byte:
		typ, dst = typeBytes, append(dst, x...)
	case string:
		typ, dst = typeString, append(dst, x...)
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		typ, dst = typeBool, append(dst, b)
	case int:
		typ, dst = typeInt, binary.AppendVarint(dst, int64(x))
	case int8:
		typ, dst = typeInt, binary.AppendVarint(dst, int64(x))
	case int16:
		typ, dst = typeInt, binary.AppendVarint(dst, int64(x))
	case int32:
		typ, dst = typeInt, binary.AppendVarint(dst, int64(x))
	case int64:
		typ, dst = typeInt, binary.AppendVarint(dst, x)
	case uint:
		typ, dst = typeUint, binary.AppendUvarint(dst, uint64(x))
	case uint8:
		typ, dst = typeUint, binary.AppendUvarint(dst, uint64(x))
	case uint16:
		typ, dst = typeUint, binary.AppendUvarint(dst, uint64(x))
	case uint32:
		typ, dst = typeUint, binary.AppendUvarint(dst, uint64(x))
	case uint64:
		typ, dst = typeUint, binary.AppendUvarint(dst, x)
	case float32:
		typ, dst = typeFloat32, binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	case float64:
		typ, dst = typeFloat64, binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	case []float32:
		typ = typeFloat32s
		for _, f := range x {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
		}
	case []float64:
		typ = typeFloat64s
		for _, f := range x {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
	default:
		typ = typeCBOR
		dst = binary.LittleEndian.AppendUint32(dst, fingerprint(typeOfValue(v)))
		off = len(dst)
		enc, err := valueEncoding.Marshal(v)
		if err != nil {
			return dst[:start], fmt.Errorf("manager: encode %T: %w", v, err)
		}
		dst = append(dst, enc...)
	}
	dst[start] = typ
	// Compressed values carry codec's value encoding, not the engine's
	// record: a value kept in Redis owes nothing to the disk format.
	if cd != nil && len(dst)-off >= minSize {
		stored, algo := cd.AppendStored([]byte{0}, dst[off:])
		if algo != codec.AlgoNone {
			stored[0] = algo
			dst = append(dst[:off], stored...)
			dst[start+1] |= flagStored
		}
	}
	return dst, nil
}

// decodeValue decodes e's payload as a T. A []byte result aliases the
// payload unless it was compressed.
func decodeValue[T any](e envelope, cd *codec.Codec) (T, error) {
	var out T
	p := e.payload
	switch {
	case e.flags&flagStored != 0:
		if len(p) == 0 {
			return out, fmt.Errorf("%w: no compression byte", ErrCorrupt)
		}
		v, err := cd.DecodeStored(nil, p[0], p[1:])
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		p = v
	case e.flags&flagCompressed != 0:
		_, v, err := cd.Decode(nil, p)
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		p = v
	}
	var err error
	switch o := any(&out).(type) {
	case *[]byte:
		if err = want(e.typ, typeBytes); err == nil {
			*o = p
		}
	case *string:
		if err = want(e.typ, typeString); err == nil {
			*o = string(p)
		}
	case *bool:
		if err = want(e.typ, typeBool); err == nil {
			if len(p) != 1 || p[0] > 1 {
				err = fmt.Errorf("%w: bad bool", ErrCorrupt)
			}
			*o = len(p) == 1 && p[0] == 1
		}
	case *int:
		*o, err = decodeInt[int](e.typ, p)
	case *int8:
		*o, err = decodeInt[int8](e.typ, p)
	case *int16:
		*o, err = decodeInt[int16](e.typ, p)
	case *int32:
		*o, err = decodeInt[int32](e.typ, p)
	case *int64:
		*o, err = decodeInt[int64](e.typ, p)
	case *uint:
		*o, err = decodeInt[uint](e.typ, p)
	case *uint8:
		*o, err = decodeInt[uint8](e.typ, p)
	case *uint16:
		*o, err = decodeInt[uint16](e.typ, p)
	case *uint32:
		*o, err = decodeInt[uint32](e.typ, p)
	case *uint64:
		*o, err = decodeInt[uint64](e.typ, p)
	case *float32:
		var f float64
		if f, err = decodeFloat(e.typ, p); err == nil {
			*o = float32(f)
			if float64(*o) != f && !math.IsNaN(f) {
				err = fmt.Errorf("%w: %v does not fit float32", ErrWrongType, f)
			}
		}
	case *float64:
		*o, err = decodeFloat(e.typ, p)
	case *[]float32:
		if err = want(e.typ, typeFloat32s); err == nil {
			*o, err = decodeFloats(p, 4, func(b []byte) float32 {
				return math.Float32frombits(binary.LittleEndian.Uint32(b))
			})
		}
	case *[]float64:
		if err = want(e.typ, typeFloat64s); err == nil {
			*o, err = decodeFloats(p, 8, func(b []byte) float64 {
				return math.Float64frombits(binary.LittleEndian.Uint64(b))
			})
		}
	default:
		// A variable of its own: passing &out to the CBOR decoder would
		// move out to the heap on every path, the []byte one included.
		var v T
		err = decodeOther(e, p, &v)
		out = v
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// decodeOther decodes into a type with no fixed encoding: a CBOR value of
// the same Go type, or, for an interface type, whatever the payload holds.
func decodeOther[T any](e envelope, p []byte, out *T) error {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		v, err := decodeNatural(e, p)
		if err != nil {
			return err
		}
		if v == nil {
			return nil
		}
		tv, ok := v.(T)
		if !ok {
			return fmt.Errorf("%w: stored %T, read as %v", ErrWrongType, v, t)
		}
		*out = tv
		return nil
	}
	if e.typ != typeCBOR {
		return fmt.Errorf("%w: stored %s, read as %v", ErrWrongType, typeName(e.typ), t)
	}
	if e.fp != 0 && e.fp != fingerprint(t) {
		return fmt.Errorf("%w: stored a structured value of another Go type, read as %v", ErrWrongType, t)
	}
	if err := valueDecoding.Unmarshal(p, out); err != nil {
		return fmt.Errorf("%w: decode %v: %w", ErrCorrupt, t, err)
	}
	return nil
}

// decodeNatural returns the payload as the Go type it was written from
// (int64 and uint64 for integers; generic maps and slices for CBOR).
func decodeNatural(e envelope, p []byte) (any, error) {
	switch e.typ {
	case typeBytes:
		return p, nil
	case typeString:
		return string(p), nil
	case typeBool:
		return decodeValue[bool](envelope{typ: e.typ, payload: p}, nil)
	case typeInt:
		return decodeInt[int64](e.typ, p)
	case typeUint:
		return decodeInt[uint64](e.typ, p)
	case typeFloat32:
		f, err := decodeFloat(e.typ, p)
		return float32(f), err
	case typeFloat64:
		return decodeFloat(e.typ, p)
	case typeFloat32s:
		return decodeValue[[]float32](envelope{typ: e.typ, payload: p}, nil)
	case typeFloat64s:
		return decodeValue[[]float64](envelope{typ: e.typ, payload: p}, nil)
	}
	var v any
	if err := valueDecoding.Unmarshal(p, &v); err != nil {
		return nil, fmt.Errorf("%w: decode CBOR: %w", ErrCorrupt, err)
	}
	return v, nil
}

type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// decodeInt reads an integer stored as typeInt or typeUint into N, which
// must hold it exactly: integers convert between sizes and signedness, but
// never lose bits.
func decodeInt[N integer](typ byte, p []byte) (N, error) {
	switch typ {
	case typeInt:
		x, k := binary.Varint(p)
		if k <= 0 || k != len(p) {
			return 0, fmt.Errorf("%w: bad varint", ErrCorrupt)
		}
		n := N(x)
		if int64(n) != x || (x < 0) != (n < 0) {
			return 0, fmt.Errorf("%w: %d does not fit %T", ErrWrongType, x, n)
		}
		return n, nil
	case typeUint:
		x, k := binary.Uvarint(p)
		if k <= 0 || k != len(p) {
			return 0, fmt.Errorf("%w: bad uvarint", ErrCorrupt)
		}
		n := N(x)
		if uint64(n) != x || n < 0 {
			return 0, fmt.Errorf("%w: %d does not fit %T", ErrWrongType, x, n)
		}
		return n, nil
	}
	var n N
	return 0, fmt.Errorf("%w: stored %s, read as %T", ErrWrongType, typeName(typ), n)
}

// decodeFloat reads a float stored as typeFloat32 or typeFloat64.
func decodeFloat(typ byte, p []byte) (float64, error) {
	switch {
	case typ == typeFloat32 && len(p) == 4:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(p))), nil
	case typ == typeFloat64 && len(p) == 8:
		return math.Float64frombits(binary.LittleEndian.Uint64(p)), nil
	case typ == typeFloat32 || typ == typeFloat64:
		return 0, fmt.Errorf("%w: float of %d bytes", ErrCorrupt, len(p))
	}
	return 0, fmt.Errorf("%w: stored %s, read as a float", ErrWrongType, typeName(typ))
}

func decodeFloats[F float32 | float64](p []byte, size int, f func([]byte) F) ([]F, error) {
	if len(p)%size != 0 {
		return nil, fmt.Errorf("%w: %d bytes of packed floats", ErrCorrupt, len(p))
	}
	out := make([]F, len(p)/size)
	for i := range out {
		out[i] = f(p[i*size:])
	}
	return out, nil
}

func want(got, want byte) error {
	if got != want {
		return fmt.Errorf("%w: stored %s, read as %s", ErrWrongType, typeName(got), typeName(want))
	}
	return nil
}

// typeName names a stored type for error messages; "" means unknown.
func typeName(typ byte) string {
	switch typ {
	case typeBytes:
		return "[]byte"
	case typeString:
		return "string"
	case typeBool:
		return "bool"
	case typeInt:
		return "a signed integer"
	case typeUint:
		return "an unsigned integer"
	case typeFloat32:
		return "float32"
	case typeFloat64:
		return "float64"
	case typeFloat32s:
		return "[]float32"
	case typeFloat64s:
		return "[]float64"
	case typeCBOR:
		return "a structured value"
	}
	return ""
}

// typeOfValue returns the Go type that a CBOR value is stored as: T, or
// v's dynamic type when T is an interface, so that Set[any](u) can be read
// back as Get[User]. A nil interface has no type (nil).
func typeOfValue[T any](v T) reflect.Type {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		return reflect.TypeOf(v)
	}
	return t
}

// fingerprint identifies a Go type by name in 4 bytes; 0 means any type.
// Two types with the same name in packages of the same name share one,
// which only weakens the check.
func fingerprint(t reflect.Type) uint32 {
	if t == nil {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(t.String()))
	if s := h.Sum32(); s != 0 {
		return s
	}
	return 1
}

// valueEncoding keeps times to the nanosecond with their zone offset (the
// CBOR default is whole seconds).
var valueEncoding = func() cbor.EncMode {
	em, err := cbor.EncOptions{Time: cbor.TimeRFC3339Nano}.EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// valueDecoding decodes generic maps as map[string]any (the shape JSON
// users expect) and lifts CBOR's per-item caps: a value is already bounded
// by Options.MaxValueSize, and CBOR checks that the data holds every item a
// header announces before it allocates for them.
var valueDecoding = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DefaultMapType:   reflect.TypeFor[map[string]any](),
		MaxArrayElements: math.MaxInt32,
		MaxMapPairs:      math.MaxInt32,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()
