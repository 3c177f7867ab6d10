// Package codec defines the record format that diskcache stores as the value
// of each cache entry in Pebble: a fixed header followed by the payload, which
// may be compressed.
//
// # Layout
//
// A record is a header of 4 bytes (12 when it expires) and the stored
// payload. Integers are little-endian.
//
//	offset  size  field
//	0       1     version and flags: bits 4-7 the version tag (2); bits 0-1
//	              payload compression (0 none, 1 S2, 2 zstd; 3 is invalid);
//	              bit 2 set when the record expires; bit 3 set when the
//	              payload is a Ref
//	1       8     expiry, unix nanoseconds (int64, not 0); only when bit 2 is set
//	h-3     3     write time, minutes since 2020-01-01 UTC (held within 24 bits)
//	h       n     stored payload: the value, or its S2 block or zstd frame
//
// Small values dominate many caches (a 128-byte value is the common case),
// so the header is kept short: an entry that never expires does not carry an
// expiry, and the write time, which only the size limit's recency fallback
// reads (the access clock has every write to 10 ms), is kept to the minute.
// Every byte of a record is paid for in the block cache and in every
// compaction.
//
// A record carries no checksum: Pebble checks every block of its tables
// and every record of its log against its own, and the value log every
// entry. Version 1 records (record_v1.go), which stores written before
// version 2 still hold, carry a CRC-32C and a write time to the second,
// and are read as they are; a record written again is written in version 2.
//
// DecodeHeader reads the expiry and write time without touching the payload.
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
// Decode treats every record as untrusted: it checks the header (and a
// version 1 record's checksum) before decompressing, bounds the decoded size
// by Config.MaxValue before allocating, and reports every problem as an error
// wrapping ErrCorrupt rather than panicking.
package codec
