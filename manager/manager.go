package manager

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/diskcache-go/diskcache/codec"
)

// DefaultMaxValueSize is the largest value the manager decodes when
// Options.MaxValueSize is 0: the engine's own ceiling. It bounds what a
// damaged or hostile stored value can make the manager allocate.
const DefaultMaxValueSize = 256 << 20

// DefaultTTLs returns the built-in time to live of each kind; Options.TTLs
// overrides them. It returns a new map on every call.
func DefaultTTLs() map[Kind]time.Duration {
	return map[Kind]time.Duration{
		KindEmbedding: 24 * time.Hour,
		KindRetrieval: time.Hour,
		KindContext:   30 * time.Minute,
		KindResponse:  10 * time.Minute,
	}
}

// Options configure a Manager. A nil *Options and the zero value are the
// defaults: no namespace, the built-in TTLs per kind, no expiry for other
// kinds, no compression.
type Options struct {
	// Namespace is where the manager builds keys (Keys) and keeps its tags.
	Namespace string
	// TTLs sets the default time to live of kinds, over DefaultTTLs. A
	// duration of 0 means never expires; a negative one is an error.
	TTLs map[Kind]time.Duration
	// DefaultTTL is the default time to live of the kinds that neither TTLs
	// nor DefaultTTLs name, raw keys without a kind included. 0 means never
	// expires.
	DefaultTTL time.Duration

	// Compress compresses values of at least CompressMinSize bytes (0 means
	// codec.DefaultMinSize) with Compression (the zero value is S2) before
	// they reach the backend, and keeps the result only when it saves an
	// eighth. It pays off for the memory and Redis backends; the disk
	// engine already compresses records itself.
	Compress        bool
	Compression     codec.Compression
	CompressMinSize int
	// MaxValueSize is the largest value the manager decompresses; 0 means
	// DefaultMaxValueSize.
	MaxValueSize int

	// Logger receives what GetOrSet cannot report through its result: a
	// value it computed but failed to store. nil means slog.Default().
	Logger *slog.Logger
}

// Manager puts namespaced keys, typed values, GetOrSet with stampede
// protection, tags and per-kind stats on top of a Backend. It is safe for
// concurrent use. Read and write values with the package's generic
// functions: Get, Set, GetOrSet, GetMany.
type Manager struct {
	b          Backend
	batch      BatchGetter // b as a BatchGetter, or nil
	keys       KeyBuilder
	ttls       map[Kind]time.Duration // read-only after New
	defaultTTL time.Duration
	codec      *codec.Codec // decodes compressed values; nil-safe only when never asked
	compress   *codec.Codec // nil when Options.Compress is off
	minSize    int
	log        *slog.Logger

	flight singleflight.Group
	kinds  sync.Map // Kind -> *counters
}

