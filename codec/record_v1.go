package codec

import (
	"encoding/binary"
	"hash/crc32"
)

// Version 1 records, which stores written before version 2 still hold, are
// read as they are: a store is never rewritten to upgrade its records, and
// a record written again (a Set, SetExpiry) is written in version 2.
//
//	offset  size  field
//	0       1     1
//	1       1     flags, as in version 2
//	2       8     expiry, unix nanoseconds; only when the flags say so
//	h-8     4     write time, unix seconds (uint32)
//	h-4     4     CRC-32C (Castagnoli) of the stored payload, then bytes 0..h-4
//	h       n     stored payload
//
// Version 2 dropped the checksum: Pebble checks every block of its tables
// and every record of its log against a checksum of its own, and the value
// log every entry, so the record's only repeated them, at 4 bytes a record
// and a CRC pass on every read.
const (
	v1          = 1
	v1MinHeader = 10
	v1MaxHeader = 18
	v1OffFlags  = 1
	v1OffExpiry = 2
)

// castagnoli is read-only after package initialisation; crc32 uses the
// CPU's CRC-32C instruction for this table where there is one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// expiryAt is the offset of the expiry in a header of version v.
func expiryAt(v uint8) int {
	if v == v1 {
		return v1OffExpiry
	}
	return offExpiry
}

// decodeHeaderV1 is decodeHeader for a record whose first byte is 1.
func decodeHeaderV1(rec []byte) (int, Header, error) {
	if len(rec) < v1MinHeader {
		return 0, Header{}, corrupt("too short: %d bytes, a version 1 header is at least %d", len(rec), v1MinHeader)
	}
	flags := rec[v1OffFlags]
	algo := flags & algoMask
	if flags&^knownFlags != 0 || algo > AlgoZstd {
		return 0, Header{}, corrupt("bad flags %#02x", flags)
	}
	hl := v1MinHeader
	if flags&flagExpiry != 0 {
		hl = v1MaxHeader
	}
	if len(rec) < hl {
		return 0, Header{}, corrupt("too short: %d bytes, the header is %d", len(rec), hl)
	}
	h := Header{
		Version:   v1,
		Algo:      algo,
		WriteTime: int64(binary.LittleEndian.Uint32(rec[hl-8:])) * 1e9,
		Ref:       flags&flagRef != 0,
	}
	return checkHeader(rec, flags, hl, h)
}

// payloadSum returns the CRC-32C of the payload of rec, whose header is hl
// bytes: the first part of a version 1 record's checksum.
func payloadSum(rec []byte, hl int) uint32 {
	return crc32.Update(0, castagnoli, rec[hl:])
}

// checksumV1 finishes a version 1 record's checksum from payloadSum by
// adding the header bytes that precede the checksum field.
func checksumV1(payloadSum uint32, rec []byte, hl int) uint32 {
	return crc32.Update(payloadSum, castagnoli, rec[:hl-4])
}

// MayBeRefRecord reports whether a record of n bytes may be a reference
// record, of either version: a scan that counts bytes reads only those.
func MayBeRefRecord(n int) bool {
	switch n - RefSize {
	case MinHeaderSize, MaxHeaderSize, v1MinHeader, v1MaxHeader:
		return true
	}
	return false
}
