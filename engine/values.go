package engine

import (
	"fmt"
	"path/filepath"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/diskcache-go/diskcache/codec"
	"github.com/diskcache-go/diskcache/lru"
	"github.com/diskcache-go/diskcache/vlog"
)

// Large values live in a value log beside Pebble (package vlog): written
// once, instead of once per compaction, and given back a segment at a
// time. Pebble holds a reference record for each of them. With keys
// spread by hash, a size limit that evicts from an LSM rewrites the live
// data around every byte it frees; with the values in the log it rewrites
// only the live entries of the segment it collects, which eviction by
// recency leaves mostly empty.

// valuesDir is the value log's folder inside the store.
const valuesDir = "values"

// defaultValueThreshold: a value of 1 KiB costs Pebble about as much to
// compact as it costs the log to write and read separately.
const defaultValueThreshold = 1 << 10

// segmentSizeFor sizes the log's segments from the limit: a collection
// frees a 256th of the limit at a time (1-16 MiB), so that the segment
// being written, the one being collected and the garbage left between
// collections are a small part of it.
func segmentSizeFor(limit int64) int64 { return clamp(limit/256, 1<<20, 16<<20) }

// openValues opens the value log of the store at path.
func (c *store) openValues(path string) error {
	l, err := vlog.Open(c.opts.durability().fs, filepath.Join(path, valuesDir), vlog.Options{
		SegmentSize: segmentSizeFor(c.opts.SizeLimit),
		Sync:        c.opts.Sync,
	})
	if err != nil {
		return err
	}
	c.values = l
	return nil
}

func (c *store) closeValues() {
	if c.values != nil {
		c.values.Close()
		c.values = nil
	}
}

// valuesSize is the bytes the value log takes on disk.
func (c *store) valuesSize() int64 {
	if c.values == nil {
		return 0
	}
	return c.values.Size()
}

// encodeEntry builds key's record for value into a pooled buffer, which the
// caller puts back (putRecord) once the batch holds its own copy. A value
// of at least ValueThreshold bytes goes to the value log first; the caller
// releases the Pin once the record is committed (or given up).
func (c *store) encodeEntry(key string, value []byte, expiry, now int64) (*[]byte, vlog.Pin, error) {
	p := recordPool.Get().(*[]byte)
	if c.opts.ValueThreshold < 0 || len(value) < c.opts.ValueThreshold {
		*p = c.codec.AppendRecord((*p)[:0], expiry, now, value)
		c.lim.wrote(int64(len(key)+len(*p)), 0)
		return p, vlog.Pin{}, nil
	}
	if err := c.health.writable(); err != nil {
		putRecord(p)
		return nil, vlog.Pin{}, err // no entry the commit would refuse anyway
	}
	stored, algo := c.codec.AppendStored((*p)[:0], value)
	ref, pin, err := c.values.Append([]byte(key), stored)
	if err == nil && c.opts.Sync {
		// The entry is durable before the record that refers to it.
		err = c.values.Sync(ref)
	}
	if err != nil {
		pin.Release()
		putRecord(p)
		return nil, vlog.Pin{}, fmt.Errorf("diskcache: set %q: %w", truncKey(key), c.valuesFailed(err))
	}
	*p = codec.AppendRefRecord(stored[:0], expiry, now, algo, ref)
	c.lim.wrote(int64(len(key)+len(*p))+int64(ref.Length), int64(ref.Length))
	return p, pin, nil
}

// valuesFailed fails the store after a failed write or fsync of the value
// log, as after a failed write of Pebble's log (health.go): every write is
// refused, reads go on, and the Cache reopens the store once the disk
// takes writes again. Refusing only the write that failed would leave
// Pebble to meet the full disk next, and if that happened as it switched
// logs the process would die.
func (c *store) valuesFailed(err error) error {
	return c.health.fail(fmt.Errorf("writing the value log: %w", err))
}

// decodeRecord verifies rec, the record of key, and returns its header and
// value, read from the value log when the record refers to it. ErrGone
// from the log means the entry moved (a collection) since rec was read:
// read the record again. Only a record that refers to the log takes a
// buffer from the pool: most Gets read a value kept in Pebble, and the
// pool's Get and Put were a tenth of the cache's own share of such a Get.
func (c *store) decodeRecord(key []byte, rec []byte) (codec.Header, []byte, error) {
	return decodeWith(c.codec, c.values, nil, key, rec, nil)
}

