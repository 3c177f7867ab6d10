package codec

import (
	"encoding/binary"
	"slices"
)

// Version is the record format version that AppendRecord writes. Decode
// reads it and version 1 (records written before it).
const Version = 2

// MinHeaderSize and MaxHeaderSize bound the header that starts every
// record AppendRecord writes: 4 bytes, 12 when the record expires.
// Version 1 records, still read, have 10 and 18.
const (
	MinHeaderSize = 4
	MaxHeaderSize = 12
)

// The first byte of a version 2 record is v2Tag | flags; version 1
// records start with a byte 1, which no version 2 record does.
const (
	v2Tag     = 0x20
	v2TagMask = 0xf0

	algoMask   = 0x03 // flags bits that hold the algorithm
	flagExpiry = 0x04 // the header holds an expiry
	flagRef    = 0x08 // the payload is a Ref to the stored value
	knownFlags = algoMask | flagExpiry | flagRef

	offExpiry = 1 // only when flagExpiry is set
)

// writeEpoch is where a version 2 record's write time counts minutes
// from, 2020-01-01 UTC, in unix seconds; its three bytes reach 2051.
const (
	writeEpoch      = 1_577_836_800
	maxWriteMinutes = 1<<24 - 1
)

// headerLen returns the length of the version 2 header that flags
// announce.
func headerLen(flags byte) int {
	if flags&flagExpiry != 0 {
		return MaxHeaderSize
	}
	return MinHeaderSize
}

// writeMinutes is writeTime (unix nanoseconds) in the minutes of a
// version 2 header: rounded down, and held within its three bytes.
func writeMinutes(writeTime int64) uint32 {
	m := (writeTime/1e9 - writeEpoch) / 60
	return uint32(min(max(m, 0), maxWriteMinutes))
}

// Header is the part of a record before the payload.
type Header struct {
	Version uint8
	Algo    uint8 // payload compression as stored: AlgoNone, AlgoS2 or AlgoZstd
	Expiry  int64 // unix nanoseconds; 0 means never
	// WriteTime is when the record was written, in unix nanoseconds, to
	// the minute (version 1 records: to the second). Only the size
	// limit's recency fallback reads it.
	WriteTime int64
	// Ref is set when the payload is a Ref: the stored value (compressed
	// as Algo says) lives in a value log, not in the record.
	Ref bool
}

// Expired reports whether the record has expired at nowNanos (unix
// nanoseconds). A record expires at its expiry instant, not after it.
func (h Header) Expired(nowNanos int64) bool {
	return h.Expiry != 0 && h.Expiry <= nowNanos
}

// AppendRecord appends the record for value to dst and returns the extended
// slice. It compresses value when len(value) >= MinSize and the compressed
// form saves at least an eighth of len(value); otherwise it stores value raw.
// writeTime is kept to the minute. It allocates at most once, and not at all
// when dst has room.
func (c *Codec) AppendRecord(dst []byte, expiry, writeTime int64, value []byte) []byte {
	algo := c.algoFor(value)
	hl := headerLen(expiryFlag(expiry))
	off := len(dst)
	dst = slices.Grow(dst, hl+storedBound(algo, len(value)))
	dst = dst[:off+hl]
	dst, algo = c.appendPayload(dst, value, algo)
	sign(dst[off:], expiryFlag(expiry)|algo, expiry, writeTime)
	return dst
}

// AppendStored appends the stored form of value to dst, compressed under
// the same rule as AppendRecord, and returns it with its algorithm: what
// goes to a value log, for AppendRefRecord to refer to.
func (c *Codec) AppendStored(dst, value []byte) ([]byte, uint8) {
	algo := c.algoFor(value)
	dst = slices.Grow(dst, storedBound(algo, len(value)))
	return c.appendPayload(dst, value, algo)
}

