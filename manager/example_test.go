package manager_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/disk"
	"github.com/diskcache-go/diskcache/manager/memory"
	"github.com/diskcache-go/diskcache/manager/redis"
	"github.com/diskcache-go/diskcache/manager/tiered"
)

// Answer is what an application caches: any type CBOR can encode.
type Answer struct {
	Text    string
	Sources []string
}

// A persistent cache on local disk that survives restarts.
func Example_disk() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "diskcache-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	backend, err := disk.Open(dir, &engine.Options{SizeLimit: 256 << 20})
	if err != nil {
		log.Fatal(err)
	}
	m, err := manager.New(backend, &manager.Options{Namespace: "app"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	key := m.Keys().MustKey(manager.KindResponse, "gpt-x", "What is a cache?")
	answer, err := manager.GetOrSet(ctx, m, key, func(ctx context.Context) (Answer, error) {
		return Answer{Text: "Fast storage for things you may need again."}, nil // the expensive call
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(answer.Text)
	fmt.Println(key.Name)
	// Output:
	// Fast storage for things you may need again.
	// app:response:6797750a4c67a3b60db654a37dfc8e1c
}

// A bounded cache in process memory.
func Example_memory() {
	ctx := context.Background()
	backend, err := memory.New(&memory.Options{MaxBytes: 128 << 20})
	if err != nil {
		log.Fatal(err)
	}
	m, err := manager.New(backend, &manager.Options{Namespace: "app"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	key := m.Keys().MustKey(manager.KindEmbedding, "text-embedding-3-small", "hello")
	if err := manager.Set(ctx, m, key, []float32{0.12, -0.5, 0.33}); err != nil { // 24h: the embedding default
		log.Fatal(err)
	}
	vec, err := manager.Get[[]float32](ctx, m, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vec)
	_, err = manager.Get[string](ctx, m, key)
	fmt.Println(err)
	// Output:
	// [0.12 -0.5 0.33]
	// manager: get "app:embedding:7f1ea31c6a8a4df2e66a91d1a30207a8": manager: value has another type: stored []float32, read as string
}

// Memory in front of disk: hot keys are served from memory, everything is
// kept on disk.
func Example_tiered() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "diskcache-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	front, err := memory.New(&memory.Options{MaxBytes: 32 << 20})
	if err != nil {
		log.Fatal(err)
	}
	back, err := disk.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := manager.New(tiered.New(front, back, &tiered.Options{FrontTTL: time.Minute}), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // closes both tiers

	key := m.Keys().MustKey(manager.KindRetrieval, map[string]any{"q": "pebble compaction", "k": 5})
	if err := manager.Set(ctx, m, key, []string{"doc-17", "doc-4"}, manager.WithTTL(time.Hour)); err != nil {
		log.Fatal(err)
	}
	docs, err := manager.Get[[]string](ctx, m, key)
	fmt.Println(docs, err)
	// Output:
	// [doc-17 doc-4] <nil>
}

// Redis, for caches shared past one machine. (No Output: it needs a
// server, so go test compiles it but does not run it.)
func Example_redis() {
	ctx := context.Background()
	backend, err := redis.Dial("127.0.0.1:6379", &redis.Options{Prefix: "cache:"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := manager.New(backend, &manager.Options{Namespace: "app"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	tenant := m.Keys().Tenant("acme")
	key := tenant.MustKey(manager.KindContext, "session", 42)
	if err := manager.Set(ctx, m, key, "summary of the conversation", manager.WithTags("session:42")); err != nil {
		log.Fatal(err)
	}
	// Later, when the session ends: every entry tagged with it goes.
	if err := m.InvalidateTag(ctx, "session:42"); err != nil {
		log.Fatal(err)
	}
}

// Tags work on every backend: on disk the tag versions live in the store,
// so they persist and every process sees them.
func ExampleManager_InvalidateTag() {
	ctx := context.Background()
	backend, _ := memory.New(nil)
	m, _ := manager.New(backend, nil)
	defer m.Close()

	kb := m.Keys()
	a, b := kb.MustKey(manager.KindContext, "a"), kb.MustKey(manager.KindContext, "b")
	manager.Set(ctx, m, a, "about user 1", manager.WithTags("user:1"))
	manager.Set(ctx, m, b, "about user 2", manager.WithTags("user:2"))

	m.InvalidateTag(ctx, "user:1")
	_, errA := manager.Get[string](ctx, m, a)
	vb, errB := manager.Get[string](ctx, m, b)
	fmt.Println(errA)
	fmt.Println(vb, errB)
	// Output:
	// manager: key not found
	// about user 2 <nil>
}

// Keys are namespace:kind:hash; the hash covers the parts in a canonical
// form, so map order does not matter. Tenants are sub-namespaces.
func ExampleKeyBuilder() {
	kb := manager.KeyBuilder{Namespace: "app"}
	a := kb.MustKey(manager.KindResponse, map[string]any{"model": "m", "temperature": 0.2})
	b := kb.MustKey(manager.KindResponse, map[string]any{"temperature": 0.2, "model": "m"})
	fmt.Println(a == b)
	fmt.Println(kb.Tenant("acme:eu").MustKey(manager.KindEmbedding, "x").Name[:25])
	fmt.Println(kb.Raw(manager.KindResponse, "legacy-key").Name)
	// Output:
	// true
	// app:acme%3Aeu:embedding:8
	// legacy-key
}
