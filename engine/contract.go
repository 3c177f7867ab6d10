package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tidwall/redcon"
)

// The contract between a Cache and the owner of its directory. Every method
// of Cache that reaches the data is one entry of methods below: the owner
// serves it on its socket as one private command, the forwarder (forward.go)
// sends it as that command, and Cache.call asks the entry whether the call
// may be repeated across a handoff. The tests enumerate Cache's methods by
// reflection and fail for one that is missing here (contract_test.go).
//
// On the socket each call is one RESP command, "diskcache.<method>", with
// one argument: the call's arguments in the binary encoding of wbuf. The
// reply is one bulk string: a status code, the counts the call added to the
// owner's Stats (so that a forwarder counts what the owner counts), and the
// results, or for a failure the owner's error text. Errors travel as codes,
// never as text to search. RESP carries the calls so that rueidis's
// pipelining serves the forwarders; the socket answers Redis's own commands
// too, for clients in other languages.

// protocolVersion is the version of the private command set. A forwarder
// checks it with diskcache.hello when it connects: processes of two
// versions of diskcache on one directory fail at Open with
// ErrIncompatible instead of misreading each other.
const protocolVersion = 2

const cmdPrefix = "diskcache."

// repeat says whether a call may be sent again after the owner went away
// with the call in flight.
type repeat uint8

const (
	// repeatSafe: a read, or a write that, applied twice, leaves the same
	// state and gives the same answer as applied once.
	repeatSafe repeat = iota
	// repeatToken: a conditional or counting write. It carries a token
	// (calls.go) that the next owner recognises when the first owner
	// applied it, so the repeat answers what the first attempt did.
	repeatToken
)

// method is one entry of the contract.
type method struct {
	name   string // Cache's method
	repeat repeat
	// serve decodes the arguments from r, runs the call on s and encodes
	// its results into w.
	serve func(ctx context.Context, s *store, r *rbuf, w *wbuf) error
}

func (m *method) command() string { return cmdPrefix + strings.ToLower(m.name) }

var (
	mGet = &method{name: "Get", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key := r.str()
		if err := r.done(); err != nil {
			return err
		}
		v, err := s.Get(ctx, key)
		w.bytes(v)
		return err
	}}
	mGetWithTTL = &method{name: "GetWithTTL", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key := r.str()
		if err := r.done(); err != nil {
			return err
		}
		v, left, err := s.GetWithTTL(ctx, key)
		w.bytes(v)
		w.int(int64(left))
		return err
	}}
	mExists = &method{name: "Exists", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key := r.str()
		if err := r.done(); err != nil {
			return err
		}
		ok, err := s.Exists(ctx, key)
		w.bool(ok)
		return err
	}}
	mTTL = &method{name: "TTL", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key := r.str()
		if err := r.done(); err != nil {
			return err
		}
		left, err := s.TTL(ctx, key)
		w.int(int64(left))
		return err
	}}
	mGetMany = &method{name: "GetMany", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		keys := r.strs()
		if err := r.done(); err != nil {
			return err
		}
		m, err := s.GetMany(ctx, keys)
		// In the order of keys, nil for a missing one.
		for _, k := range keys {
			w.bytes(m[k])
		}
		return err
	}}
	mSet = &method{name: "Set", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key, value, ttl := r.str(), r.bytes(), time.Duration(r.int())
		if err := r.done(); err != nil {
			return err
		}
		return s.Set(ctx, key, nonNil(value), ttl)
	}}
	mSetMany = &method{name: "SetMany", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		es := r.entries()
		if err := r.done(); err != nil {
			return err
		}
		return s.SetMany(ctx, es)
	}}
	mSetManyIfAbsent = &method{name: "SetManyIfAbsent", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		es := r.entries()
		if err := r.done(); err != nil {
			return err
		}
		ok, err := s.SetManyIfAbsent(ctx, es)
		w.bool(ok)
		return err
	}}
	mDelete = &method{name: "Delete", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key := r.str()
		if err := r.done(); err != nil {
			return err
		}
		return s.Delete(ctx, key)
	}}
	mDeleteMany = &method{name: "DeleteMany", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		keys := r.strs()
		if err := r.done(); err != nil {
			return err
		}
		n, err := s.DeleteMany(ctx, keys...)
		w.int(int64(n))
		return err
	}}
	mTouch = &method{name: "Touch", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key, ttl := r.str(), time.Duration(r.int())
		if err := r.done(); err != nil {
			return err
		}
		return s.Touch(ctx, key, ttl)
	}}
	mLen = &method{name: "Len", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		if err := r.done(); err != nil {
			return err
		}
		n, err := s.Len(ctx)
		w.int(n)
		return err
	}}
	mClear = &method{name: "Clear", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		if err := r.done(); err != nil {
			return err
		}
		return s.Clear(ctx)
	}}
	mSetWithOptions = &method{name: "SetWithOptions", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key, value, o := r.str(), nonNil(r.bytes()), r.setOptions()
		if err := r.done(); err != nil {
			return err
		}
		res, err := s.SetWithOptions(ctx, key, value, o)
		w.bool(res.Written)
		w.bool(res.HadOld)
		w.bytes(res.Old)
		return err
	}}
	mGetDelete = &method{name: "GetDelete", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key := r.str()
		if err := r.done(); err != nil {
			return err
		}
		v, err := s.GetDelete(ctx, key)
		w.bytes(v)
		return err
	}}
	mGetExpire = &method{name: "GetExpire", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key, e := r.str(), r.expiry()
		if err := r.done(); err != nil {
			return err
		}
		v, err := s.GetExpire(ctx, key, e)
		w.bytes(v)
		return err
	}}
	mExpire = &method{name: "Expire", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key, e := r.str(), r.expiry()
		if err := r.done(); err != nil {
			return err
		}
		ok, err := s.Expire(ctx, key, e)
		w.bool(ok)
		return err
	}}
	mIncrBy = &method{name: "IncrBy", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key, delta := r.str(), r.int()
		if err := r.done(); err != nil {
			return err
		}
		n, err := s.IncrBy(ctx, key, delta)
		w.int(n)
		return err
	}}
	mAppend = &method{name: "Append", repeat: repeatToken, serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		key, suffix := r.str(), r.bytes()
		if err := r.done(); err != nil {
			return err
		}
		n, err := s.Append(ctx, key, suffix)
		w.int(int64(n))
		return err
	}}
	mScan = &method{name: "Scan", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		cursor, count := r.uint(), int(r.int())
		if err := r.done(); err != nil {
			return err
		}
		keys, next, err := s.Scan(ctx, cursor, count)
		w.strs(keys)
		w.uint(next)
		return err
	}}
	mStats = &method{name: "Stats", serve: func(ctx context.Context, s *store, r *rbuf, w *wbuf) error {
		if err := r.done(); err != nil {
			return err
		}
		st := s.Stats()
		for _, n := range []int64{st.Hits, st.Misses, st.LocalHits, st.Sets, st.Deletes, st.Expirations,
			st.Evictions, st.EvictedBytes, st.Entries, st.Bytes, st.DiskBytes} {
			w.int(n)
		}
		return nil
	}}
)

