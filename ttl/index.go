package ttl

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// IndexPrefix is the first byte of every expiry index key.
const IndexPrefix = 'x'

// An index key is IndexPrefix, the expiry in unix nanoseconds as a big-endian
// uint64, then the record's data key without its prefix byte (a hash bucket
// of the user key, or the whole hash in stores of the engine's format 1,
// then the user key). Big-endian expiry makes Pebble's byte order
// the expiry order, so "everything expired by now" is one contiguous span.
const indexHeaderLen = 1 + 8

// ErrBadIndexKey reports an expiry index key that does not parse.
var ErrBadIndexKey = errors.New("ttl: malformed expiry index key")

// AppendIndexKey appends the index key for a record that expires at expiry
// (unix nanoseconds, > 0) and whose data key, without its prefix byte, is ref.
func AppendIndexKey(dst []byte, expiry int64, ref []byte) []byte {
	dst = append(dst, IndexPrefix)
	dst = binary.BigEndian.AppendUint64(dst, uint64(expiry))
	return append(dst, ref...)
}

// ParseIndexKey splits an index key into its expiry and the data key
// reference it points at. ref aliases k.
func ParseIndexKey(k []byte) (expiry int64, ref []byte, err error) {
	if len(k) < indexHeaderLen || k[0] != IndexPrefix {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrBadIndexKey, len(k))
	}
	return int64(binary.BigEndian.Uint64(k[1:indexHeaderLen])), k[indexHeaderLen:], nil
}

// IndexBounds returns the span of index keys that expire at or before now:
// lower inclusive, upper exclusive.
func IndexBounds(now int64) (lower, upper []byte) {
	lower = []byte{IndexPrefix}
	upper = binary.BigEndian.AppendUint64([]byte{IndexPrefix}, uint64(now)+1)
	return lower, upper
}

// IndexSpan returns the whole index keyspace: lower inclusive, upper exclusive.
func IndexSpan() (lower, upper []byte) {
	return []byte{IndexPrefix}, []byte{IndexPrefix + 1}
}
