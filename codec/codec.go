package codec

import "fmt"

// Defaults for the zero fields of Config.
const (
	// DefaultMinSize keeps small values off the compressor. They rarely
	// shrink by the eighth AppendRecord asks for (S2 and zstd need
	// repetition inside the value itself), yet every Set would pay for the
	// attempt; Pebble's block compression, where enabled, still sees them
	// alongside their neighbours.
	DefaultMinSize = 512
	// DefaultMaxValue bounds what Decode will decompress: 1 GiB.
	DefaultMaxValue = 1 << 30
)

// Config configures a Codec. The zero value is valid: S2 compression of
// values from 512 bytes, decoded values up to 1 GiB.
type Config struct {
	// Compression is the algorithm AppendRecord tries. Zero means S2.
	Compression Compression
	// MinSize is the shortest value AppendRecord tries to compress; shorter
	// ones are stored raw. Zero means DefaultMinSize.
	MinSize int
	// MaxValue is the largest decoded value Decode accepts. It is checked
	// before allocating, so a record whose header is sound but whose
	// compressed payload claims a huge size (a decompression bomb) costs an
	// error, not the memory. Zero means DefaultMaxValue. Writers should
	// refuse values above it: AppendRecord encodes them, Decode rejects them.
	MaxValue int
}

// Codec encodes and decodes records. It is safe for concurrent use. The zero
// value behaves as New(Config{}) returns; a Codec must not be copied after
// first use.
type Codec struct {
	compression Compression
	minSize     int // 0 means DefaultMinSize
	maxValue    int // 0 means DefaultMaxValue
	zstd        zstdState
}

// New returns a Codec for cfg, or an error if cfg holds an unknown
// Compression or a negative size.
func New(cfg Config) (*Codec, error) {
	if cfg.Compression > CompressionZstd {
		return nil, fmt.Errorf("codec: unknown compression %v", cfg.Compression)
	}
	if cfg.MinSize < 0 {
		return nil, fmt.Errorf("codec: negative MinSize %d", cfg.MinSize)
	}
	if cfg.MaxValue < 0 {
		return nil, fmt.Errorf("codec: negative MaxValue %d", cfg.MaxValue)
	}
	return &Codec{
		compression: cfg.Compression,
		minSize:     cfg.MinSize,
		maxValue:    cfg.MaxValue,
	}, nil
}

// MaxValue returns the largest value Decode accepts, so that a writer can
// refuse larger ones before storing a record it could not read back.
func (c *Codec) MaxValue() int {
	if c.maxValue == 0 {
		return DefaultMaxValue
	}
	return c.maxValue
}

// minLen returns the shortest value AppendRecord tries to compress.
func (c *Codec) minLen() int {
	if c.minSize == 0 {
		return DefaultMinSize
	}
	return c.minSize
}