// methods is the contract: every method of Cache that reaches the data.
var methods = []*method{
	mGet, mGetWithTTL, mExists, mTTL, mGetMany, mSet, mSetMany, mSetManyIfAbsent, mDelete, mDeleteMany,
	mTouch, mLen, mClear, mSetWithOptions, mGetDelete, mGetExpire, mExpire, mIncrBy, mAppend, mScan, mStats,
}

// byCommand finds a method by its command on the socket.
var byCommand = func() map[string]*method {
	m := make(map[string]*method, len(methods))
	for _, x := range methods {
		m[x.command()] = x
	}
	return m
}()

const cmdHello = cmdPrefix + "hello"

// Status codes of a reply. The numbers are part of the protocol: add new
// codes at the end, and bump protocolVersion when one changes meaning.
const (
	codeOK byte = iota
	codeNotFound
	codeClosed // the owner is closing: the forwarder hands off
	codeKeyTooLarge
	codeValueTooLarge
	codeCorrupt
	codeNotInteger
	codeOverflow
	codeStoreFailed
	codeWritesSuspended
	codeBadRequest   // the arguments did not decode
	codeIncompatible // hello from another protocol version
	codeOther        // any other error; its text follows
)

// codeErrors maps codes to this package's sentinels, in the order an error
// is tested against them.
var codeErrors = []struct {
	code byte
	err  error
}{
	{codeNotFound, ErrNotFound},
	{codeClosed, ErrClosed},
	{codeKeyTooLarge, ErrKeyTooLarge},
	{codeValueTooLarge, ErrValueTooLarge},
	{codeCorrupt, ErrCorrupt},
	{codeNotInteger, ErrNotInteger},
	{codeOverflow, ErrOverflow},
	{codeStoreFailed, ErrStoreFailed},
	{codeWritesSuspended, ErrWritesSuspended},
	{codeIncompatible, ErrIncompatible},
}

func codeOf(err error) byte {
	for _, ce := range codeErrors {
		if errors.Is(err, ce.err) {
			return ce.code
		}
	}
	return codeOther
}

func errOfCode(code byte) error {
	for _, ce := range codeErrors {
		if ce.code == code {
			return ce.err
		}
	}
	return nil
}

// errBadRequest is what the owner answers to arguments it cannot decode.
var errBadRequest = errors.New("diskcache: malformed call")

// protocol serves the contract on the owner's socket, beside the Redis
// commands (a resp.Extension).
type protocol struct{ s *store }

// testHookServed, when set by a test, runs after the owner applied a call
// and before it answers: the multi-process tests kill the owner there.
var testHookServed func(name string)

