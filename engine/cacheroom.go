package engine

import "github.com/cockroachdb/pebble/v2"

// Pebble's cache is CacheSize plus room for memtablesReserved memtables
// (pebbleOptions), since each memtable reserves its size there while it
// lives. But Pebble sizes its memtables up from 256 KiB as writes come, and
// a session that only reads never makes one of full size: its blocks took
// the memtables' room as well, and the block cache of a reopened 5M-key
// store at an 8 GiB limit held 127 MiB for the default CacheSize of 64
// (192 MiB at 64 GiB). cacheRoom keeps the room the memtables do not use
// in a reservation of its own, which the monitor resizes every tick from
// Pebble's metrics, but for an eighth of CacheSize that blocks may
// borrow: the block cache stays within CacheSize and an eighth whatever
// the limit and whatever the session does (TestBlockCacheBesideMemtables).
// The eighth is the memtables' room at the default limit (2 x 4 MiB for
// 64), whose blocks W2's store needs: holding all of it back cost its
// uniform Gets 7-15% (three alternations, 1 and 4 workers).
type cacheRoom struct {
	cache   *pebble.Cache
	room    int64 // what the memtables may reserve
	borrow  int64 // what blocks may take of the room the memtables leave
	held    int64 // what the reservation holds
	release func()
}

// follow resizes the reservation to what memtables holding memtables
// bytes (Pebble's MemTable.Size and ZombieSize) leave of the room, less
// what blocks may borrow. Only
// the monitor calls it. A change of less than a 64th of the room waits
// for more (each Reserve locks every shard of the cache), unless the
// memtables take all of it. The old reservation goes first: held twice for
// a moment, the room would evict blocks.
func (r *cacheRoom) follow(memtables int64) {
	if r.cache == nil || r.room <= 0 {
		return
	}
	want := max(r.room-memtables-r.borrow, 0)
	if d := want - r.held; d > -r.room/64 && d < r.room/64 && (want > 0 || r.held == 0) {
		return
	}
	r.free()
	if want > 0 {
		r.release = r.cache.Reserve(int(want))
		r.held = want
	}
}

// free drops the reservation.
func (r *cacheRoom) free() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	r.held = 0
}
