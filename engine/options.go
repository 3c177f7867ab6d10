package engine

import (
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/ttl"
)

// MaxKeySize is the longest key a cache accepts. Any bytes, including the
// empty string, make a key.
const MaxKeySize = 64 << 10

const (
	defaultSizeLimit     = 1 << 30
	defaultSweepInterval = time.Minute
	defaultCacheSize     = 64 << 20
	// defaultHotTierSize and maxDefaultHotTierSize bound the tier the
	// owner makes by default when a second process connects: sized then
	// for what the store holds (sharedTierSize), so that a pool of workers
	// reads a store of up to about 500,000 small values from memory
	// without a round trip. Its pages are allocated as values fill them.
	defaultHotTierSize    = 64 << 20
	maxDefaultHotTierSize = 256 << 20
	// defaultLoneTierSize is the largest tier of a process that has its
	// directory to itself; it is at most a quarter of CacheSize and is
	// taken out of the block cache while it is awake, so that the
	// process's memory stays what the same store costs in Pebble alone
	// (tier.go).
	defaultLoneTierSize = 16 << 20
	// maxValueFraction: a value may take at most 1/16 of the size limit. A
	// bigger value would evict a good part of the cache on its own, and
	// Pebble's memtables are sized from the limit too.
	maxValueFraction = 16
	maxValueCeiling  = 256 << 20
)

// Options configure a Cache. A nil *Options and the zero value are the
// defaults, which suit a cache of about a gigabyte that survives kill -9.
type Options struct {
	// SizeLimit is the most bytes the cache keeps on disk in its directory,
	// as du sees it. 0 means 1 GiB. Pebble's memtables, WAL and file sizes
	// are derived from it.
	SizeLimit int64
	// SweepInterval is how often expired entries are deleted in the
	// background and their space given back. 0 means 1 minute.
	SweepInterval time.Duration
	// Sync makes every write fsync before it returns (with group commit),
	// so that it survives power loss. Without it, a write that returned has
	// reached the operating system and survives the process being killed.
	Sync bool
	// FlushInterval, when positive and Sync is false, lets writes return
	// before they reach the operating system: they are pushed out at least
	// every FlushInterval. A kill -9 may lose the writes of the last
	// interval; in return writes are about twice as fast.
	FlushInterval time.Duration

	// CacheSize is the memory in bytes a process's store keeps cached
	// data in: Pebble's block cache and, while the process has the
	// directory to itself with the default HotTierSize, the hot tier,
	// which takes a quarter of it while its reads pay for it. 0 means
	// 64 MiB.
	CacheSize int64
	// Compression of values; the zero value is S2. Values shorter than
	// CompressMinSize (0 means 512 bytes) are stored as they are, and a
	// value is only stored compressed when that saves at least 1/8.
	Compression     codec.Compression
	CompressMinSize int
	// MaxValueSize is the largest value Set accepts. 0 means 1/16 of
	// SizeLimit, at most 256 MiB; a larger setting is lowered to that.
	MaxValueSize int
	// ValueThreshold is the size from which a value is kept in a value log
	// beside Pebble (store/values/) rather than in Pebble itself: written
	// once instead of once per compaction, and freed a segment at a time.
	// 0 means 1 KiB; negative keeps new values in Pebble (values already in
	// the log stay readable there).
	ValueThreshold int

	// HotTierSize is the size in bytes of the hot tier: the values read
	// last, in memory that every process of the directory maps, so that a
	// hot key is read without the store and without a round trip to the
	// owner. There is one per directory, made by the owner with its own
	// setting (the others' is not used). It is coherent: once a write has
	// returned in any process, no process returns the value it replaced.
	// 0 means, once a second process connects, a tier sized for what the
	// store holds then (512 bytes a key or 1.6 bytes a byte stored,
	// whichever is more, up to a power of two: 64 MiB to 256 MiB), and a
	// quarter of CacheSize, at most 16 MiB, while one process has the
	// directory to itself: there the tier stands in front of Pebble's block cache, so
	// it takes its memory out of the block cache rather than adding to
	// it, and only while a simulation of it on a sample of the reads
	// shows it hits enough to pay for that (tierjudge.go); otherwise it
	// is dormant and the block cache has all of CacheSize. A size set
	// here is made from the start, on top of CacheSize.
	// Negative turns it off.
	HotTierSize int64

	// LocalCacheSize was the size of a forwarding process's private cache
	// of the values it read, which the hot tier replaced (HotTierSize).
	// It is kept so that code setting it still builds and means what it
	// meant: negative turns off this process's reads from the tier, so that
	// each of its reads asks the owner; any other value changes nothing.
	LocalCacheSize int64

	// HandoffWindow bounds how long a call waits while the directory
	// changes owner (the owner closed or died, and a process takes over),
	// and how long Open waits for an owner that is starting up. 0 means
	// 5 seconds.
	HandoffWindow time.Duration

	// Clock tells the time for expiry; nil means the system clock. Tests
	// pass a *ttl.ManualClock.
	Clock ttl.Clock
	// Logger receives the cache's notable events (and Pebble's, at debug
	// level). nil means slog.Default().
	Logger *slog.Logger

	// ResetIfDamaged lets Open delete and recreate the store of a damaged
	// cache (Open failed with ErrCorrupt: a truncated or corrupt Pebble
	// file, a missing file, a store of an unknown format) instead of
	// failing: a cache can be rebuilt from its source. Only the store/
	// folder is deleted, never other files in the directory, and only for
	// damage, never for an I/O error such as a full disk. The reset is
	// logged. diskcache check --repair does the same on demand.
	ResetIfDamaged bool

	// fs, when set, is the file system Pebble works on instead of the
	// operating system's; tests set it to inject faults (fault_test.go).
	fs vfs.FS
	// unlimited keeps Pebble's options derived from SizeLimit but never
	// evicts, compacts for room or holds writers back: benchmarks compare
	// the size-limited cache with the same cache without a limit.
	unlimited bool
}

// filesystem is the file system the cache works on: the operating
// system's unless a test set fs.
func (o *Options) filesystem() vfs.FS {
	if o.fs == nil {
		return vfs.Default
	}
	return o.fs
}

// withDefaults returns a copy of o (which may be nil) with every zero field
// set to its default.
func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.SizeLimit <= 0 {
		r.SizeLimit = defaultSizeLimit
	}
	if r.SweepInterval <= 0 {
		r.SweepInterval = defaultSweepInterval
	}
	if r.CacheSize <= 0 {
		r.CacheSize = defaultCacheSize
	}
	maxValue := r.SizeLimit / maxValueFraction
	if maxValue > maxValueCeiling {
		maxValue = maxValueCeiling
	}
	if r.MaxValueSize <= 0 || int64(r.MaxValueSize) > maxValue {
		r.MaxValueSize = int(maxValue)
	}
	if r.ValueThreshold == 0 {
		r.ValueThreshold = defaultValueThreshold
	}
	if r.HandoffWindow <= 0 {
		r.HandoffWindow = 5 * time.Second
	}
	if r.Clock == nil {
		r.Clock = ttl.SystemClock{}
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return r
}
