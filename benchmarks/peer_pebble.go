package main

import (
	"context"
	"errors"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/diskcache-go/diskcache/engine"
)

// pebblePeer is the physical reference for our layer: Pebble with the
// options and write options diskcache derives for the same workload.
var pebblePeer = peer{
	name:         "pebble",
	durability:   "same as diskcache (its FS wrapper and write options)",
	blockCache:   "64 MiB (same options as diskcache)",
	ttl:          "none: the harness stores an expiry before each value and checks it on Get",
	limit:        "none",
	reclaim:      "an application sweep: the harness deletes expired keys and compacts",
	multiProcess: "n/a: one process per directory (exclusive file lock)",
	open:         openPebble,
}

type pebbleStore struct {
	db *pebble.DB
	wo *pebble.WriteOptions
}

func openPebble(dir string, o storeOptions) (store, error) {
	po, wo := engine.PebbleOptions(diskcacheOptions(o))
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, err
	}
	return &pebbleStore{db: db, wo: wo}, nil
}

func (s *pebbleStore) Set(key string, value []byte, ttl time.Duration) error {
	// Batch.Set copies into the batch, so the record buffer is reused.
	b := s.db.NewBatch()
	defer b.Close()
	rec := b.SetDeferred(len(key), expiryLen+len(value))
	copy(rec.Key, key)
	appendExpiring(rec.Value[:0], value, ttl)
	rec.Finish()
	return b.Commit(s.wo)
}

func (s *pebbleStore) Get(key string) ([]byte, bool, error) {
	rec, closer, err := s.db.Get(bytesOf(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	v, ok, err := liveValue(rec, time.Now())
	if !ok {
		return nil, false, err
	}
	return append([]byte(nil), v...), true, nil
}

// Reclaim deletes every expired record and compacts the whole key space:
// what an application on raw Pebble has to do to get the space back.
func (s *pebbleStore) Reclaim() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	now := time.Now()
	b := s.db.NewBatch()
	for it.First(); it.Valid(); it.Next() {
		if _, ok, _ := liveValue(it.Value(), now); !ok {
			if err := b.Delete(it.Key(), nil); err != nil {
				it.Close()
				return err
			}
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if err := b.Commit(s.wo); err != nil {
		return err
	}
	return s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true)
}

func (s *pebbleStore) Close() error { return s.db.Close() }
