package main

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

var badgerPeer = peer{
	name:         "badger",
	durability:   "SyncWrites off: written to mmap'd files before return, survives kill -9, not power loss",
	blockCache:   "64 MiB block cache (default 256 MiB); index cache off (default)",
	ttl:          "native: Entry.WithTTL; expired entries are dropped when compaction rewrites them",
	limit:        "none",
	reclaim:      "Flatten (compact all levels) and RunValueLogGC, called by the application",
	multiProcess: "n/a: one process per directory (exclusive file lock)",
	open:         openBadger,
}

type badgerStore struct{ db *badger.DB }

func openBadger(dir string, _ storeOptions) (store, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithLogger(nil).
		WithBlockCacheSize(cacheBudget)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, err
	}
	return badgerStore{db}, nil
}

// Set commits one transaction; Update returns after the commit, when the
// value has been copied into Badger's memtable and log.
func (s badgerStore) Set(key string, value []byte, ttl time.Duration) error {
	return s.db.Update(func(txn *badger.Txn) error {
		e := badger.NewEntry(bytesOf(key), value)
		if ttl > 0 {
			e = e.WithTTL(ttl)
		}
		return txn.SetEntry(e)
	})
}

func (s badgerStore) Get(key string) ([]byte, bool, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(bytesOf(key))
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

func (s badgerStore) Reclaim() error {
	if err := s.db.Flatten(2); err != nil {
		return err
	}
	for {
		err := s.db.RunValueLogGC(0.5)
		if errors.Is(err, badger.ErrNoRewrite) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (s badgerStore) Close() error { return s.db.Close() }
