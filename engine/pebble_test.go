package engine

import (
	"context"
	"math/rand/v2"
	"testing"
)

// The tables keep blocks compressed that compress by a tenth: a store of
// 128-byte values, half random bytes and half text (W1's mix), settles
// into tables at most 0.93 of its keys' and values' bytes (0.90 with
// blockCompression; 0.97 with Pebble's default profile, Snappy kept only
// when it saves an eighth, which stored most of these blocks raw).
func TestTablesKeepBlocksThatCompressByATenth(t *testing.T) {
	c := openDir(t, t.TempDir(), &Options{SizeLimit: 1 << 30})
	defer c.Close()
	words := []string{"cache", "disk", "value", "the", "of", "and", "a", "to", "in", "is",
		"request", "response", "user", "session", "page", "render", "token", "model",
		"query", "result", "server", "time", "expiry", "record", "store", "write"}
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 40_000
	var raw int64
	for i := range n {
		v := make([]byte, 0, 128)
		if i%2 == 0 {
			for len(v) < 128 {
				v = append(v, byte(rng.Uint32()))
			}
		} else {
			for len(v) < 128 {
				v = append(append(v, words[rng.IntN(len(words))]...), ' ')
			}
			v = v[:128]
		}
		k := randomHexKey(rng)
		if err := c.Set(context.Background(), k, v, 0); err != nil {
			t.Fatal(err)
		}
		raw += int64(len(k) + len(v))
	}
	db := c.local().db
	if err := settleDB(db); err != nil {
		t.Fatal(err)
	}
	var tables int64
	for _, l := range db.Metrics().Levels {
		tables += l.TablesSize
	}
	if ratio := float64(tables) / float64(raw); ratio > 0.93 {
		t.Fatalf("tables take %d bytes for %d bytes of keys and values: %.3f, want at most 0.93", tables, raw, ratio)
	} else {
		t.Logf("tables %.3f of the keys' and values' bytes", ratio)
	}
}

// randomHexKey is a key like W1's: 16 to 24 random hex digits.
func randomHexKey(rng *rand.Rand) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 16+rng.IntN(9))
	for i := range b {
		b[i] = hex[rng.IntN(16)]
	}
	return string(b)
}
