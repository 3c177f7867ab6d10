// Package manager is the application-facing side of diskcache: typed values
// under namespaced keys, with GetOrSet, tags and per-kind stats, on any
// Backend.
//
//	backend, _ := disk.Open(dir, nil) // or memory.New, redis.Dial, tiered.New
//	m, _ := manager.New(backend, &manager.Options{Namespace: "app"})
//	key := m.Keys().MustKey(manager.KindResponse, model, prompt)
//	answer, err := manager.GetOrSet(ctx, m, key, func(ctx context.Context) (Answer, error) {
//		return callTheModel(ctx, model, prompt)
//	})
//
// # Backends
//
// The backends live in subpackages so that a program links only what it
// imports: disk (the Pebble engine: persistent, bounded by size), memory
// (otter: bounded, in process), redis (rueidis: shared past one machine)
// and tiered (a memory tier in front of any other). This package itself
// imports none of them. Package backendtest holds the conformance suite
// every backend passes.
//
// # Keys
//
// A KeyBuilder makes keys namespace:kind:hash, hashing the parts in CBOR's
// deterministic encoding with SHA-256 (128 bits kept). Tenants are
// sub-namespaces (KeyBuilder.Tenant); KeyBuilder.Raw passes a key through.
//
// # Values
//
// Get, Set, GetOrSet and GetMany are generic. []byte and strings are stored
// as they are, numbers in binary, []float32 and []float64 packed (the shape
// of embeddings), anything else as CBOR, which decodes only into the type
// the caller names and never runs code chosen by the data. Each value
// carries a type byte, so reading it as another type fails with
// ErrWrongType. Compression (Options.Compress) uses package codec.
//
// # Times to live
//
// Each kind has a default time to live (DefaultTTLs: embeddings 24h,
// retrieval 1h, context 30m, responses 10m), overridden by Options.TTLs
// and per call by WithTTL. A TTL of 0 means the entry never expires,
// everywhere: in options, in WithTTL, and in the backends.
//
// # Tags
//
// WithTags tags an entry; InvalidateTag removes every entry with a tag.
// On every backend the manager keeps a version per tag in the backend's own
// keyspace, so it persists, every process on the store sees it, and on a
// Redis Cluster an entry need not share a hash slot with its tags. See
// InvalidateTag for the consistency this gives.
//
// # GetOrSet
//
// GetOrSet runs its function once per key however many goroutines of the
// process ask at once. Processes sharing a store coordinate only through
// the stored value for now: the disk engine's multi-process mode will route
// it through the directory's owner.
package manager
