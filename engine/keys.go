package engine

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// The keyspace inside Pebble (docs/ARCHITECTURE.md; calls.go adds the call
// tokens under 'c'):
//
//	'd' hash64(key) key       -> record (codec): the entries
//	'x' expiry hash64(key) key -> empty: the expiry index (package ttl)
//	'm' name                  -> metadata: format, counters
//
// hash64 is big-endian xxhash64 of the user key. It spreads entries evenly
// over the 'd' span, so a seek to a random 8-byte position lands on a uniform
// sample of live keys (the size limit relies on it), and a slice of the hash
// space is a slice of the data that can be compacted on its own.
const (
	dataPrefix = 'd'
	metaPrefix = 'm'
	dataHeader = 1 + 8
)

var metaFormat = []byte("mformat")

// storeFormat is the layout version written under metaFormat. Open refuses a
// store of another version instead of misreading it.
const storeFormat = 1

// appendDataKey appends the data key of the user key k.
func appendDataKey(dst []byte, k string) []byte {
	dst = append(dst, dataPrefix)
	dst = binary.BigEndian.AppendUint64(dst, xxhash.Sum64String(k))
	return append(dst, k...)
}

// dataKeyHash returns the hash64 part of a data key.
func dataKeyHash(dk []byte) uint64 { return binary.BigEndian.Uint64(dk[1:dataHeader]) }

// userKey returns the user key inside a data key; it aliases dk.
func userKey(dk []byte) []byte { return dk[dataHeader:] }

// dataSpan returns the bounds of all data keys: lower inclusive, upper
// exclusive.
func dataSpan() (lower, upper []byte) { return []byte{dataPrefix}, []byte{dataPrefix + 1} }

// dataSlice returns the bounds of the i-th of n equal slices of the data
// span by hash, for compacting a part of the data at a time.
func dataSlice(i, n int) (lower, upper []byte) {
	step := ^uint64(0)/uint64(n) + 1
	lower = binary.BigEndian.AppendUint64([]byte{dataPrefix}, uint64(i)*step)
	if i == n-1 {
		return lower, []byte{dataPrefix + 1}
	}
	upper = binary.BigEndian.AppendUint64([]byte{dataPrefix}, uint64(i+1)*step)
	return lower, upper
}
