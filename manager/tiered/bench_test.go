package tiered_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/diskcache-go/diskcache/engine"
	"github.com/diskcache-go/diskcache/manager"
	"github.com/diskcache-go/diskcache/manager/disk"
	"github.com/diskcache-go/diskcache/manager/memory"
	"github.com/diskcache-go/diskcache/manager/tiered"
)

// BenchmarkZipf reads 128-byte values under a zipf distribution (s=1.1
// over 100k keys: a few keys take most reads) from the disk backend alone
// and from a memory tier in front of it, and the hottest key on its own:
//
//	go test -run '^$' -bench Zipf -benchtime 200000x -count 5 ./manager/tiered
func BenchmarkZipf(b *testing.B) {
	const keys = 100_000
	ctx := context.Background()
	d, err := disk.Open(b.TempDir(), &engine.Options{SizeLimit: 512 << 20})
	if err != nil {
		b.Fatal(err)
	}
	front, err := memory.New(&memory.Options{MaxBytes: 4 << 20}) // ~15k entries: a fraction of the keys
	if err != nil {
		b.Fatal(err)
	}
	t := tiered.New(front, d, nil)
	defer t.Close()
	value := bytes.Repeat([]byte{'v'}, 128)
	names := make([]string, keys)
	entries := make([]manager.Entry, 0, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("bench:zipf:%08d", i)
		entries = append(entries, manager.Entry{Key: names[i], Value: value})
		if len(entries) == cap(entries) {
			if err := d.SetMany(ctx, entries); err != nil {
				b.Fatal(err)
			}
			entries = entries[:0]
		}
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, keys-1)
	trace := make([]string, 1<<16)
	for i := range trace {
		trace[i] = names[z.Uint64()]
	}
	for _, bc := range []struct {
		name string
		b    manager.Backend
		key  func(i int) string
	}{
		{"zipf/disk", d, func(i int) string { return trace[i%len(trace)] }},
		{"zipf/tiered", t, func(i int) string { return trace[i%len(trace)] }},
		{"hot/disk", d, func(int) string { return names[0] }},
		{"hot/tiered", t, func(int) string { return names[0] }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := bc.b.Get(ctx, bc.key(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