func (p protocol) ServeCommand(ctx context.Context, args [][]byte, out []byte) ([]byte, bool) {
	if !bytes.HasPrefix(args[0], []byte(cmdPrefix)) {
		return out, false
	}
	name := string(args[0])
	if len(args) != 2 {
		return redcon.AppendError(out, "ERR "+name+" takes one argument"), true
	}
	if name == cmdHello {
		return redcon.AppendBulk(out, p.hello(args[1])), true
	}
	m := byCommand[name]
	if m == nil {
		return redcon.AppendError(out, "ERR diskcache: no private command "+name), true
	}
	r := rbuf{b: args[1]}
	ci := callInfo{tally: &tally{}}
	if m.repeat == repeatToken {
		ci.token, ci.repeat = r.bytes(), r.bool()
	}
	var w wbuf
	err := m.serve(withCall(ctx, &ci), p.s, &r, &w)
	if testHookServed != nil {
		testHookServed(m.name)
	}
	return redcon.AppendBulk(out, encodeReply(err, ci.tally, w.b)), true
}

// hello checks the forwarder's protocol version and answers the owner's.
func (p protocol) hello(arg []byte) []byte {
	r := rbuf{b: arg}
	v := r.uint()
	var w wbuf
	w.uint(protocolVersion)
	w.int(int64(os.Getpid()))
	fd, id := p.s.tier.handle()
	w.int(fd)
	w.uint(id)
	if err := r.done(); err != nil || v != protocolVersion {
		return encodeReply(fmt.Errorf("%w: the owner (pid %d) speaks protocol version %d, the caller %d",
			ErrIncompatible, os.Getpid(), protocolVersion, v), nil, nil)
	}
	return encodeReply(nil, nil, w.b)
}

// encodeReply is a reply: status, tally, then the results or, for an
// error, its text (none for a miss: it is common and says nothing more).
func encodeReply(err error, t *tally, results []byte) []byte {
	var w wbuf
	code := codeOK
	switch {
	case err == nil:
	case errors.Is(err, errBadRequest):
		code = codeBadRequest
	default:
		code = codeOf(err)
	}
	w.b = append(w.b, code)
	if t == nil {
		t = &tally{}
	}
	w.int(t.hits)
	w.int(t.misses)
	w.int(t.sets)
	w.int(t.deletes)
	switch code {
	case codeOK:
		w.b = append(w.b, results...)
	case codeNotFound:
	default:
		w.str(err.Error())
	}
	return w.b
}

// wbuf encodes a call's arguments or results: integers as varints, byte
// strings with their length (0 for nil, else length+1, so that a nil value
// and an empty one stay apart).
type wbuf struct{ b []byte }

func (w *wbuf) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *wbuf) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }

func (w *wbuf) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *wbuf) bytes(v []byte) {
	if v == nil {
		w.uint(0)
		return
	}
	w.uint(uint64(len(v)) + 1)
	w.b = append(w.b, v...)
}

func (w *wbuf) str(s string) {
	w.uint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *wbuf) strs(ss []string) {
	w.uint(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *wbuf) entries(es []Entry) {
	w.uint(uint64(len(es)))
	for _, e := range es {
		w.str(e.Key)
		w.bytes(e.Value)
		w.int(int64(e.TTL))
	}
}

func (w *wbuf) expiry(e Expiry) {
	w.int(int64(e.TTL))
	w.bool(!e.At.IsZero())
	if !e.At.IsZero() {
		w.int(e.At.UnixNano())
	}
	w.bool(e.Persist)
}

func (w *wbuf) setOptions(o SetOptions) {
	w.expiry(o.Expiry)
	w.bool(o.KeepTTL)
	w.bool(o.NX)
	w.bool(o.XX)
	w.bool(o.Get)
}

// rbuf decodes what wbuf encoded. The first failure sticks: later reads
// return zero values, and done reports it. Lengths are checked against
// the bytes left, so garbage never allocates more than it holds.
type rbuf struct {
	b   []byte
	err error
}

func (r *rbuf) fail() {
	if r.err == nil {
		r.err = errBadRequest
	}
	r.b = nil
}

// done reports a decoding failure, or bytes left over.
func (r *rbuf) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}

func (r *rbuf) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rbuf) bool() bool {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// take returns the next n bytes, aliasing the buffer.
func (r *rbuf) take(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *rbuf) bytes() []byte {
	n := r.uint()
	if n == 0 || r.err != nil {
		return nil
	}
	return r.take(n - 1)
}

func (r *rbuf) str() string { return string(r.take(r.uint())) }

// count reads a number of items, each at least one byte long.
func (r *rbuf) count() int {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *rbuf) strs() []string {
	n := r.count()
	if n == 0 {
		return nil // as the store returns no keys
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.str()
	}
	return ss
}

func (r *rbuf) entries() []Entry {
	n := r.count()
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Key: r.str(), Value: nonNil(r.bytes()), TTL: time.Duration(r.int())}
	}
	return es
}

// nonNil makes a decoded value non-nil: an empty value is a value.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

func (r *rbuf) expiry() Expiry {
	e := Expiry{TTL: time.Duration(r.int())}
	if r.bool() {
		e.At = time.Unix(0, r.int())
	}
	e.Persist = r.bool()
	return e
}

func (r *rbuf) setOptions() SetOptions {
	return SetOptions{Expiry: r.expiry(), KeepTTL: r.bool(), NX: r.bool(), XX: r.bool(), Get: r.bool()}
}