// decodeRecordTo is decodeRecord appending the value to dst, for a caller
// that decodes many values and drops them together (warmSlice).
func (c *store) decodeRecordTo(dst, key, rec []byte) (codec.Header, []byte, error) {
	return decodeWith(c.codec, c.values, dst, key, rec, nil)
}

// decodeWith is decodeRecord with cd and values, for Check too, appending
// the value to dst; a value read from the log passes through *buf, which
// keeps its room, or through a buffer of the pool when buf is nil.
func decodeWith(cd *codec.Codec, values *vlog.Log, dst, key, rec []byte, buf *[]byte) (codec.Header, []byte, error) {
	h, payload, err := codec.Verify(rec)
	if err != nil {
		return codec.Header{}, nil, err
	}
	if h.Ref {
		ref, err := codec.ParseRef(payload)
		if err != nil {
			return codec.Header{}, nil, err
		}
		if values == nil {
			return codec.Header{}, nil, fmt.Errorf("it refers to segment %d of the value log, and there is no value log", ref.Segment)
		}
		if buf == nil {
			buf = recordPool.Get().(*[]byte)
			defer putRecord(buf)
		}
		if payload, err = values.Read(*buf, ref, key); err != nil {
			return codec.Header{}, nil, err
		}
		*buf = payload[:0]
	}
	v, err := cd.DecodeStored(dst, h.Algo, payload)
	if err != nil {
		return codec.Header{}, nil, err
	}
	return h, v, nil
}

// recordSize is what an entry's record takes: itself and the value log
// entry it refers to, if any. The counts, and so the size limit, go by it.
func recordSize(rec []byte) int { return len(rec) + codec.ExternalLen(rec) }

// collector is the value log's garbage collector's state.
type collector struct {
	running atomic.Bool
	// lastLive is the live share of the last segment collected, in
	// thousandths: under disk pressure the oldest segment is collected
	// only while collections free something.
	lastLive atomic.Int64
}

// valuesGarbage estimates the bytes in the value log that no record refers
// to. The counts include the records in Pebble, so it errs low.
func (c *store) valuesGarbage() int64 {
	return c.valuesSize() - c.keys.counts.bytes.load()
}

// maybeCollect starts the collection of the oldest sealed segment of the
// value log when the log holds enough garbage: a sixteenth of the live
// bytes (at least a segment); under disk pressure any garbage while the
// last collection found its segment mostly dead.
func (c *store) maybeCollect() {
	if c.values == nil || c.gc.running.Load() {
		return
	}
	seg := segmentSizeFor(c.opts.SizeLimit)
	garbage := c.valuesGarbage()
	slack := max(seg, c.keys.counts.bytes.load()/16)
	if c.lim.disk.Load() > c.lim.steering().compactAt && c.gc.lastLive.Load() < 900 {
		slack = 0
	}
	if garbage <= slack || c.valuesSize() <= seg {
		return
	}
	var oldest *vlog.Info
	for _, s := range c.values.Segments() {
		if s.Collectable {
			oldest = &s
			break
		}
	}
	if oldest == nil {
		// All the garbage is in the segment being written: the log has
		// stopped growing (say, every entry expired). Seal it, to collect
		// it next time.
		c.values.Seal()
		return
	}
	if !c.gc.running.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.gc.running.Store(false)
		live, err := c.collect(*oldest)
		if err != nil && c.bgCtx.Err() == nil {
			c.log.Error("diskcache: collecting the value log failed", "segment", oldest.Path, "err", err)
			return
		}
		c.gc.lastLive.Store(live * 1000 / max(oldest.Size, 1))
		c.lim.poke()
	}()
}

// moved is an entry a collection copies to the head of the log.
type moved struct {
	key      []byte
	from, to codec.Ref
	pin      vlog.Pin
}

