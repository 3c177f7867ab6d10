package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// A call that is not safe to repeat (contract.go: repeatToken) carries a
// token when it leaves a forwarding process. The store writes the token,
// with the call's result, in the same Pebble batch as the call's own writes
// ('c' token -> result). If the owner dies after the commit and before its
// answer reached the caller, the caller hands off and sends the call again
// marked as a repeat; the next owner replayed the dead owner's WAL, finds
// the token and answers what the first owner would have, instead of
// applying the call twice (an Add would report that someone else holds the
// key, an IncrBy would count twice). A call that wrote nothing left no
// token: running it again is what it would have done anyway.
//
// The token starts with the caller's wall-clock time, so tokens old enough
// that no repeat can still come are one key range: each owner deletes that
// range now and then, in the batch of a tokened call (stageCall).
// Clear leaves tokens alone: a repeat after a Clear still finds its answer.
const (
	callPrefix = 'c'
	tokenLen   = 8 + 16 // unix nanoseconds, big-endian, then random bytes
	// tokenLife is how long a token is kept: far longer than any
	// HandoffWindow a repeat can come within.
	tokenLife = 10 * time.Minute
)

// callInfo is what a call carries in its context across the store: the
// token (nil for a call made in the owner), whether this is a repeat, and
// the tally the owner's socket server returns to the forwarder.
type callInfo struct {
	token  []byte
	repeat bool
	tally  *tally
}

type callKey struct{}

func withCall(ctx context.Context, ci *callInfo) context.Context {
	return context.WithValue(ctx, callKey{}, ci)
}

func callOf(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callKey{}).(*callInfo)
	return ci
}

// newToken returns a token that no other call of any process shares.
func newToken() []byte {
	t := make([]byte, tokenLen)
	binary.BigEndian.PutUint64(t, uint64(time.Now().UnixNano()))
	rand.Read(t[8:])
	return t
}

func callKeyOf(token []byte) []byte { return append([]byte{callPrefix}, token...) }

// callResult is what a tokened call answered, as the store keeps it with
// the token: each method uses the fields it needs.
type callResult struct {
	written, hadOld bool
	n               int64
	v               []byte // nil: none
	replayed        bool   // not stored: the result came from a token
}

func (r *callResult) encode() []byte {
	var w wbuf
	w.bool(r.written)
	w.bool(r.hadOld)
	w.int(r.n)
	w.bytes(r.v)
	return w.b
}

func decodeCallResult(b []byte) (callResult, error) {
	r := rbuf{b: b}
	res := callResult{written: r.bool(), hadOld: r.bool(), n: r.int(), v: r.bytes(), replayed: true}
	return res, r.done()
}

// replay looks for ci's token and, when the call was applied already, sets
// res to its result and returns true. Only repeats look: a first attempt
// cannot have been applied. The caller holds the stripes of the call's
// keys.
func (c *store) replay(ci *callInfo, res *callResult) (bool, error) {
	if ci == nil || !ci.repeat || len(ci.token) != tokenLen {
		return false, nil
	}
	v, closer, err := c.db.Get(callKeyOf(ci.token))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("diskcache: look up a repeated call in %s: %w", c.dir, corruptIf(err))
	}
	// The result's value must outlive Pebble's buffer: decode a copy.
	r, err := decodeCallResult(append([]byte(nil), v...))
	closer.Close()
	if err != nil {
		return false, fmt.Errorf("%w: a call token in %s: %w", ErrCorrupt, c.dir, err)
	}
	*res = r
	return true, nil
}

// stageCall adds ci's token and the call's result to b, the batch of the
// call's writes, and, once in a while, the deletion of tokens past
// tokenLife.
func (c *store) stageCall(b *pebble.Batch, ci *callInfo, res *callResult) error {
	if ci == nil || len(ci.token) != tokenLen {
		return nil
	}
	if err := b.Set(callKeyOf(ci.token), res.encode(), nil); err != nil {
		return err
	}
	// One tokened call in 256 (by its random byte) prunes: a range
	// tombstone is cheap, and no state is needed to space them out.
	if ci.token[8] != 0 {
		return nil
	}
	upper := binary.BigEndian.AppendUint64([]byte{callPrefix}, uint64(time.Now().Add(-tokenLife).UnixNano()))
	return b.DeleteRange([]byte{callPrefix}, upper, nil)
}

// tally is what one call counted in the owner's store, returned to the
// forwarder with the answer so that both count a call alike.
type tally struct{ hits, misses, sets, deletes int64 }

// The store's Hits, Misses, Sets and Deletes count the calls made in its own
// process. A call forwarded by another process counts in its tally only,
// which goes back with the answer: the other process counts it as its own
// (forwarder.reply). So every process's Stats counts its own calls, and a
// process's counts do not change meaning, or drop, when it takes the store
// over (role.base).

// countRead counts a read's hit (err == nil) or miss (ErrNotFound);
// other errors count as neither.
func (c *store) countRead(ctx context.Context, sh uint64, err error) {
	t := tallyOf(ctx)
	if t == nil {
		c.stats.countRead(sh, err)
		return
	}
	switch {
	case err == nil:
		t.hits++
	case errors.Is(err, ErrNotFound):
		t.misses++
	}
}

func (c *store) countSets(ctx context.Context, sh uint64, n int64) {
	if t := tallyOf(ctx); t != nil {
		t.sets += n
		return
	}
	c.stats.sets.add(sh, n)
}

func (c *store) countDeletes(ctx context.Context, sh uint64, n int64) {
	if t := tallyOf(ctx); t != nil {
		t.deletes += n
		return
	}
	c.stats.deletes.add(sh, n)
}

// tallyOf returns the tally of a call forwarded by another process, nil for
// a call made in this one.
func tallyOf(ctx context.Context) *tally {
	if ci := callOf(ctx); ci != nil {
		return ci.tally
	}
	return nil
}
