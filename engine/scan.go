package engine

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/diskcache-go/diskcache/codec"
)

// Scan returns up to about count keys from cursor on, in the store's order
// (by key hash), and the cursor to pass next; 0 starts a scan and a
// returned 0 ends it. The cursor is a position in the hash space, so a scan
// survives writes and restarts: every key present for the whole scan is
// returned, keys written meanwhile may or may not be, and none twice.
// A call stops only between positions (keyLayout.position): in a store of
// format 2 between hash buckets, so it may return a bucket's keys beyond
// count. Expired entries are skipped. count <= 0 means 10.
func (c *store) Scan(ctx context.Context, cursor uint64, count int) ([]string, uint64, error) {
	sh, err := c.enter(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer c.leave(sh)
	if count <= 0 {
		count = 10
	}
	lo := c.layout.seek(cursor)
	_, hi := dataSpan()
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	now := c.now()
	var keys []string
	var last uint64
	visited := 0
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) < c.layout.header {
			continue
		}
		h := c.layout.position(k)
		// Stop only between positions, so the cursor loses nothing.
		if visited >= count && h != last {
			return keys, h, nil
		}
		visited++
		last = h
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, 0, err
		}
		hdr, err := codec.DecodeHeader(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: key %q in %s: %w", ErrCorrupt, truncKey(string(c.layout.userKey(k))), c.dir, err)
		}
		if !hdr.Expired(now) {
			keys = append(keys, string(c.layout.userKey(k)))
		}
		if visited%1024 == 0 && ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
	}
	return keys, 0, it.Error()
}
