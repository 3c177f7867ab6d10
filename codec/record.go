package codec

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// Version is the record format version that AppendRecord writes and Decode
// reads.
const Version = 1

// MinHeaderSize and MaxHeaderSize bound the header that starts every
// record: 10 bytes, 18 when the record expires.
const (
	MinHeaderSize = 10
	MaxHeaderSize = 18
)

// Offsets of the header fields; see the package documentation.
const (
	offVersion = 0
	offFlags   = 1
	offExpiry  = 2 // only when flagExpiry is set

	algoMask   = 0x03 // flags bits that hold the algorithm
	flagExpiry = 0x04 // the header holds an expiry
	flagRef    = 0x08 // the payload is a Ref to the stored value
	knownFlags = algoMask | flagExpiry | flagRef
)

// headerLen returns the header length that flags announce.
func headerLen(flags byte) int {
	if flags&flagExpiry != 0 {
		return MaxHeaderSize
	}
	return MinHeaderSize
}

// castagnoli is read-only after package initialisation; crc32 uses the
// CPU's CRC-32C instruction for this table where there is one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the part of a record before the payload.
type Header struct {
	Version   uint8
	Algo      uint8 // payload compression as stored: AlgoNone, AlgoS2 or AlgoZstd
	Expiry    int64 // unix nanoseconds; 0 means never
	WriteTime int64 // unix nanoseconds, whole seconds: the record keeps seconds
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
// writeTime is kept to the second. It allocates at most once, and not at all
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

// sign fills in the header of rec, whose payload is in place.
func sign(rec []byte, flags byte, expiry, writeTime int64) {
	hl := headerLen(flags)
	rec[offVersion] = Version
	rec[offFlags] = flags
	if expiry != 0 {
		binary.LittleEndian.PutUint64(rec[offExpiry:], uint64(expiry))
	}
	binary.LittleEndian.PutUint32(rec[hl-8:], uint32(writeTime/1e9))
	binary.LittleEndian.PutUint32(rec[hl-4:], checksum(payloadSum(rec, hl), rec, hl))
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
	if len(rec) < MinHeaderSize {
		return 0, Header{}, corrupt("too short: %d bytes, a header is at least %d", len(rec), MinHeaderSize)
	}
	if v := rec[offVersion]; v != Version {
		return 0, Header{}, corrupt("unsupported version %d (want %d)", v, Version)
	}
	flags := rec[offFlags]
	algo := flags & algoMask
	if flags&^knownFlags != 0 || algo > AlgoZstd {
		return 0, Header{}, corrupt("bad flags %#02x", flags)
	}
	hl := headerLen(flags)
	if len(rec) < hl {
		return 0, Header{}, corrupt("too short: %d bytes, the header is %d", len(rec), hl)
	}
	h := Header{
		Version:   Version,
		Algo:      algo,
		WriteTime: int64(binary.LittleEndian.Uint32(rec[hl-8:])) * 1e9,
		Ref:       flags&flagRef != 0,
	}
	if h.Ref && len(rec) != hl+RefSize {
		return 0, Header{}, corrupt("a reference record of %d bytes, want %d", len(rec), hl+RefSize)
	}
	if flags&flagExpiry != 0 {
		h.Expiry = int64(binary.LittleEndian.Uint64(rec[offExpiry:]))
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

// Verify checks rec's header and checksum and returns the header and the
// stored payload, which aliases rec: the value as stored, or for a
// reference record the Ref (ParseRef).
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

// SetExpiry returns a copy of rec with expiry replaced (0: never expires)
// and the checksum recomputed; the payload is copied as stored, not
// decoded. It first checks rec's header and checksum, so it never signs a
// damaged record.
func SetExpiry(rec []byte, expiry int64) ([]byte, error) {
	hl, _, err := decodeHeader(rec)
	if err != nil {
		return nil, err
	}
	// The checksum covers the payload first, so one pass over it checks
	// the old header and signs the new one.
	sum := payloadSum(rec, hl)
	if got, want := checksum(sum, rec, hl), binary.LittleEndian.Uint32(rec[hl-4:]); got != want {
		return nil, corrupt("checksum mismatch: computed %#08x, stored %#08x", got, want)
	}
	flags := rec[offFlags] &^ flagExpiry
	if expiry != 0 {
		flags |= flagExpiry
	}
	nl := headerLen(flags)
	out := make([]byte, nl, nl+len(rec)-hl)
	out[offVersion] = Version
	out[offFlags] = flags
	if expiry != 0 {
		binary.LittleEndian.PutUint64(out[offExpiry:], uint64(expiry))
	}
	copy(out[nl-8:nl-4], rec[hl-8:hl-4]) // write time
	out = append(out, rec[hl:]...)
	binary.LittleEndian.PutUint32(out[nl-4:], checksum(sum, out, nl))
	return out, nil
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

// verify checks rec's header and checksum and returns the header and its
// length.
func verify(rec []byte) (int, Header, error) {
	hl, h, err := decodeHeader(rec)
	if err != nil {
		return 0, Header{}, err
	}
	if got, want := checksum(payloadSum(rec, hl), rec, hl), binary.LittleEndian.Uint32(rec[hl-4:]); got != want {
		return 0, Header{}, corrupt("checksum mismatch: computed %#08x, stored %#08x", got, want)
	}
	return hl, h, nil
}

// payloadSum returns the CRC-32C of the payload of rec, whose header is hl
// bytes: the first part of its checksum.
func payloadSum(rec []byte, hl int) uint32 {
	return crc32.Update(0, castagnoli, rec[hl:])
}

// checksum finishes the record checksum from payloadSum by adding the header
// bytes that precede the checksum field.
func checksum(payloadSum uint32, rec []byte, hl int) uint32 {
	return crc32.Update(payloadSum, castagnoli, rec[:hl-4])
}
