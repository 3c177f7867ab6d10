package engine

import "github.com/diskcache-go/diskcache/codec"

// A Set that replaces a record must know what it replaces, to keep Len and
// the bytes exact and to delete the old expiry's index entry, and the
// presence filter cannot tell it: the key is there. That costs a Pebble Get,
// about as much as the rest of the Set: under W3 (zipf, one op in ten a Set
// of a hot key) the Sets of 10% of the ops cost as much as the 90% of Gets
// that the hot tier answers. So each stripe remembers what the last Sets
// that replaced a record wrote, for a few of its keys: the size and expiry
// of the record now stored under each. A Set of a key that such a Set
// wrote, with no other write since, finds it here.
//
// Every write of a data key goes through stageOver or stageDelete, which
// forget the key, under its stripe; Clear forgets all of them under every
// stripe; a Set notes its record after its commit succeeds, still under its
// stripe. So an entry is the record in the store, or it is not there (a
// miss costs the Get). Records whose value is in the value log are not
// noted: their value log entry can move without a stage.
type knownRecord struct {
	hash   uint64
	size   int32 // 0: an empty way
	expiry int64
}

// knownTable is every stripe's ways. It is made once knownAfter Sets
// replaced a record, and only such Sets note theirs: a store that is only
// filled with new keys (which the presence filter answers) or only read
// never has one, and a fill does not push the keys written again out.
type knownTable [numStripes][knownWays]knownRecord

// knownAfter is how many Sets must replace a record before the table is
// made: a process that opens a cache, sets a key it held and closes (W8)
// would otherwise allocate and clear 384 KiB for one Set, a quarter of
// what such a cycle allocated. A session that rewrites keys passes it soon.
const knownAfter = 256

// knownWays is how many keys a stripe remembers: 512 stripes x 32 ways x
// 24 bytes, 384 KiB a store that rewrites keys.
const knownWays = 32

// knownWay is the way of kh in its stripe's ways: the stripe takes the low
// bits of the hash, the way the next ones.
func knownWay(kh uint64) int { return int(kh/numStripes) % knownWays }

// known returns what the store holds under the key of hash kh, if a Set
// wrote it and no write came since. The caller holds kh's stripe.
func (c *store) known(kh uint64) (oldRecord, bool) {
	t := c.knownRecords.Load()
	if t == nil {
		return oldRecord{}, false
	}
	k := &t[kh%numStripes][knownWay(kh)]
	if k.size == 0 || k.hash != kh {
		return oldRecord{}, false
	}
	return oldRecord{size: int(k.size), header: codec.Header{Expiry: k.expiry}}, true
}

// forget drops kh's key before a write of it. The caller holds its stripe.
func (c *store) forget(kh uint64) {
	if t := c.knownRecords.Load(); t != nil {
		t.forget(kh)
	}
}

// forgetKey is forget for the data key dk, hashed only when there is a
// table: a store that never rewrites keys pays nothing on its deletes.
func (c *store) forgetKey(dk []byte) {
	if t := c.knownRecords.Load(); t != nil {
		t.forget(c.layout.hash(dk))
	}
}

func (t *knownTable) forget(kh uint64) {
	if k := &t[kh%numStripes][knownWay(kh)]; k.hash == kh {
		k.size = 0
	}
}

// forgetAll drops every key: the caller holds every stripe.
func (c *store) forgetAll() {
	if t := c.knownRecords.Load(); t != nil {
		clear(t[:])
	}
}

// noteRecord remembers rec, of expiry, as what the key of hash kh holds,
// once the write of it, which replaced a record, has committed. The caller
// holds kh's stripe. A table made here is empty but for this key: a key
// forgotten before it existed has no way in it.
func (c *store) noteRecord(kh uint64, rec []byte, expiry int64) {
	if codec.ExternalLen(rec) != 0 || len(rec) > 1<<30 {
		return
	}
	t := c.knownRecords.Load()
	if t == nil {
		if c.replacedSets.Add(1) < knownAfter {
			return
		}
		c.knownRecords.CompareAndSwap(nil, new(knownTable))
		t = c.knownRecords.Load()
	}
	t[kh%numStripes][knownWay(kh)] = knownRecord{hash: kh, size: int32(len(rec)), expiry: expiry}
}
