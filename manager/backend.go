package manager

import (
	"context"
	"time"
)

// Backend stores byte values under string keys, each with its own time to
// live. The manager adds keys, typed values, stampede protection, tags and
// stats on top of any Backend. Subpackages hold the implementations: disk
// (the engine), memory, redis and tiered; package backendtest checks a
// Backend against this contract:
//
//   - Get of a missing or expired key returns an error matching ErrNotFound,
//     or one with a NotFound() bool method that returns true (as the
//     engine's does).
//   - A ttl <= 0 means the entry never expires; Set replaces the value and
//     the time to live of an existing entry.
//   - Set does not keep value after it returns, and Get returns a slice the
//     caller owns. An empty value is a value: Get returns it as a non-nil
//     empty slice.
//   - Any string is a key, the empty one included, up to a limit the
//     backend documents.
//   - Delete of a missing key is not an error.
//   - Close is idempotent; every other call fails with ErrClosed after it.
//   - Every method is safe for concurrent use; a call whose context is done
//     fails with the context's error.
//
// *engine.Cache has this method set. Package disk wraps it so that its
// sentinel errors also match this package's (see disk.Open).
type Backend interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
	Exists(ctx context.Context, key string) (bool, error)
	Clear(ctx context.Context) error
	Close() error
}

// Entry is one key and value for BatchSetter.SetMany.
type Entry struct {
	Key   string
	Value []byte
	TTL   time.Duration // <= 0: never expires
}

// BatchGetter is implemented by backends that read many keys in one call
// (one round trip to Redis, one pass over the store on disk).
type BatchGetter interface {
	// GetMany returns the values of the keys that are present, by key;
	// missing and expired keys are left out.
	GetMany(ctx context.Context, keys []string) (map[string][]byte, error)
}

// BatchSetter is implemented by backends that write many entries in one
// call. When a key appears twice, the last entry wins.
type BatchSetter interface {
	SetMany(ctx context.Context, entries []Entry) error
}

// TTLGetter is implemented by backends that can tell how long an entry has
// left. Package tiered uses it so that a copy in the front tier never
// outlives the entry behind it.
type TTLGetter interface {
	// GetWithTTL is Get that also returns the time the entry has left to
	// live; 0 means it never expires.
	GetWithTTL(ctx context.Context, key string) ([]byte, time.Duration, error)
}
