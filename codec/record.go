package codec

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// Version is the record format version that AppendRecord writes and Decode
// reads.
const Version = 1

// HeaderSize is the length of the fixed header that starts every record.
const HeaderSize = 22

// Offsets of the header fields; see the package documentation.
const (
	offVersion   = 0
	offFlags     = 1
	offExpiry    = 2
	offWriteTime = 10
	offChecksum  = 18

	algoMask = 0x03 // flags bits that hold the algorithm
)

// castagnoli is read-only after package initialisation; crc32 uses the
// CPU's CRC-32C instruction for this table where there is one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the fixed part of a record.
type Header struct {
	Version   uint8
	Algo      uint8 // payload compression as stored: AlgoNone, AlgoS2 or AlgoZstd
	Expiry    int64 // unix nanoseconds; 0 means never
	WriteTime int64 // unix nanoseconds
}

// Expired reports whether the record has expired at nowNanos (unix
// nanoseconds). A record expires at its expiry instant, not after it.
func (h Header) Expired(nowNanos int64) bool {
	return h.Expiry != 0 && h.Expiry <= nowNanos
}

// AppendRecord appends the record for value to dst and returns the extended
// slice. It compresses value when len(value) >= MinSize and the compressed
// form saves at least an eighth of len(value); otherwise it stores value raw.
// It allocates at most once, and not at all when dst has room.
func (c *Codec) AppendRecord(dst []byte, expiry, writeTime int64, value []byte) []byte {
	algo := AlgoNone
	if len(value) >= c.minLen() {
		algo = c.compression.algo()
	}
	off := len(dst)
	dst = slices.Grow(dst, HeaderSize+storedBound(algo, len(value)))
	dst = dst[:off+HeaderSize]
	dst, algo = c.appendPayload(dst, value, algo)

	rec := dst[off:]
	rec[offVersion] = Version
	rec[offFlags] = algo
	binary.LittleEndian.PutUint64(rec[offExpiry:], uint64(expiry))
	binary.LittleEndian.PutUint64(rec[offWriteTime:], uint64(writeTime))
	binary.LittleEndian.PutUint32(rec[offChecksum:], checksum(payloadSum(rec), rec))
	return dst
}

// DecodeHeader parses and checks the header of rec: its length, version and
// flags. It does not verify the checksum, so it costs the same for any
// payload size; the expiry sweeper and existence checks rely on that. Use
// Decode when the header must be trusted.
func DecodeHeader(rec []byte) (Header, error) {
	if len(rec) < HeaderSize {
		return Header{}, corrupt("too short: %d bytes, header is %d", len(rec), HeaderSize)
	}
	if v := rec[offVersion]; v != Version {
		return Header{}, corrupt("unsupported version %d (want %d)", v, Version)
	}
	flags := rec[offFlags]
	algo := flags & algoMask
	if flags != algo || algo > AlgoZstd {
		return Header{}, corrupt("bad flags %#02x", flags)
	}
	return Header{
		Version:   Version,
		Algo:      algo,
		Expiry:    int64(binary.LittleEndian.Uint64(rec[offExpiry:])),
		WriteTime: int64(binary.LittleEndian.Uint64(rec[offWriteTime:])),
	}, nil
}

// Decode verifies rec, decompresses its payload if needed, and appends the
// value to dst, which may be nil and must not overlap rec. The returned value
// never aliases rec, and is non-nil even when empty, so that an empty value
// reads differently from a missing one. On error the value is nil and the
// error wraps ErrCorrupt.
func (c *Codec) Decode(dst, rec []byte) (Header, []byte, error) {
	h, err := verify(rec)
	if err != nil {
		return Header{}, nil, err
	}
	payload := rec[HeaderSize:]
	maxValue := c.MaxValue()
	var out []byte
	switch h.Algo {
	case AlgoNone:
		if len(payload) > maxValue {
			return Header{}, nil, corrupt("value of %d bytes is more than MaxValue %d", len(payload), maxValue)
		}
		out = append(dst, payload...)
	case AlgoS2:
		out, err = appendS2(dst, payload, maxValue)
	case AlgoZstd:
		out, err = c.appendZstd(dst, payload, maxValue)
	}
	if err != nil {
		return Header{}, nil, err
	}
	if out == nil {
		out = []byte{}
	}
	return h, out, nil
}

// SetExpiry returns a copy of rec with expiry replaced and the checksum
// recomputed; the payload is copied as stored, not decoded. It first checks
// rec's header and checksum, so it never signs a damaged record.
func SetExpiry(rec []byte, expiry int64) ([]byte, error) {
	if _, err := DecodeHeader(rec); err != nil {
		return nil, err
	}
	// The checksum covers the payload first, so one pass over it checks
	// the old header and signs the new one.
	sum := payloadSum(rec)
	if got, want := checksum(sum, rec), binary.LittleEndian.Uint32(rec[offChecksum:]); got != want {
		return nil, corrupt("checksum mismatch: computed %#08x, stored %#08x", got, want)
	}
	out := slices.Clone(rec)
	binary.LittleEndian.PutUint64(out[offExpiry:], uint64(expiry))
	binary.LittleEndian.PutUint32(out[offChecksum:], checksum(sum, out))
	return out, nil
}

// PayloadLen returns the length of rec's stored payload (compressed when the
// record is), or 0 when rec is shorter than a header.
func PayloadLen(rec []byte) int {
	return max(len(rec)-HeaderSize, 0)
}

// verify checks rec's header and checksum and returns the header.
func verify(rec []byte) (Header, error) {
	h, err := DecodeHeader(rec)
	if err != nil {
		return Header{}, err
	}
	if got, want := checksum(payloadSum(rec), rec), binary.LittleEndian.Uint32(rec[offChecksum:]); got != want {
		return Header{}, corrupt("checksum mismatch: computed %#08x, stored %#08x", got, want)
	}
	return h, nil
}

// payloadSum returns the CRC-32C of rec's payload, the first part of its
// checksum. rec must be at least HeaderSize long.
func payloadSum(rec []byte) uint32 {
	return crc32.Update(0, castagnoli, rec[HeaderSize:])
}

// checksum finishes the record checksum from payloadSum by adding the header
// bytes that precede the checksum field.
func checksum(payloadSum uint32, rec []byte) uint32 {
	return crc32.Update(payloadSum, castagnoli, rec[:offChecksum])
}
