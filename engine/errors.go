package engine

import "errors"

// Sentinel errors. Methods wrap them with the key or directory that failed;
// test for them with errors.Is.
var (
	// ErrNotFound is returned by Get (and friends) for a key that is missing
	// or has expired. It also has a NotFound method that returns true, so
	// that code which does not import this package (package manager, kept
	// free of Pebble) can recognise a miss.
	ErrNotFound error = notFound{}
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("diskcache: cache is closed")
	// ErrKeyTooLarge is returned for a key longer than MaxKeySize.
	ErrKeyTooLarge = errors.New("diskcache: key too large")
	// ErrValueTooLarge is returned for a value longer than the cache's
	// largest value (Options.MaxValueSize).
	ErrValueTooLarge = errors.New("diskcache: value too large")
	// ErrCorrupt is returned when a record or the store is damaged.
	ErrCorrupt = errors.New("diskcache: corrupt store")
	// ErrOwned is returned by Open when another process owns the directory
	// but does not answer on its socket within Options.HandoffWindow.
	ErrOwned = errors.New("diskcache: directory is owned by another process")
	// ErrStoreFailed is returned by every write after the store failed to
	// write its log (an I/O error, a full disk, a failed fsync): Pebble
	// takes no more writes until the store is reopened. Reads go on, and
	// the Cache reopens the store by itself once the disk takes writes
	// again (health.go, recover.go).
	ErrStoreFailed = errors.New("diskcache: store failed; it is reopened once the disk takes writes again")
	// ErrWritesSuspended is returned by writes while the store cannot
	// flush to disk (full or failing). Reads go on, and writes resume by
	// themselves once a flush succeeds. The error wraps the disk's, so
	// errors.Is(err, syscall.ENOSPC) tells a full disk.
	ErrWritesSuspended = errors.New("diskcache: writes suspended")
	// ErrNotInteger is returned by IncrBy for a value that is not a
	// decimal int64.
	ErrNotInteger = errors.New("diskcache: value is not an integer or out of range")
	// ErrOverflow is returned by IncrBy for a result past the int64 range.
	ErrOverflow = errors.New("diskcache: increment or decrement would overflow")
	// ErrIncompatible is returned by Open when the directory's owner runs a
	// version of diskcache whose private protocol (contract.go) differs
	// from this one's: every process sharing a directory must run the same
	// version.
	ErrIncompatible = errors.New("diskcache: the owner runs an incompatible version of diskcache")
)

type notFound struct{}

func (notFound) Error() string  { return "diskcache: key not found" }
func (notFound) NotFound() bool { return true }