// New returns a Manager over b. The Manager owns b: its Close closes b.
func New(b Backend, opts *Options) (*Manager, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if b == nil {
		return nil, fmt.Errorf("manager: nil backend")
	}
	ttls := DefaultTTLs()
	for k, d := range o.TTLs {
		if err := k.check(); err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, fmt.Errorf("manager: negative TTL %v for kind %q", d, k)
		}
		ttls[k] = d
	}
	if o.DefaultTTL < 0 {
		return nil, fmt.Errorf("manager: negative DefaultTTL %v", o.DefaultTTL)
	}
	if o.MaxValueSize < 0 {
		return nil, fmt.Errorf("manager: negative MaxValueSize %d", o.MaxValueSize)
	}
	if o.MaxValueSize == 0 {
		o.MaxValueSize = DefaultMaxValueSize
	}
	cd, err := codec.New(codec.Config{
		Compression: o.Compression,
		MinSize:     o.CompressMinSize,
		MaxValue:    o.MaxValueSize,
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	m := &Manager{
		b:          b,
		keys:       KeyBuilder{Namespace: o.Namespace},
		ttls:       ttls,
		defaultTTL: o.DefaultTTL,
		codec:      cd,
		log:        o.Logger,
	}
	m.batch, _ = b.(BatchGetter)
	if o.Compress {
		m.compress = cd
		m.minSize = o.CompressMinSize
		if m.minSize == 0 {
			m.minSize = codec.DefaultMinSize
		}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m, nil
}

// Backend returns the backend the manager stores values in.
func (m *Manager) Backend() Backend { return m.b }

// Keys returns the KeyBuilder of the manager's namespace.
func (m *Manager) Keys() KeyBuilder { return m.keys }

// Key is m.Keys().Key(kind, parts...).
func (m *Manager) Key(kind Kind, parts ...any) (Key, error) { return m.keys.Key(kind, parts...) }

// TTL returns the default time to live of kind; 0 means never expires.
func (m *Manager) TTL(kind Kind) time.Duration {
	if d, ok := m.ttls[kind]; ok {
		return d
	}
	return m.defaultTTL
}

// Delete removes key. Deleting a missing key is not an error.
func (m *Manager) Delete(ctx context.Context, key Key) error {
	c := m.counters(key.Kind)
	if err := m.b.Delete(ctx, key.Name); err != nil {
		c.errors.Add(1)
		return fmt.Errorf("manager: delete %q: %w", key.Name, err)
	}
	c.deletes.Add(1)
	return nil
}

// Exists reports whether a Get of key would find a value: present, not
// expired, and not invalidated through one of its tags.
func (m *Manager) Exists(ctx context.Context, key Key) (bool, error) {
	b, err := m.b.Get(ctx, key.Name)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		m.counters(key.Kind).errors.Add(1)
		return false, fmt.Errorf("manager: exists %q: %w", key.Name, err)
	}
	e, err := parseEnvelope(b)
	if err != nil {
		// There is a value; Get reports what is wrong with it.
		return true, nil
	}
	return m.checkStamps(ctx, key, e.stamps)
}

// Clear deletes every entry of the backend, those of other namespaces
// included, with the backend's own Clear.
func (m *Manager) Clear(ctx context.Context) error {
	if err := m.b.Clear(ctx); err != nil {
		return fmt.Errorf("manager: clear: %w", err)
	}
	return nil
}

// Close closes the backend. It is idempotent.
func (m *Manager) Close() error { return m.b.Close() }

// SetOption adjusts one Set or GetOrSet.
type SetOption struct {
	ttl    time.Duration
	hasTTL bool
	tags   []string
}

// WithTTL sets the entry's time to live instead of its kind's default; 0
// means it never expires, and a negative duration is an error.
func WithTTL(d time.Duration) SetOption { return SetOption{ttl: d, hasTTL: true} }

// WithTags tags the entry, so that InvalidateTag of any of them removes it.
func WithTags(tags ...string) SetOption { return SetOption{tags: tags} }

// setOptions is the merged effect of a call's options.
type setOptions struct {
	ttl  time.Duration
	tags []string
}

func (m *Manager) setOptions(key Key, opts []SetOption) (setOptions, error) {
	so := setOptions{ttl: m.TTL(key.Kind)}
	for _, o := range opts {
		if o.hasTTL {
			if o.ttl < 0 {
				return setOptions{}, fmt.Errorf("manager: set %q: negative TTL %v", key.Name, o.ttl)
			}
			so.ttl = o.ttl
		}
		for _, t := range o.tags {
			if t == "" {
				return setOptions{}, fmt.Errorf("manager: set %q: empty tag", key.Name)
			}
			if !contains(so.tags, t) {
				so.tags = append(so.tags, t)
			}
		}
	}
	return so, nil
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// stamps returns the current versions of so's tags, nil when it has none.
func (m *Manager) stamps(ctx context.Context, so setOptions) ([]stamp, error) {
	if len(so.tags) == 0 {
		return nil, nil
	}
	return m.tagVersions(ctx, so.tags)
}

// store writes an encoded value.
func (m *Manager) store(ctx context.Context, key Key, enc []byte, so setOptions) error {
	err := m.b.Set(ctx, key.Name, enc, so.ttl)
	c := m.counters(key.Kind)
	if err != nil {
		c.errors.Add(1)
		return fmt.Errorf("manager: set %q: %w", key.Name, err)
	}
	c.sets.Add(1)
	return nil
}

// lookup reads key and returns its envelope, checked against its tags (an
// entry written before one of its tags was invalidated is a miss), and the
// counters of its kind.
func (m *Manager) lookup(ctx context.Context, key Key) (envelope, *counters, error) {
	c := m.counters(key.Kind)
	b, err := m.b.Get(ctx, key.Name)
	if err != nil {
		if isNotFound(err) {
			c.misses.Add(1)
			return envelope{}, c, ErrNotFound
		}
		c.errors.Add(1)
		return envelope{}, c, fmt.Errorf("manager: get %q: %w", key.Name, err)
	}
	e, err := m.checked(ctx, key, c, b)
	return e, c, err
}

// checked parses b, the stored value of key, and checks its stamps.
func (m *Manager) checked(ctx context.Context, key Key, c *counters, b []byte) (envelope, error) {
	e, err := parseEnvelope(b)
	if err != nil {
		c.errors.Add(1)
		return envelope{}, fmt.Errorf("manager: get %q: %w", key.Name, err)
	}
	if len(e.stamps) > 0 {
		ok, err := m.checkStamps(ctx, key, e.stamps)
		if err != nil {
			c.errors.Add(1)
			return envelope{}, err
		}
		if !ok {
			c.misses.Add(1)
			return envelope{}, ErrNotFound
		}
	}
	return e, nil
}

// decodeHit decodes a looked-up value and counts the hit or the error in c.
func decodeHit[T any](m *Manager, c *counters, key Key, e envelope) (T, error) {
	v, err := decodeValue[T](e, m.codec)
	if err != nil {
		c.errors.Add(1)
		var zero T
		return zero, fmt.Errorf("manager: get %q: %w", key.Name, err)
	}
	c.hits.Add(1)
	return v, nil
}