// AppendRefRecord appends the record of a value stored elsewhere, as algo
// says (AppendStored), at ref.
func AppendRefRecord(dst []byte, expiry, writeTime int64, algo uint8, ref Ref) []byte {
	flags := expiryFlag(expiry) | flagRef | algo&algoMask
	hl := headerLen(flags)
	off := len(dst)
	dst = slices.Grow(dst, hl+RefSize)
	dst = ref.append(dst[:off+hl])
	sign(dst[off:], flags, expiry, writeTime)
	return dst
}

func (c *Codec) algoFor(value []byte) uint8 {
	if len(value) >= c.minLen() {
		return c.compression.algo()
	}
	return AlgoNone
}

func expiryFlag(expiry int64) byte {
	if expiry != 0 {
		return flagExpiry
	}
	return 0
}

// sign fills in the version 2 header of rec, whose payload is in place.
func sign(rec []byte, flags byte, expiry, writeTime int64) {
	putHeader(rec, flags, expiry, writeMinutes(writeTime))
}

// putHeader writes a version 2 header at the start of rec.
func putHeader(rec []byte, flags byte, expiry int64, minutes uint32) {
	hl := headerLen(flags)
	rec[0] = v2Tag | flags
	if expiry != 0 {
		binary.LittleEndian.PutUint64(rec[offExpiry:], uint64(expiry))
	}
	rec[hl-3], rec[hl-2], rec[hl-1] = byte(minutes), byte(minutes>>8), byte(minutes>>16)
}

// DecodeHeader parses and checks the header of rec: its length, version and
// flags. It does not verify the checksum, so it costs the same for any
// payload size; the expiry sweeper and existence checks rely on that. Use
// Decode when the header must be trusted.
func DecodeHeader(rec []byte) (Header, error) {
	_, h, err := decodeHeader(rec)
	return h, err
}

// decodeHeader is DecodeHeader that also returns the header's length.
func decodeHeader(rec []byte) (int, Header, error) {
	if len(rec) == 0 {
		return 0, Header{}, corrupt("empty: a header is at least %d bytes", MinHeaderSize)
	}
	if rec[0] == v1 {
		return decodeHeaderV1(rec)
	}
	if rec[0]&v2TagMask != v2Tag {
		return 0, Header{}, corrupt("unsupported version (first byte %#02x)", rec[0])
	}
	flags := rec[0] &^ v2TagMask
	algo := flags & algoMask
	if algo > AlgoZstd {
		return 0, Header{}, corrupt("bad flags %#02x", flags)
	}
	hl := headerLen(flags)
	if len(rec) < hl {
		return 0, Header{}, corrupt("too short: %d bytes, the header is %d", len(rec), hl)
	}
	minutes := int64(rec[hl-3]) | int64(rec[hl-2])<<8 | int64(rec[hl-1])<<16
	h := Header{
		Version:   Version,
		Algo:      algo,
		WriteTime: (writeEpoch + 60*minutes) * 1e9,
		Ref:       flags&flagRef != 0,
	}
	return checkHeader(rec, flags, hl, h)
}

// checkHeader completes h, the header of rec of length hl with flags: the
// expiry, and the length of a reference record. Both versions share it.
func checkHeader(rec []byte, flags byte, hl int, h Header) (int, Header, error) {
	if h.Ref && len(rec) != hl+RefSize {
		return 0, Header{}, corrupt("a reference record of %d bytes, want %d", len(rec), hl+RefSize)
	}
	if flags&flagExpiry != 0 {
		h.Expiry = int64(binary.LittleEndian.Uint64(rec[expiryAt(h.Version):]))
		if h.Expiry == 0 {
			return 0, Header{}, corrupt("expiry flag set with a zero expiry")
		}
	}
	return hl, h, nil
}

