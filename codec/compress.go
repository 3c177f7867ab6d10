package codec

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression selects how AppendRecord compresses payloads. The zero value is
// CompressionDefault, which is S2.
type Compression uint8

const (
	// CompressionDefault is S2: it compresses text-like cache values at
	// several hundred MB/s per core and gives up quickly on incompressible
	// data, which suits a cache on the write path of every Set.
	CompressionDefault Compression = iota
	// CompressionNone stores every payload raw.
	CompressionNone
	// CompressionS2 compresses with S2 block format.
	CompressionS2
	// CompressionZstd compresses with zstd at its fastest level: smaller
	// records than S2 for more CPU time.
	CompressionZstd
)

// String returns the name that ParseCompression accepts.
func (c Compression) String() string {
	switch c {
	case CompressionDefault:
		return "default"
	case CompressionNone:
		return "none"
	case CompressionS2:
		return "s2"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

// ParseCompression returns the Compression named s: "none", "s2", "zstd", or
// "" or "default" for the default. Case is ignored.
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(s) {
	case "", "default":
		return CompressionDefault, nil
	case "none":
		return CompressionNone, nil
	case "s2":
		return CompressionS2, nil
	case "zstd":
		return CompressionZstd, nil
	}
	return CompressionDefault, fmt.Errorf("codec: unknown compression %q (want none, s2, zstd or default)", s)
}

// algo returns the algorithm byte that c writes when it compresses.
func (c Compression) algo() uint8 {
	switch c {
	case CompressionNone:
		return AlgoNone
	case CompressionZstd:
		return AlgoZstd
	}
	return AlgoS2
}

// Algorithms as stored in the low bits of the flags byte and in Header.Algo.
const (
	AlgoNone uint8 = 0 // payload is the value
	AlgoS2   uint8 = 1 // payload is an S2 block
	AlgoZstd uint8 = 2 // payload is a zstd frame
)

// storedBound returns the most bytes appendPayload appends for a value of n
// bytes when asked for algo, so that AppendRecord can reserve them at once.
func storedBound(algo uint8, n int) int {
	if algo == AlgoS2 {
		if m := s2.MaxEncodedLen(n); m > n {
			return m
		}
	}
	return n
}

// worthIt reports whether a compressed form of n bytes saves at least an
// eighth of raw bytes; below that the CPU spent on every read is not repaid.
func worthIt(n, raw int) bool {
	return n <= raw-raw/8
}

// appendPayload appends the stored form of value to rec and returns the
// algorithm it chose. It compresses with algo and keeps the result only when
// worthIt; otherwise, and when the compressor is unavailable, it appends the
// value raw. With storedBound(algo, len(value)) bytes of spare capacity in
// rec it does not allocate.
func (c *Codec) appendPayload(rec, value []byte, algo uint8) ([]byte, uint8) {
	switch algo {
	case AlgoS2:
		m := s2.MaxEncodedLen(len(value))
		if m < 0 { // above 4 GiB: S2 blocks cannot hold it
			break
		}
		rec = slices.Grow(rec, m)
		start := len(rec)
		// With enough capacity, s2.Encode writes in place.
		enc := s2.Encode(rec[start:start+m], value)
		if worthIt(len(enc), len(value)) {
			return rec[:start+len(enc)], AlgoS2
		}
	case AlgoZstd:
		enc, err := c.zstd.encoder()
		if err != nil {
			break
		}
		rec = slices.Grow(rec, len(value))
		start := len(rec)
		// EncodeAll appends; a result longer than the raw value may move
		// to a new array, and then rec's array is still ours for the raw copy.
		out := enc.EncodeAll(value, rec)
		if worthIt(len(out)-start, len(value)) {
			return out, AlgoZstd
		}
	}
	return append(rec, value...), AlgoNone
}

// appendS2 appends the decoded S2 block src to dst.
func appendS2(dst, src []byte, maxValue int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, corrupt("s2 length: %w", err)
	}
	if n > maxValue {
		return nil, corrupt("s2 payload decodes to %d bytes, more than MaxValue %d", n, maxValue)
	}
	dst = slices.Grow(dst, n)
	start := len(dst)
	// With enough capacity, s2.Decode writes in place.
	if _, err := s2.Decode(dst[start:start+n], src); err != nil {
		return nil, corrupt("s2 decompress: %w", err)
	}
	return dst[:start+n], nil
}

// appendZstd appends the decoded zstd frames in src to dst.
func (c *Codec) appendZstd(dst, src []byte, maxValue int) ([]byte, error) {
	var fh zstd.Header
	if err := fh.Decode(src); err != nil {
		return nil, corrupt("zstd frame header: %w", err)
	}
	if fh.HasFCS {
		if fh.FrameContentSize > uint64(maxValue) {
			return nil, corrupt("zstd payload decodes to %d bytes, more than MaxValue %d", fh.FrameContentSize, maxValue)
		}
		dst = slices.Grow(dst, int(fh.FrameContentSize))
	}
	dec, err := c.zstd.decoder(maxValue)
	if err != nil {
		return nil, err
	}
	start := len(dst)
	out, err := dec.DecodeAll(src, dst)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, corrupt("zstd payload decodes to more than MaxValue %d: %w", maxValue, err)
	case err != nil:
		return nil, corrupt("zstd decompress: %w", err)
	case len(out)-start > maxValue: // the decoder checks this too; keep the bound local
		return nil, corrupt("zstd payload decodes to %d bytes, more than MaxValue %d", len(out)-start, maxValue)
	}
	return out, nil
}

// zstdState holds a Codec's zstd encoder and decoder. Both are created on
// first use, so a cache that never meets zstd never pays for their tables.
// EncodeAll and DecodeAll are safe for concurrent use and start no goroutines.
type zstdState struct {
	encOnce sync.Once
	enc     *zstd.Encoder
	encErr  error

	decOnce sync.Once
	dec     *zstd.Decoder
	decErr  error
}

// concurrency bounds how many EncodeAll or DecodeAll calls run at once; each
// holds its own tables, and more than a few cores' worth buys nothing in a cache.
func concurrency() int {
	return min(runtime.GOMAXPROCS(0), 4)
}

func (z *zstdState) encoder() (*zstd.Encoder, error) {
	z.encOnce.Do(func() {
		z.enc, z.encErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(concurrency()),
			// The record's CRC-32C already covers the payload.
			zstd.WithEncoderCRC(false),
		)
	})
	return z.enc, z.encErr
}

// decoder returns the decoder, bounded by maxValue: it refuses frames whose
// content size or window exceeds it and stops decoding once output does.
func (z *zstdState) decoder(maxValue int) (*zstd.Decoder, error) {
	z.decOnce.Do(func() {
		z.dec, z.decErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(concurrency()),
			zstd.WithDecoderMaxMemory(uint64(max(maxValue, 1))),
			// A window never needs to exceed the output it refers back into;
			// the option only refuses values outside [1 KiB, ~3.75 TiB].
			zstd.WithDecoderMaxWindow(uint64(min(max(maxValue, zstd.MinWindowSize), 1<<40))),
		)
		if z.decErr != nil {
			z.decErr = fmt.Errorf("codec: zstd decoder: %w", z.decErr)
		}
	})
	return z.dec, z.decErr
}
