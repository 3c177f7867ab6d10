// Package codec defines the record format that diskcache stores as the value
// of each cache entry in Pebble: a fixed header followed by the payload, which
// may be compressed.
//
// # Layout
//
// A record is a 22-byte header and the stored payload. Integers are
// little-endian.
//
//	offset  size  field
//	0       1     format version (Version, currently 1)
//	1       1     flags: bits 0-1 payload compression (0 none, 1 S2, 2 zstd;
//	              3 is invalid); bits 2-7 must be zero in version 1
//	2       8     expiry, unix nanoseconds (int64); 0 means never
//	10      8     write time, unix nanoseconds (int64)
//	18      4     CRC-32C (Castagnoli) of the stored payload, then bytes 0-17
//	22      n     stored payload: the value, or its S2 block or zstd frame
//
// The checksum covers the payload before the header so that SetExpiry can
// check the old record and sign the new one in a single pass over the payload.
//
// The header carries everything the TTL sweeper and the LRU need (expiry and
// write time) at fixed offsets, so DecodeHeader reads them without touching the
// payload or the checksum.
//
// # Compression
//
// The algorithm is recorded per record, so a Codec decodes records written
// with any Compression setting. AppendRecord stores a value raw when it is
// shorter than Config.MinSize or when compression saves less than an eighth of
// its length; that keeps incompressible data (images, already compressed
// bytes) at its size plus the header, and keeps small values off the
// compressor entirely.
//
// # Safety
//
// Decode treats every record as untrusted: it verifies the checksum before
// decompressing, bounds the decoded size by Config.MaxValue before
// allocating, and reports every problem as an error wrapping ErrCorrupt rather
// than panicking.
package codec