// Decode verifies rec, decompresses its payload if needed, and appends the
// value to dst, which may be nil and must not overlap rec. The returned value
// never aliases rec, and is non-nil even when empty, so that an empty value
// reads differently from a missing one. On error the value is nil and the
// error wraps ErrCorrupt.
//
// A record whose value is stored elsewhere (Header.Ref) gives ErrRef: its
// reader resolves the Ref (Verify) and decodes the stored bytes it finds
// (DecodeStored).
func (c *Codec) Decode(dst, rec []byte) (Header, []byte, error) {
	h, payload, err := Verify(rec)
	if err != nil {
		return Header{}, nil, err
	}
	if h.Ref {
		return Header{}, nil, ErrRef
	}
	out, err := c.DecodeStored(dst, h.Algo, payload)
	if err != nil {
		return Header{}, nil, err
	}
	return h, out, nil
}

// Verify checks rec's header (and a version 1 record's checksum) and
// returns the header and the stored payload, which aliases rec: the value
// as stored, or for a reference record the Ref (ParseRef).
func Verify(rec []byte) (Header, []byte, error) {
	hl, h, err := verify(rec)
	if err != nil {
		return Header{}, nil, err
	}
	return h, rec[hl:], nil
}

// DecodeStored appends to dst the value whose stored form (compressed with
// algo) is stored, with Decode's guarantees: never aliasing stored, non-nil
// when empty, errors wrapping ErrCorrupt.
func (c *Codec) DecodeStored(dst []byte, algo uint8, stored []byte) ([]byte, error) {
	maxValue := c.MaxValue()
	var out []byte
	var err error
	switch algo {
	case AlgoNone:
		if len(stored) > maxValue {
			return nil, corrupt("value of %d bytes is more than MaxValue %d", len(stored), maxValue)
		}
		out = append(dst, stored...)
	case AlgoS2:
		out, err = appendS2(dst, stored, maxValue)
	case AlgoZstd:
		out, err = c.appendZstd(dst, stored, maxValue)
	default:
		err = corrupt("unknown compression %d", algo)
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// SetExpiry returns a copy of rec with expiry replaced (0: never expires),
// as a version 2 record; the payload is copied as stored, not decoded. It
// first checks rec as Verify does, so it never rewrites a damaged version
// 1 record.
func SetExpiry(rec []byte, expiry int64) ([]byte, error) {
	hl, h, err := verify(rec)
	if err != nil {
		return nil, err
	}
	flags := h.Algo | expiryFlag(expiry)
	if h.Ref {
		flags |= flagRef
	}
	nl := headerLen(flags)
	out := make([]byte, nl, nl+len(rec)-hl)
	putHeader(out, flags, expiry, writeMinutes(h.WriteTime))
	return append(out, rec[hl:]...), nil
}

// PayloadLen returns the length of rec's stored payload (compressed when the
// record is), or 0 when rec's header does not parse. For a reference record
// it is the Ref's length (RefSize).
func PayloadLen(rec []byte) int {
	hl, _, err := decodeHeader(rec)
	if err != nil {
		return 0
	}
	return len(rec) - hl
}

// ExternalLen returns the bytes that rec's Ref points at, 0 for a record
// that holds its value (or does not parse): with len(rec), what the entry
// takes on disk. It reads the Ref without checking the checksum, like
// DecodeHeader.
func ExternalLen(rec []byte) int {
	hl, h, err := decodeHeader(rec)
	if err != nil || !h.Ref {
		return 0
	}
	return int(binary.LittleEndian.Uint32(rec[hl+refOffLength:]))
}

// verify checks rec's header, and a version 1 record's checksum, and
// returns the header and its length.
func verify(rec []byte) (int, Header, error) {
	hl, h, err := decodeHeader(rec)
	if err != nil || h.Version != v1 {
		return hl, h, err
	}
	if got, want := checksumV1(payloadSum(rec, hl), rec, hl), binary.LittleEndian.Uint32(rec[hl-4:]); got != want {
		return 0, Header{}, corrupt("checksum mismatch: computed %#08x, stored %#08x", got, want)
	}
	return hl, h, nil
}
