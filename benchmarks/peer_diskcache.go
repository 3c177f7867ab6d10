package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/diskcache-go/diskcache/engine"
)

var diskcachePeer = peer{
	name:       "diskcache",
	durability: "a returned write has reached the OS: survives kill -9, not power loss (default)",
	blockCache: "64 MiB Pebble block cache (default)",
	ttl:        "native: expired entries are misses; a sweeper deletes them",
	limit:      "Options.SizeLimit",
	reclaim:    "nothing: the sweeper (SweepInterval 1 s in W5) deletes and compacts",
	open:       openDiskcache,
}

type diskcacheStore struct{ c *engine.Cache }

func openDiskcache(dir string, o storeOptions) (store, error) {
	c, err := engine.Open(dir, diskcacheOptions(o))
	if err != nil {
		return nil, err
	}
	return diskcacheStore{c}, nil
}

// diskcacheOptions are the engine options for a workload; raw Pebble gets
// the Pebble options derived from the same.
func diskcacheOptions(o storeOptions) *engine.Options {
	return &engine.Options{
		SizeLimit:     o.SizeLimit,
		SweepInterval: o.SweepInterval,
		CacheSize:     cacheBudget,
		HotTierSize:   o.HotTierSize,
		// Warnings and errors only, as Badger's logger is off.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func (s diskcacheStore) Set(key string, value []byte, ttl time.Duration) error {
	return s.c.Set(context.Background(), key, value, ttl)
}

func (s diskcacheStore) Get(key string) ([]byte, bool, error) {
	v, err := s.c.Get(context.Background(), key)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// scanPage is how many keys ScanLen asks Scan for at a time.
const scanPage = 4096

// ScanLen counts the entries a Scan returns, from cursor 0 until it ends.
func (s diskcacheStore) ScanLen() (int64, error) {
	var n int64
	for cursor := uint64(0); ; {
		keys, next, err := s.c.Scan(context.Background(), cursor, scanPage)
		if err != nil {
			return n, err
		}
		n += int64(len(keys))
		if next == 0 {
			return n, nil
		}
		cursor = next
	}
}

func (s diskcacheStore) Len() (int64, error) { return s.c.Len(context.Background()) }

func (s diskcacheStore) Close() error { return s.c.Close() }
