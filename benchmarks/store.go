package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// store is what a workload runs against in a Go peer. Set must not keep
// value after it returns (workers reuse their buffers), and Get returns a
// copy the caller owns: every peer pays for that copy alike.
type store interface {
	Set(key string, value []byte, ttl time.Duration) error
	// Get reports ok=false for a missing or expired key.
	Get(key string) (value []byte, ok bool, err error)
	Close() error
}

// reclaimer is a store that can be told to give back the space of expired
// entries; W5 calls it after the passive wait and writes down what it took.
type reclaimer interface {
	Reclaim() error
}

// counter is a store with a size limit that W11 asks how many entries the
// limit left: by reading them all, so that the answer does not rest on the
// count the store keeps, and by that count, reported beside it.
type counter interface {
	// ScanLen counts the entries by a full scan.
	ScanLen() (int64, error)
	// Len is the store's own count.
	Len() (int64, error)
}

// storeOptions are what a workload asks of a store when it opens one.
type storeOptions struct {
	SizeLimit     int64         // 0: the peer's default (no limit for most)
	SweepInterval time.Duration // diskcache's expiry sweeper; 0: its default
	LRU           bool          // python-diskcache: least-recently-used eviction
	HotTierSize   int64         // diskcache's hot tier; 0: its default
}

// peer describes one contender: how to open it and what it promises.
type peer struct {
	name       string
	durability string // what survives when a write has returned
	blockCache string // its read cache budget
	ttl        string // how expiry works in it
	limit      string // how it keeps a size limit
	reclaim    string // what it takes to give back expired entries' space
	// multiProcess, when set, says why W7 does not run on this peer.
	multiProcess string
	open         func(dir string, o storeOptions) (store, error)
}

const cacheBudget = 64 << 20 // the block cache every peer that has one gets

var peers = []peer{diskcachePeer, pebblePeer, badgerPeer, bboltPeer, pythonPeer}

func peerByName(name string) (peer, error) {
	for _, p := range peers {
		if p.name == name {
			return p, nil
		}
	}
	return peer{}, fmt.Errorf("unknown peer %q", name)
}

// bytesOf is key as a byte slice without a copy. The stores only read it,
// and Pebble, Badger and bbolt copy a key before their write returns.
func bytesOf(key string) []byte {
	return unsafe.Slice(unsafe.StringData(key), len(key))
}

// For peers without TTLs (raw Pebble, bbolt) the harness stores the expiry
// in front of the value, as unix nanoseconds (0: never), and checks it on
// Get, the way an application on such a store would.
const expiryLen = 8

func appendExpiring(dst, value []byte, ttl time.Duration) []byte {
	var exp int64
	if ttl > 0 {
		exp = time.Now().Add(ttl).UnixNano()
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(exp))
	return append(dst, value...)
}

// liveValue returns the value stored by appendExpiring, or ok=false when it
// has expired.
func liveValue(rec []byte, now time.Time) ([]byte, bool, error) {
	if len(rec) < expiryLen {
		return nil, false, errors.New("record shorter than its expiry")
	}
	exp := int64(binary.BigEndian.Uint64(rec))
	if exp != 0 && now.UnixNano() >= exp {
		return nil, false, nil
	}
	return rec[expiryLen:], true, nil
}
