package manager_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/disk"
)

// BenchmarkDiskOverhead measures what the manager adds on top of the disk
// engine for 128-byte values: the same store, the same keys, once through
// *engine.Cache and once through manager.Get/Set. Compare the pairs:
//
//	go test -run '^$' -bench DiskOverhead -benchtime 200000x -count 5 ./manager
func BenchmarkDiskOverhead(b *testing.B) {
	const keys = 10_000
	d, err := disk.Open(b.TempDir(), &engine.Options{SizeLimit: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	m, err := manager.New(d, &manager.Options{Namespace: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	e := d.Engine()
	ctx := context.Background()
	value := bytes.Repeat([]byte{'v'}, 128)
	ks := make([]manager.Key, keys)
	for i := range ks {
		ks[i] = m.Keys().MustKey("bench", i)
		if err := manager.Set(ctx, m, ks[i], value); err != nil {
			b.Fatal(err)
		}
	}
	// Both sides read values the manager wrote (130 bytes with the
	// envelope): the engine's work is the same, the difference is ours.
	order := rand.New(rand.NewPCG(1, 2)).Perm(keys)

	b.Run("Get/engine", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := e.Get(ctx, ks[order[i%keys]].Name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get/manager", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := manager.Get[[]byte](ctx, m, ks[order[i%keys]]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Set/engine", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := e.Set(ctx, ks[order[i%keys]].Name, value, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Set/manager", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := manager.Set(ctx, m, ks[order[i%keys]], value); err != nil {
				b.Fatal(err)
			}
		}
	})
	type doc struct {
		Title string
		Score float64
	}
	b.Run("GetStruct/manager", func(b *testing.B) {
		k := m.Keys().MustKey("bench", "struct")
		manager.Set(ctx, m, k, doc{Title: string(value[:100]), Score: 1})
		for b.Loop() {
			if _, err := manager.Get[doc](ctx, m, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Key", func(b *testing.B) {
		kb := m.Keys()
		for i := 0; b.Loop(); i++ {
			kb.MustKey(manager.KindResponse, "model", fmt.Sprint(i))
		}
	})
}

// stub is a Backend that does no work beyond what the contract asks (a
// copy out on Get), so that BenchmarkManagerOnly measures the manager
// alone, free of the disk's noise.
type stub struct {
	manager.Backend
	value []byte
}

func (s *stub) Get(context.Context, string) ([]byte, error) {
	return append([]byte(nil), s.value...), nil
}

func (s *stub) Set(context.Context, string, []byte, time.Duration) error { return nil }

// BenchmarkManagerOnly measures the manager's own cost per call for a
// 128-byte value: envelope, type check, stats. Compare it with the disk
// engine's latency in BenchmarkDiskOverhead:
//
//	go test -run '^$' -bench ManagerOnly -count 5 ./manager
func BenchmarkManagerOnly(b *testing.B) {
	ctx := context.Background()
	value := bytes.Repeat([]byte{'v'}, 128)
	// The stub returns the stored form of value, as Set writes it.
	rec := &recorderStub{}
	mr, err := manager.New(rec, nil)
	if err != nil {
		b.Fatal(err)
	}
	k := mr.Keys().MustKey("bench", 1)
	if err := manager.Set(ctx, mr, k, value); err != nil {
		b.Fatal(err)
	}
	s := &stub{value: rec.last}
	m, err := manager.New(s, nil)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("Get/backend", func(b *testing.B) {
		for b.Loop() {
			s.Get(ctx, k.Name)
		}
	})
	b.Run("Get/manager", func(b *testing.B) {
		for b.Loop() {
			if _, err := manager.Get[[]byte](ctx, m, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Set/manager", func(b *testing.B) {
		for b.Loop() {
			if err := manager.Set(ctx, m, k, value); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// recorderStub keeps a copy of the last value Set.
type recorderStub struct {
	stub
	last []byte
}

func (r *recorderStub) Set(_ context.Context, _ string, v []byte, _ time.Duration) error {
	r.last = append([]byte(nil), v...)
	return nil
}
