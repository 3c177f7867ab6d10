package main

import (
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bboltPeer = peer{
	name:         "bbolt",
	durability:   "NoSync: a committed transaction has been written to the file (reached the OS): survives kill -9, not power loss",
	blockCache:   "none: reads go through its mmap (the page cache)",
	ttl:          "none: the harness stores an expiry before each value and checks it on Get",
	limit:        "none",
	reclaim:      "an application sweep deleting expired keys; the file never shrinks (free pages are reused)",
	multiProcess: "n/a: one process per directory (exclusive file lock)",
	open:         openBbolt,
}

var bucket = []byte("cache")

type bboltStore struct{ db *bolt.DB }

func openBbolt(dir string, _ storeOptions) (store, error) {
	db, err := bolt.Open(filepath.Join(dir, "bolt.db"), 0o600, &bolt.Options{
		NoSync:  true,
		Timeout: time.Second,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return bboltStore{db}, nil
}

// Set is one read-write transaction: bbolt keeps key and value until the
// commit, which Update waits for.
func (s bboltStore) Set(key string, value []byte, ttl time.Duration) error {
	rec := appendExpiring(make([]byte, 0, expiryLen+len(value)), value, ttl)
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put(bytesOf(key), rec)
	})
}

func (s bboltStore) Get(key string) ([]byte, bool, error) {
	var (
		v   []byte
		ok  bool
		err error
	)
	verr := s.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucket).Get(bytesOf(key))
		if rec == nil {
			return nil
		}
		// rec lives in the mmap only while the transaction is open.
		v, ok, err = liveValue(rec, time.Now())
		v = append([]byte(nil), v...)
		return err
	})
	if !ok {
		v = nil
	}
	return v, ok, verr
}

// Reclaim deletes every expired key in one transaction. The keys are
// collected first: deleting under a moving cursor skips keys.
func (s bboltStore) Reclaim() error {
	now := time.Now()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var expired [][]byte
		err := b.ForEach(func(k, rec []byte) error {
			if _, ok, _ := liveValue(rec, now); !ok {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range expired {
			if err == nil {
				err = b.Delete(k)
			}
		}
		return err
	})
}

func (s bboltStore) Close() error { return s.db.Close() }
