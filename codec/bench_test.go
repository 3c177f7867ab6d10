package codec

import (
	"fmt"
	"testing"
)

// benchSizes are the common cache value (128 B, below MinSize, never
// compressed) and a larger compressible one.
var benchSizes = []struct {
	name string
	n    int
}{
	{"128B", 128},
	{"16KiB", 16 << 10},
}

var benchCompressions = []Compression{CompressionNone, CompressionS2, CompressionZstd}

// BenchmarkAppendRecord encodes text values into a fresh record (nil dst, as
// a caller without a buffer pool does) and into a reused buffer.
func BenchmarkAppendRecord(b *testing.B) {
	for _, size := range benchSizes {
		value := textBytes(1, size.n)
		for _, comp := range benchCompressions {
			c := mustNew(b, Config{Compression: comp})
			b.Run(fmt.Sprintf("%s/%v/new", size.name, comp), func(b *testing.B) {
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				for b.Loop() {
					c.AppendRecord(nil, 1, 2, value)
				}
			})
			b.Run(fmt.Sprintf("%s/%v/reuse", size.name, comp), func(b *testing.B) {
				buf := make([]byte, 0, 2*size.n+MaxHeaderSize+64)
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				for b.Loop() {
					buf = c.AppendRecord(buf[:0], 1, 2, value)
				}
			})
		}
	}
}

// BenchmarkDecode verifies and decodes the records BenchmarkAppendRecord
// writes, into a fresh value and into a reused buffer.
func BenchmarkDecode(b *testing.B) {
	for _, size := range benchSizes {
		value := textBytes(1, size.n)
		for _, comp := range benchCompressions {
			c := mustNew(b, Config{Compression: comp})
			rec := c.AppendRecord(nil, 1, 2, value)
			b.Run(fmt.Sprintf("%s/%v/new", size.name, comp), func(b *testing.B) {
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := c.Decode(nil, rec); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%v/reuse", size.name, comp), func(b *testing.B) {
				buf := make([]byte, 0, size.n)
				b.SetBytes(int64(size.n))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if _, buf, err = c.Decode(buf[:0], rec); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDecodeHeader is the cost of an expiry check without the payload.
func BenchmarkDecodeHeader(b *testing.B) {
	rec := mustNew(b, Config{}).AppendRecord(nil, 1, 2, textBytes(1, 16<<10))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeHeader(rec); err != nil {
			b.Fatal(err)
		}
	}
}
