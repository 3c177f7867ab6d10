package redis_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/rueidis"

	"github.com/diskcache-go/diskcache/internal/redistest"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/redis"
)

// BenchmarkDeployments runs the same manager calls, from 32 goroutines a
// core, against each deployment it can reach in one run: diskcache serve
// in-process, the redis-server of DISKCACHE_TEST_REDIS and the cluster of
// DISKCACHE_TEST_REDIS_CLUSTER (those two are skipped when unset):
//
//	go test ./manager/redis -run '^$' -bench Deployments -benchtime 100000x
//
// On one machine a cluster shows what its routing and its extra processes
// cost, not what it adds: that takes masters on machines of their own.
func BenchmarkDeployments(b *testing.B) {
	const keys = 10_000
	value := bytes.Repeat([]byte{'v'}, 128)
	deployments := []struct {
		name string
		open func(b *testing.B) *redis.Cache
	}{
		{"serve", func(b *testing.B) *redis.Cache {
			c, err := redis.Dial(redistest.Serve(b, nil), nil)
			if err != nil {
				b.Fatal(err)
			}
			return c
		}},
		{"redis-server", func(b *testing.B) *redis.Cache {
			if addr == "" {
				b.Skipf("%s is not set", envAddr)
			}
			c, err := redis.Dial(addr, &redis.Options{Prefix: fmt.Sprintf("diskcache-bench:%d:", run)})
			if err != nil {
				b.Fatal(err)
			}
			return c
		}},
		{"cluster", func(b *testing.B) *redis.Cache {
			seeds := os.Getenv(envCluster)
			if seeds == "" {
				b.Skipf("%s is not set", envCluster)
			}
			client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: strings.Split(seeds, ","), DisableCache: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(client.Close)
			return redis.New(client, &redis.Options{Prefix: fmt.Sprintf("diskcache-bench:%d:", run)})
		}},
	}
	for _, d := range deployments {
		b.Run(d.name, func(b *testing.B) {
			c := d.open(b)
			b.Cleanup(func() {
				if err := c.Clear(ctx); err != nil {
					b.Error(err)
				}
				c.Close()
			})
			m, err := manager.New(c, &manager.Options{Namespace: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			ks := make([]manager.Key, keys)
			for i := range ks {
				ks[i] = m.Keys().MustKey("bench", i)
				if err := manager.Set(ctx, m, ks[i], value, manager.WithTags(fmt.Sprint("t", i%100))); err != nil {
					b.Fatal(err)
				}
			}
			for _, op := range []struct {
				name string
				fn   func(k manager.Key) error
			}{
				{"Set", func(k manager.Key) error { return manager.Set(ctx, m, k, value) }},
				// Every entry is tagged: a Get also reads its tag's version.
				{"GetTagged", func(k manager.Key) error { _, err := manager.Get[[]byte](ctx, m, k); return err }},
			} {
				b.Run(op.name, func(b *testing.B) {
					var seed atomic.Uint64
					b.SetParallelism(32)
					b.RunParallel(func(pb *testing.PB) {
						r := rand.New(rand.NewPCG(seed.Add(1), 0))
						for pb.Next() {
							if err := op.fn(ks[r.IntN(keys)]); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		})
	}
}
