package resp

import (
	"context"
	"time"
)

// Store is what the handler serves: a cache with Redis string semantics.
// The engine's Cache provides one (package engine cannot be imported here:
// it imports this package to serve its socket), so results say "missing"
// with an ok flag instead of a sentinel error. Every method is atomic with
// respect to the others on the same key.
type Store interface {
	// Get returns the value of key; ok is false when it is missing or expired.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	// GetMany returns the values of keys in order; nil for a missing key,
	// so a present empty value must be a non-nil empty slice.
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
	// TTL returns the time key has left; ok is false when it is missing,
	// ttl is 0 when it never expires.
	TTL(ctx context.Context, key string) (ttl time.Duration, ok bool, err error)
	// Exists reports whether key is present.
	Exists(ctx context.Context, key string) (bool, error)
	// Set stores value under key as SET does, with its NX, XX, GET, KEEPTTL
	// and expiry options.
	Set(ctx context.Context, key string, value []byte, opts SetOptions) (SetResult, error)
	// SetMany stores all entries atomically (MSET); with onlyIfNoneExist it
	// stores nothing if any key exists (MSETNX) and reports whether it wrote.
	SetMany(ctx context.Context, entries []Entry, onlyIfNoneExist bool) (written bool, err error)
	// Delete removes keys and returns how many were present.
	Delete(ctx context.Context, keys ...string) (int, error)
	// GetDelete returns the value of key and removes it (GETDEL).
	GetDelete(ctx context.Context, key string) (value []byte, ok bool, err error)
	// GetExpire returns the value of key and changes its expiry as e says
	// (GETEX); a zero Expiry leaves the expiry alone.
	GetExpire(ctx context.Context, key string, e Expiry) (value []byte, ok bool, err error)
	// Expire changes the expiry of key (EXPIRE, PEXPIRE, EXPIREAT,
	// PEXPIREAT, PERSIST) and reports whether it did: false for a missing
	// key, and for Persist on a key without an expiry. An expiry time not
	// in the future deletes the key (and reports true).
	Expire(ctx context.Context, key string, e Expiry) (bool, error)
	// IncrBy adds delta to the integer stored under key (a missing key is
	// 0), keeping its expiry, and returns the new value. A value that is not
	// a decimal int64, or a result that overflows, is an error wrapping
	// ErrNotInteger or ErrOverflow.
	IncrBy(ctx context.Context, key string, delta int64) (int64, error)
	// Append appends suffix to the value of key (creating it), keeping its
	// expiry, and returns the new length.
	Append(ctx context.Context, key string, suffix []byte) (int, error)
	// Len returns the number of entries (DBSIZE).
	Len(ctx context.Context) (int64, error)
	// Clear removes every entry (FLUSHDB, FLUSHALL).
	Clear(ctx context.Context) error
	// Scan returns up to about count keys from cursor on (0 starts), and
	// the cursor to continue from (0 when done). Every key present for the
	// whole scan is returned at least once. match is a Redis glob pattern
	// (see Match), applied to the keys Scan visits ("" matches all).
	Scan(ctx context.Context, cursor uint64, match string, count int) (keys []string, next uint64, err error)
	// Info returns the figures INFO reports, by section ("server",
	// "clients" is the handler's own, "stats", "keyspace", "persistence"),
	// as ordered name/value pairs.
	Info(ctx context.Context) (map[string][][2]string, error)
}

// SetOptions are SET's options.
type SetOptions struct {
	Expiry  Expiry // when the entry expires; zero: never (unless KeepTTL)
	KeepTTL bool   // keep the old entry's expiry (KEEPTTL)
	NX      bool   // only if key is missing
	XX      bool   // only if key is present
	Get     bool   // return the old value (GET)
}

// SetResult is what Set did.
type SetResult struct {
	Written bool   // false when NX or XX stopped the write
	Old     []byte // the old value, when SetOptions.Get
	HadOld  bool   // the key was present before
}

// Expiry is a change of expiry: a time to live, an absolute time, or
// Persist to remove the expiry. The zero value changes nothing.
type Expiry struct {
	TTL     time.Duration // > 0: expire this long from now
	At      time.Time     // non-zero: expire at this time
	Persist bool          // remove the expiry
}

// IsZero reports whether e changes nothing.
func (e Expiry) IsZero() bool { return e.TTL == 0 && e.At.IsZero() && !e.Persist }

// Entry is one key and value for SetMany.
type Entry struct {
	Key   string
	Value []byte
}
