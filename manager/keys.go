package manager

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// Kind names what a cache entry holds. It picks the entry's default time to
// live and the stats bucket, and it is the middle part of a built key. A kind
// is made of ASCII letters, digits, '_', '-' and '.'.
type Kind string

// The kinds of an LLM application, with default times to live (see
// Options.TTLs): embeddings are deterministic and expensive, so they live
// long; responses go stale fastest.
const (
	KindEmbedding Kind = "embedding" // 24h
	KindRetrieval Kind = "retrieval" // 1h
	KindContext   Kind = "context"   // 30m
	KindResponse  Kind = "response"  // 10m
)

// Key is a cache key: the backend key and the kind of value it names. Build
// one with a KeyBuilder, or pass a string through with KeyBuilder.Raw.
type Key struct {
	Kind Kind
	Name string // the key as the backend stores it
}

// String returns the backend key.
func (k Key) String() string { return k.Name }

// KeyBuilder makes keys of the form namespace:kind:hash, where hash is 128
// bits of SHA-256 over a canonical encoding of the parts, so the same parts
// always give the same key and different parts practically never collide.
// A cryptographic hash keeps a caller who controls the parts (a prompt, a
// query) from crafting a collision with someone else's entry.
//
// The zero value builds keys without a namespace (kind:hash).
type KeyBuilder struct {
	// Namespace starts every key, followed by ':'. It is used as it is: it
	// may hold ':' to nest namespaces. Tenant appends escaped parts to it.
	Namespace string
}

// Tenant returns a KeyBuilder for a sub-namespace of b: namespace:tenant. The
// tenant ID is escaped ('%' and ':' become %25 and %3A), so any string is a
// safe tenant ID and no tenant's keys can be spelled by another tenant.
func (b KeyBuilder) Tenant(id string) KeyBuilder {
	return KeyBuilder{Namespace: b.prefix() + escapePart(id)}
}

// Key returns the key of kind for parts. Parts may be any values CBOR can
// encode: strings, numbers, booleans, []byte, time.Time, slices, maps and
// structs of those. They are encoded in CBOR's core deterministic form (map
// keys sorted, shortest numbers), so maps with the same contents give the
// same key whatever their iteration order; an int and a float with the same
// value give different keys, as do a string and a []byte. Times are encoded
// in UTC, so one instant gives one key whatever its time zone.
func (b KeyBuilder) Key(kind Kind, parts ...any) (Key, error) {
	if err := kind.check(); err != nil {
		return Key{}, err
	}
	if parts == nil {
		parts = []any{} // no parts encode as an empty array, as parts... of an empty slice do
	}
	enc, err := keyEncoding.Marshal(parts)
	if err != nil {
		return Key{}, fmt.Errorf("manager: key parts of kind %q: %w", kind, err)
	}
	h := sha256.New()
	h.Write([]byte(keyDomain))
	h.Write(enc)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	pre := b.prefix()
	var sb strings.Builder
	sb.Grow(len(pre) + len(kind) + 1 + 2*keyHashBytes)
	sb.WriteString(pre)
	sb.WriteString(string(kind))
	sb.WriteByte(':')
	var hexed [2 * keyHashBytes]byte
	hex.Encode(hexed[:], sum[:keyHashBytes])
	sb.Write(hexed[:])
	return Key{Kind: kind, Name: sb.String()}, nil
}

// MustKey is Key that panics on an error: for parts whose types are fixed in
// the code, where an error can only be a programming mistake.
func (b KeyBuilder) MustKey(kind Kind, parts ...any) Key {
	k, err := b.Key(kind, parts...)
	if err != nil {
		panic(err)
	}
	return k
}

// Raw returns a key whose name is exactly name: no namespace, no hash. The
// kind still picks the default time to live and the stats bucket. Use it to
// share keys with programs that do not build them this way.
func (b KeyBuilder) Raw(kind Kind, name string) Key {
	return Key{Kind: kind, Name: name}
}

// prefix returns the namespace followed by ':', or "" without a namespace.
func (b KeyBuilder) prefix() string {
	if b.Namespace == "" {
		return ""
	}
	return b.Namespace + ":"
}

const (
	// keyHashBytes is the hash length in a key: 128 bits, printed as 32 hex
	// digits. A birthday collision takes about 2^64 keys.
	keyHashBytes = 16
	// keyDomain starts the hashed bytes so that a future encoding of the
	// parts can never produce this one's hashes.
	keyDomain = "diskcache/manager/key/v1\x00"
)

// keyEncoding is CBOR's core deterministic encoding: the same parts always
// give the same bytes. It is immutable once built.
var keyEncoding = func() cbor.EncMode {
	o := cbor.CoreDetEncOptions()
	o.Time = cbor.TimeRFC3339NanoUTC
	em, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// check reports whether k can be the middle part of a key: it must not be
// empty or hold ':', or keys of different kinds could read alike.
func (k Kind) check() error {
	if k == "" {
		return fmt.Errorf("manager: empty kind")
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("manager: kind %q: only ASCII letters, digits, '_', '-' and '.' are allowed", string(k))
		}
	}
	return nil
}

// escapePart escapes '%' and ':' so that a part never adds a level to a key.
func escapePart(s string) string {
	if !strings.ContainsAny(s, "%:") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			sb.WriteString("%25")
		case ':':
			sb.WriteString("%3A")
		default:
			sb.WriteByte(s[i])
		}
	}
	return sb.String()
}