// collect moves the entries of segment s that records still refer to to
// the head of the log, and removes s. It returns the bytes it moved.
//
// First every live entry is copied (and, with Sync, the copies synced);
// then each record is pointed at its copy under its key's stripe, if it
// still points at the original (a write in between wins); then Pebble's
// log is made durable and the segment removed. A crash at any point
// leaves every record pointing at an entry that is on disk.
func (c *store) collect(s vlog.Info) (int64, error) {
	var moves []moved
	defer func() {
		for _, m := range moves {
			m.pin.Release()
		}
	}()
	var movedBytes int64
	err := c.values.Scan(s.ID, func(key, stored []byte, ref codec.Ref) error {
		if c.bgCtx.Err() != nil {
			return c.bgCtx.Err()
		}
		old, ok, err := c.lookupRef(c.layout.dataKey(nil, string(key)), ref)
		if err != nil || !ok {
			return err
		}
		if c.evictInstead(key, old.header) {
			if evicted, err := c.evictRef(key, ref); err != nil || evicted {
				return err
			}
		}
		to, pin, err := c.values.Append(key, stored)
		if err != nil {
			return c.valuesFailed(err)
		}
		moves = append(moves, moved{key: append([]byte(nil), key...), from: ref, to: to, pin: pin})
		movedBytes += int64(ref.Length)
		return nil
	})
	if err != nil {
		return movedBytes, err
	}
	if c.opts.Sync && len(moves) > 0 {
		if err := c.values.Sync(moves[len(moves)-1].to); err != nil {
			return movedBytes, c.valuesFailed(err)
		}
	}
	for _, m := range moves {
		if err := c.repoint(m); err != nil {
			return movedBytes, err
		}
	}
	// The new references are in Pebble's log (written, with Sync synced)
	// before the entries they replace go.
	if err := c.guard(func() error { return c.db.LogData(nil, pebble.Sync) }); err != nil {
		return movedBytes, err
	}
	return movedBytes, c.values.Remove(s.ID)
}

// evictInstead reports whether the collector should evict the entry of
// key (whose record has header h) rather than move it: while the live
// bytes are over the size limit's low water mark, an entry at least as
// idle as the last one the sampler evicted would be evicted soon anyway.
// Moving it first would copy it for nothing; with values written in
// order and evicted by recency, most of an old segment goes this way.
func (c *store) evictInstead(key []byte, h codec.Header) bool {
	bar := c.lim.evictIdle.Load()
	if bar <= 0 || c.keys.counts.bytes.load() <= c.lim.steering().low {
		return false
	}
	now := lru.Tick(c.lim.now.Load())
	cand := lru.Candidate{Hash: xxhash.Sum64(key), Written: c.lim.tick(h.WriteTime), Expired: h.Expired(c.now())}
	return cand.Expired || int64(c.lim.sampler.Idleness(cand, now)) >= bar
}

// evictRef evicts key if its record still refers to ref.
func (c *store) evictRef(key []byte, ref codec.Ref) (bool, error) {
	dk, h := c.layout.dataKeyHash(nil, string(key))
	mu := c.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	old, ok, err := c.lookupRef(dk, ref)
	if err != nil || !ok {
		return false, err
	}
	d, err := c.deleteRecord(dk, old)
	if err != nil {
		return false, fmt.Errorf("diskcache: evict %q: %w", truncKey(string(key)), err)
	}
	c.countEviction(h, -d.bytes)
	return true, nil
}

// lookupRef looks up dk's record (lookup) and reports whether it refers
// to ref. A damaged record is not kept alive by the log.
func (c *store) lookupRef(dk []byte, ref codec.Ref) (oldRecord, bool, error) {
	old, found, err := c.lookup(dk, true)
	if err != nil || !found || !old.header.Ref {
		return old, false, err
	}
	_, payload, err := codec.Verify(old.rec)
	if err != nil {
		return old, false, nil
	}
	r, err := codec.ParseRef(payload)
	return old, err == nil && r == ref, nil
}

// repoint points m's record at its copy, if it still points at the
// original.
func (c *store) repoint(m moved) error {
	dk, kh := c.layout.dataKeyHash(nil, string(m.key))
	mu := c.stripe(kh)
	mu.Lock()
	defer mu.Unlock()
	old, ok, err := c.lookupRef(dk, m.from)
	if err != nil || !ok {
		return err
	}
	h := old.header
	rec := codec.AppendRefRecord(nil, h.Expiry, h.WriteTime, h.Algo, m.to)
	// Same key, same expiry, same size: the counts, the expiry index and
	// the forwarders' copies (the value is unchanged) all stay as they are.
	err = c.guard(func() error {
		if err := c.markDirty(); err != nil {
			return err
		}
		return c.db.Set(dk, rec, pebble.NoSync)
	})
	c.markKey(kh)
	return err
}
