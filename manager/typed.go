package manager

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// Get returns the value stored under key as a T. A missing, expired or
// invalidated key gives ErrNotFound; a value written as another type gives
// ErrWrongType.
//
// []byte, string, bool, the integer and float types, []float32 and
// []float64 have fixed encodings; integers read back as any integer type
// that holds them exactly. Other types are stored as CBOR and read back as
// the same Go type; an interface type such as any reads whatever was
// stored, structured values as map[string]any and []any.
func Get[T any](ctx context.Context, m *Manager, key Key) (T, error) {
	e, c, err := m.lookup(ctx, key)
	if err != nil {
		var zero T
		return zero, err
	}
	return decodeHit[T](m, c, key, e)
}

// Set stores v under key with its kind's default time to live, unless a
// WithTTL option says otherwise, and with the tags of WithTags options.
// The entry carries its tags' versions as Set reads them before storing: an
// InvalidateTag that runs meanwhile invalidates it too.
func Set[T any](ctx context.Context, m *Manager, key Key, v T, opts ...SetOption) error {
	so, err := m.setOptions(key, opts)
	if err != nil {
		return err
	}
	stamps, err := m.stamps(ctx, so)
	if err != nil {
		m.counters(key.Kind).errors.Add(1)
		return fmt.Errorf("manager: set %q: %w", key.Name, err)
	}
	p := bufPool.Get().(*[]byte)
	defer putBuf(p)
	enc, err := appendValue((*p)[:0], v, stamps, m.compress, m.minSize)
	*p = enc
	if err != nil {
		m.counters(key.Kind).errors.Add(1)
		return fmt.Errorf("manager: set %q: %w", key.Name, err)
	}
	return m.store(ctx, key, enc, so)
}

