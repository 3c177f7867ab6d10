// Package codec defines the record format that diskcache stores as the value
// of each cache entry in Pebble: a fixed header followed by the payload, which
// may be compressed.
//
// # Layout
//
// A record is a header of 10 bytes (18 when it expires) and the stored
// payload. Integers are little-endian.
//
//	offset  size  field
//	0       1     format version (Version, currently 1)
//	1       1     flags: bits 0-1 payload compression (0 none, 1 S2, 2 zstd;
//	              3 is invalid); bit 2 set when the record expires; bit 3 set
//	              when the payload is a Ref; bits 4-7 must be zero in version 1
//	2       8     expiry, unix nanoseconds (int64, not 0); only when bit 2 is set
//	h-8     4     write time, unix seconds (uint32)
//	h-4     4     CRC-32C (Castagnoli) of the stored payload, then bytes 0..h-4
//	h       n     stored payload: the value, or its S2 block or zstd frame
//
// Small values dominate many caches (a 128-byte value is the common case),
// so the header is kept short: an entry that never expires does not carry an
// expiry, and the write time, which only the size limit's recency fallback
// reads, is kept to the second. Every byte of a record is paid for in the
// block cache and in every compaction.
//
// The checksum covers the payload before the header so that SetExpiry can
// check the old record and sign the new one in a single pass over the payload.
//
// DecodeHeader reads the expiry and write time without touching the payload
// or the checksum.
//
// # References
//
// A large value can live outside its record, in a value log, where it is
// written once and freed a file at a time instead of being rewritten by
// every compaction of the LSM that holds the record. The record then holds
// a Ref (16 bytes: segment, offset, length and checksum of the value log's
// entry) as its payload, with bit 3 of the flags set; the compression bits
// still say how the stored bytes the Ref points at are compressed
// (AppendStored, DecodeStored).
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
