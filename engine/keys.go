package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// The keyspace inside Pebble (docs/ARCHITECTURE.md; calls.go adds the call
// tokens under 'c'):
//
//	'd' bucket key          -> record (codec): the entries
//	'x' expiry bucket key   -> empty: the expiry index (package ttl)
//	'm' name                -> metadata: format, counters
//
// bucket is the top 16 bits of xxhash64 of the user key, big-endian. It
// spreads entries evenly over 65,536 buckets, so a bucket is a uniform
// sample of the keys and a range of buckets a slice of the data that can
// be compacted on its own. The hot tier's index is in the same order
// (hottier.Tier.slot), so that a warm, which reads the store in order,
// writes it in order. Inside a bucket the keys are in their own
// order, so neighbours share prefixes and Pebble's prefix compression
// works: with a whole 8-byte hash in front of every key (format 1, below)
// tables were 23% larger for 128-byte values, held fewer entries under
// the same limit, and Sets and Gets ran at 0.80-0.91x of raw Pebble.
//
// Stores written in format 1 keep it: their data keys are 'd', the whole
// hash64 and the key, and the expiry index refers to them the same way.
// keyLayout is the difference; everything else is the same in both.
const (
	dataPrefix = 'd'
	metaPrefix = 'm'
)

var metaFormat = []byte("mformat")

// The layout versions written under metaFormat. New stores get
// storeFormat; Open reads both and refuses any other instead of misreading
// it.
const (
	hashedFormat = 1 // 'd' hash64 key
	storeFormat  = 2 // 'd' bucket key
)

// maxDataHeader is the longest header any layout puts before a user key.
const maxDataHeader = 1 + 8

// keyLayout is how a store of one format lays its data keys out.
type keyLayout struct {
	format byte
	header int // bytes before the user key: the prefix and the hash or bucket
}

var (
	hashedKeys   = keyLayout{format: hashedFormat, header: 1 + 8}
	bucketedKeys = keyLayout{format: storeFormat, header: 1 + 2}
)

// layoutOf returns the layout of the store format v, as stored under
// metaFormat.
func layoutOf(v []byte) (keyLayout, error) {
	if len(v) == 1 {
		switch v[0] {
		case hashedFormat:
			return hashedKeys, nil
		case storeFormat:
			return bucketedKeys, nil
		}
	}
	return keyLayout{}, fmt.Errorf("store format %x, this version reads %d and %d", v, hashedFormat, storeFormat)
}

func (l keyLayout) bucketed() bool { return l.format == storeFormat }

// dataKey appends the data key of the user key k.
func (l keyLayout) dataKey(dst []byte, k string) []byte {
	dk, _ := l.dataKeyHash(dst, k)
	return dk
}

// dataKeyHash appends the data key of the user key k and returns it with
// hash64 of k, which a bucketed key does not hold.
func (l keyLayout) dataKeyHash(dst []byte, k string) ([]byte, uint64) {
	h := xxhash.Sum64String(k)
	dst = append(dst, dataPrefix)
	if l.bucketed() {
		dst = binary.BigEndian.AppendUint16(dst, uint16(h>>48))
	} else {
		dst = binary.BigEndian.AppendUint64(dst, h)
	}
	return append(dst, k...), h
}

// hash returns hash64 of the user key in the data key dk, which is what
// everything in memory (the presence filter, the access clock, stripes)
// is indexed by. dk is at least header bytes long.
func (l keyLayout) hash(dk []byte) uint64 {
	if l.bucketed() {
		return xxhash.Sum64(dk[l.header:])
	}
	return binary.BigEndian.Uint64(dk[1:l.header])
}

// userKey returns the user key inside a data key; it aliases dk.
func (l keyLayout) userKey(dk []byte) []byte { return dk[l.header:] }

// isData reports whether k is a data key long enough to hold a user key.
func (l keyLayout) isData(k []byte) bool { return len(k) >= l.header && k[0] == dataPrefix }

// seek returns the data key at which keys of hash pos and up start, for a
// seek to a position in the hash space: in format 2 the start of pos's
// bucket, whose keys are in their own order.
func (l keyLayout) seek(pos uint64) []byte {
	if l.bucketed() {
		return binary.BigEndian.AppendUint16([]byte{dataPrefix}, uint16(pos>>48))
	}
	return binary.BigEndian.AppendUint64([]byte{dataPrefix}, pos)
}

// position returns where the data key dk stands in the hash space, as far
// as its place in Pebble tells: its hash, or the start of its bucket. A
// scan can stop between positions and resume with seek.
func (l keyLayout) position(dk []byte) uint64 {
	if l.bucketed() {
		return uint64(binary.BigEndian.Uint16(dk[1:3])) << 48
	}
	return binary.BigEndian.Uint64(dk[1:9])
}

// dataSpan returns the bounds of all data keys: lower inclusive, upper
// exclusive.
func dataSpan() (lower, upper []byte) { return []byte{dataPrefix}, []byte{dataPrefix + 1} }

// slice returns the bounds of the i-th of n equal slices of the data span
// by hash (whole buckets in format 2), for compacting a part of the data
// at a time.
func (l keyLayout) slice(i, n int) (lower, upper []byte) {
	step := ^uint64(0)/uint64(n) + 1 // seek rounds it down to a bucket
	lower = l.seek(uint64(i) * step)
	if i == n-1 {
		return lower, []byte{dataPrefix + 1}
	}
	return lower, l.seek(uint64(i+1) * step)
}

// checkFormat writes the store format into a new store and finds the
// layout of an existing one; it refuses a store of a format it does not
// know instead of misreading it.
func (c *store) checkFormat() error {
	v, closer, err := c.db.Get(metaFormat)
	if errors.Is(err, pebble.ErrNotFound) {
		// A new store. One with data but no format lost its metadata:
		// taking it for new would misread keys of format 1.
		if empty, err := c.dataEmpty(); err != nil || !empty {
			return errors.Join(fmt.Errorf("%w: the store format is not recorded, and the store holds entries", ErrCorrupt), err)
		}
		c.unflushed.Store(true)
		c.layout = bucketedKeys
		return c.db.Set(metaFormat, []byte{storeFormat}, pebble.Sync)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	l, err := layoutOf(v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	c.layout = l
	return nil
}