// GetOrSet returns the value stored under key or, on a miss, computes it
// with fn, stores it (with opts, as Set does) and returns it.
//
// However many goroutines of this process ask for key at once, fn runs
// once and they all share its value, each decoding its own copy. fn gets
// the first caller's context without its cancellation, so one caller
// giving up does not fail the others; each caller stops waiting when its
// own context ends. Processes sharing a backend coordinate only through
// the stored value: each may compute a key missing in all of them once.
//
// With tags, the tags' versions are read before fn runs, so a value
// computed while one of them is invalidated is stored already invalid: it
// cannot outlive the invalidation that was meant to remove it.
//
// An error from fn is returned to every caller waiting on that run and is
// not cached: the next call runs fn again. A panic in fn panics in the
// first caller and fails the others with an error.
//
// The cache fails open: when reading the stored value fails (the backend
// is down, the value has another type or is damaged), GetOrSet computes
// the value anyway and overwrites it; when storing fails, it still
// returns the value and logs the error. Only ctx ending, fn failing or a
// value that cannot be encoded make it fail.
func GetOrSet[T any](ctx context.Context, m *Manager, key Key, fn func(context.Context) (T, error), opts ...SetOption) (T, error) {
	var zero T
	so, err := m.setOptions(key, opts)
	if err != nil {
		return zero, err
	}
	v, err := Get[T](ctx, m, key)
	if err == nil {
		return v, nil
	}
	if ctx.Err() != nil {
		return zero, ctx.Err()
	}
	if !isNotFound(err) {
		m.log.WarnContext(ctx, "manager: GetOrSet recomputes after a failed read", "key", key.Name, "err", err)
	}

	// The flight runs on a goroutine of its own; led and mine are read only
	// after the result arrives on the channel, which orders the accesses.
	var (
		led  bool
		mine T
	)
	ch := m.flight.DoChan(key.Name, func() (res any, err error) {
		led = true
		defer func() {
			if r := recover(); r != nil {
				err = &panicError{value: r, stack: debug.Stack()}
			}
		}()
		fctx := context.WithoutCancel(ctx)
		// Another flight may have stored the value since our read missed.
		if b, err := m.b.Get(fctx, key.Name); err == nil {
			if e, err := m.checked(fctx, key, m.counters(key.Kind), b); err == nil {
				if v, err := decodeValue[T](e, m.codec); err == nil {
					mine = v
					return b, nil
				}
			}
		}
		// Across processes: one computes under a lease, the others wait for
		// what it stores.
		if a, ok := m.b.(Adder); ok {
			stored, release := m.leaseOrWait(fctx, a, key)
			if stored != nil {
				if e, err := m.checked(fctx, key, m.counters(key.Kind), stored); err == nil {
					if v, err := decodeValue[T](e, m.codec); err == nil {
						mine = v
						return stored, nil
					}
				}
			}
			if release != nil {
				defer release()
			}
		}
		// Tag versions are read before fn runs: if a tag is invalidated
		// while fn computes (from data the invalidation made stale), the
		// entry carries the old version and reads as a miss.
		stamps, err := m.stamps(fctx, so)
		if err != nil {
			m.log.WarnContext(fctx, "manager: GetOrSet could not read tag versions", "key", key.Name, "err", err)
		}
		v, err := fn(fctx)
		if err != nil {
			return nil, err
		}
		mine = v
		if stamps == nil && len(so.tags) > 0 {
			// Reading the versions failed: the value is returned, but not
			// stored untagged, which InvalidateTag could not reach.
			return appendValue(nil, v, nil, nil, 0)
		}
		enc, err := appendValue(nil, v, stamps, m.compress, m.minSize)
		if err != nil {
			m.counters(key.Kind).errors.Add(1)
			return nil, fmt.Errorf("manager: set %q: %w", key.Name, err)
		}
		if err := m.store(fctx, key, enc, so); err != nil {
			m.log.WarnContext(fctx, "manager: GetOrSet could not store a computed value", "key", key.Name, "err", err)
		}
		return enc, nil
	})
	select {
	case r := <-ch:
		if pe, ok := r.Err.(*panicError); ok && led {
			panic(pe.value)
		}
		if r.Err != nil {
			return zero, r.Err
		}
		if led {
			return mine, nil
		}
		// Each waiter decodes its own copy, so that no two callers share a
		// slice or map that one of them might change.
		e, err := parseEnvelope(bytes.Clone(r.Val.([]byte)))
		if err != nil {
			return zero, fmt.Errorf("manager: get %q: %w", key.Name, err)
		}
		v, err := decodeValue[T](e, m.codec)
		if err != nil {
			return zero, fmt.Errorf("manager: get %q: %w", key.Name, err)
		}
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// panicError carries a panic out of a GetOrSet flight.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("manager: GetOrSet function panicked: %v\n\n%s", p.value, p.stack)
}

// GetMany returns the values stored under keys as T, by key name; missing,
// expired and invalidated keys are left out. It reads all keys in one call
// when the backend implements BatchGetter. A value that fails to decode as
// a T fails the whole call.
func GetMany[T any](ctx context.Context, m *Manager, keys []Key) (map[string]T, error) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	got, err := m.getMany(ctx, names)
	if err != nil {
		for _, k := range keys {
			m.counters(k.Kind).errors.Add(1)
		}
		return nil, fmt.Errorf("manager: get %d keys: %w", len(keys), err)
	}
	out := make(map[string]T, len(got))
	for _, k := range keys {
		c := m.counters(k.Kind)
		b, ok := got[k.Name]
		if !ok {
			c.misses.Add(1)
			continue
		}
		e, err := m.checked(ctx, k, c, b)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := decodeHit[T](m, c, k, e)
		if err != nil {
			return nil, err
		}
		out[k.Name] = v
	}
	return out, nil
}

// bufPool holds encoding buffers for Set: backends do not keep the value
// after Set returns, so the buffer can serve the next call.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// putBuf returns a buffer to the pool unless it grew large: a few big
// values must not pin their buffers for the life of the process.
func putBuf(p *[]byte) {
	if cap(*p) <= 64<<10 {
		bufPool.Put(p)
	}
}
