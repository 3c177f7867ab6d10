package engine

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// formatMajorVersion is pinned rather than left to Pebble's default, so that
// a Pebble upgrade never changes the on-disk format of existing caches.
const formatMajorVersion = pebble.FormatTableFormatV6

// pebbleOptions derives Pebble's options from ours. Pebble's own overheads
// (WAL, memtables, compaction output) live in the same directory and count
// against SizeLimit, so their sizes scale with it (docs/ARCHITECTURE.md):
// the WAL keeps about 1.1 x MemTableSize x (MemTableStopWritesThreshold + 2)
// of recycled log files, which at Pebble's defaults would swamp a 64 MiB
// cache.
//
// The memtable is a 256th of the limit, at least 2 MiB (Pebble's default,
// 4 MiB, is too much beside a 64 MiB limit): its recycled WAL files stay
// on disk after the data they logged is gone, so at a 1 GiB limit they
// take about 18 MiB whatever the cache holds.
//
// Lbase is kept small (a 32nd of the limit) and so are the files (a 512th).
// Keys are spread by hash, so every flushed L0 file spans a good part of
// the hash space, and its compaction into Lbase rewrites the same part of
// Lbase, all of it on disk beside its inputs until the output is done. At
// a 1 GiB limit Lbase used to hold 128 MiB in 8 MiB files: single L0->Lbase
// compactions of about a tenth of the limit made the directory peak at
// 1.11x as soon as the live share passed 0.7. With a 32 MiB Lbase of 2 MiB
// files the peak fell to 0.99x at 0.73 live (BenchmarkSizeLimit), at the
// cost of one more level. At 64 MiB Lbase is 2 MiB, not 8: an L0 that
// spans the whole hash space (two flushes, or the log a new owner replays
// after a crash) then rewrites 3% of the limit at once, not 12%.
//
// Pebble counts its memtables against its block cache: each one reserves
// its size there for as long as it lives, the one kept for reuse included.
// Given CacheSize alone, a cache at a 64 GiB limit (64 MiB memtables)
// had a block cache with no room at all and read every index, filter and
// data block from the page cache; at 1 GiB an eighth of it was gone. So
// Pebble gets CacheSize plus the memtables' reservations, and CacheSize
// is the block cache's whatever the limit; the memtables' memory is
// allocated as writes fill them.
func pebbleOptions(o *Options, d durability) *pebble.Options {
	limit := o.SizeLimit
	memtable := clamp(limit/256, 2<<20, 64<<20)
	targetFile := clamp(limit/512, 512<<10, 8<<20)
	po := &pebble.Options{
		CacheSize:                   o.CacheSize + memtablesReserved*memtable,
		FS:                          d.fs,
		FormatMajorVersion:          formatMajorVersion,
		MemTableSize:                uint64(memtable),
		MemTableStopWritesThreshold: 2,
		L0CompactionThreshold:       2,
		L0StopWritesThreshold:       8,
		LBaseMaxBytes:               clamp(limit/32, 2<<20, 256<<20),
		MaxManifestFileSize:         clamp(limit/64, 1<<20, 64<<20),
		FlushSplitBytes:             targetFile,
		Logger:                      pebbleLogger{o.Logger},
	}
	// Every level gets the same small files. Keys are spread by hash, so a
	// file of level n overlaps files holding the same share of the hash
	// space in level n+1, and a compaction keeps all its inputs until its
	// output is complete. Pebble's default doubles the size per level: at
	// a 64 MiB limit, L6 files of 4 MiB and more made single L5->L6
	// compactions of 20 MiB, a 1.3x overshoot of the limit (soak test).
	for i := range po.TargetFileSizes {
		po.TargetFileSizes[i] = targetFile
	}
	for i := range po.Levels {
		// Point lookups dominate a cache: a bloom filter saves a block read
		// on every level that does not hold the key, and on every Set (which
		// reads the old record to keep the counters exact).
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
		po.Levels[i].Compression = blockCompression
	}
	if !d.recycleLogs {
		po.Cleaner = noRecycleCleaner{Cleaner: pebble.DeleteCleaner{}}
	}
	// A compaction never takes in a third level: its output, which stays
	// on disk beside its inputs until it completes, must stay small.
	po.Experimental.MultiLevelCompactionHeuristic = pebble.NoMultiLevel{}
	po.EnsureDefaults()
	return po
}

// blockCompression is Pebble's "Fast" profile for every level: MinLZ
// (Snappy on arm64, where MinLZ has no assembly), and a block is kept
// compressed when that saves a tenth of it. Pebble's default, Snappy with
// an eighth, stored half the bytes of W1's tables raw (128-byte values,
// half of them text): their blocks, whose hashed keys share little,
// compress by 10-13% and fell short of the eighth by a little, so the
// tables took 148 bytes an entry against raw Pebble's 136 on its sorted
// keys. With this profile 139 (the same entries rewritten in one
// scratch store each: 148.4 / 140.5 / 138.9 / 137.5 bytes for Snappy,
// MinLZ at an eighth, this profile, Zstd level 1 adaptive), W1's
// directory 69.6 against 75.9 MiB, for about 5% of the Gets that miss
// the block cache, which now decompress blocks once stored raw (W2,
// alternated runs: 0.96x raw Pebble against 1.02-1.13x); Zstd took 122
// bytes but cost a third of those Gets. A registered profile, not one of our own
// (MinLZ at a twentieth saved 1% more): Options.Parse, and so Pebble's
// tools, know only registered names in the OPTIONS file.
func blockCompression() *sstable.CompressionProfile { return sstable.FastCompression }

// PebbleOptions returns the Pebble options and write options a cache with
// opts (nil for the defaults) uses for its store. It exists so that
// benchmarks can compare diskcache with raw Pebble configured the same way;
// the result is a fresh copy each call.
func PebbleOptions(opts *Options) (*pebble.Options, *pebble.WriteOptions) {
	o := opts.withDefaults()
	d := o.durability()
	return pebbleOptions(&o, d), d.write
}

// memtablesReserved is how many memtables hold a reservation in Pebble's
// cache once the store has been written for a while: the one being
// written and the one kept for reuse (or the one being flushed).
const memtablesReserved = 2

func clamp(v, lo, hi int64) int64 {
	return max(lo, min(v, hi))
}

// pebbleLogger sends Pebble's chatter to the debug level and its errors to
// the error level of our logger.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble on a broken internal invariant, after which it
// cannot go on; it panics like Pebble's default logger exits.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic(newPebbleFatal(msg, args)) // store.guard recovers it where it can (health.go)
}

// noRecycleCleaner deletes obsolete files, as Pebble's default cleaner
// does, and keeps Pebble from recycling its logs (durability.recycleLogs):
// Pebble recycles none when its cleaner needs the files' contents, which
// it asks by an unexported method that only ArchiveCleaner has. The
// embedded archiveMarker brings that method, one level deeper than the
// Clean of the embedded DeleteCleaner, which so is the one called.
// TestLogsNotRecycled fails if a Pebble upgrade changes either.
type noRecycleCleaner struct {
	pebble.Cleaner
	archiveMarker
}

type archiveMarker struct{ pebble.ArchiveCleaner }

func (noRecycleCleaner) String() string { return "delete" }
