package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"time"
)

// Every key, value and operation of a run comes from this file, from fixed
// seeds. The Go peers regenerate what they need; the Python peer reads the
// same data from a spec file the harness writes (spec.go), and both sides
// print a SHA-256 over every operation, which the harness compares.

const (
	seed      = 0x5eed_d15c_cac4e
	poolSize  = 1 << 20 // each value pool: values are windows into it
	hotSetW6  = 1000
	valueW1   = 128
	valueW4   = 16 << 10
	valueW6   = 4 << 10
	ttlW5     = 2 * time.Second
	checkW5   = 3 * time.Second
	windowW5  = 30 * time.Second
	settleW5  = 5 * time.Second // W5 stops waiting when nothing came back for this long
	limitW6   = 64 << 20
	dataW6    = 320 << 20
	zipfS     = 1.1
	setShare  = 10 // W3: one op in setShare is a Set
	procsW7   = 4
	workersW2 = 4
	workersW3 = 4
	// W8: the model's multi-process example sets keyW8 with ttlW8 from
	// procsW8 processes at once; its one-process loop reopens a cache of
	// keysW8 keys.
	procsW8 = 4
	keysW8  = 1000
	keyW8   = "lifecycle"
	ttlW8   = 60 * time.Second
	// W9: the store's size limit, and the two limits compared for a store
	// of N9Small keys (SizeLimit must not change read speed).
	limitW9     = 8 << 30
	limitW9Low  = 1 << 30
	limitW9High = 64 << 30
	// W11: a cache held at its size limit by 128-byte values it cannot
	// compress, dataW11 of them in all at scale 1 (3x the limit).
	limitW11 = 64 << 20
	dataW11  = 3 * limitW11
	valueW11 = 128
)

// Salts keep the values of different workloads (and of W3's overwrites)
// apart while they share the key index space.
const (
	saltW1  = 1
	saltW3  = 3
	saltW4  = 4
	saltW5  = 5
	saltW6  = 6
	saltW8  = 8
	saltW9  = 9
	saltW11 = 11
)

// params are a run's sizes at a scale. Key indexes are global: W1's keys are
// [0, N1), W4's follow, then W5's, then W6's, then W11's.
type params struct {
	Scale float64
	N1    int   // W1 keys and Sets
	N2    int   // W2 Gets
	N3    int   // W3 ops
	N4    int   // W4 Sets and Gets
	N5    int   // W5 Sets
	N6    int   // W6 Sets, hot set included
	Hot6  int   // W6 hot set
	Limit int64 // W6 size limit
	// Window is how long W5 waits for the space of expired entries to come
	// back, counted from the end of its Sets.
	Window  time.Duration
	Rounds8 int // W8 rounds of procsW8 processes
	N8      int // W8 Open/Set/Close cycles in one process
	N9      int // W9 keys of the large store
	N9Small int // W9 keys of the store reopened at two size limits
	N9Gets  int // W9 Gets after each reopen
	N10     int // W10 calls of each phase
	N11     int // W11 Sets
}

func newParams(scale float64) params {
	n := func(base int, lo int) int { return max(lo, int(math.Round(float64(base)*scale))) }
	p := params{
		Scale:  scale,
		N1:     n(500_000, 1000),
		N2:     n(500_000, 1000),
		N3:     n(1_000_000, 1000),
		N4:     n(20_000, 100),
		N5:     n(200_000, 1000),
		Hot6:   hotSetW6,
		Limit:  limitW6,
		Window: max(time.Duration(float64(windowW5)*scale), 4*time.Second),
		// W8's counts stay above what a p50 and a max need; W9's keys are
		// not kept in memory (key(i) as they go), so they scale freely.
		Rounds8: n(20, 2),
		N8:      n(200, 10),
		N9:      n(5_000_000, 1000),
		N9Small: n(250_000, 1000),
		N9Gets:  n(500_000, 1000),
		N10:     n(100_000, 1000),
	}
	// W6 keeps its 64 MiB limit at every scale: below that Pebble's fixed
	// overheads (WAL, memtables) leave a cache no room. The scale applies
	// to the data past the limit: 4x the limit at scale 1 (320 MiB in all).
	p.N6 = int((limitW6 + int64(float64(dataW6-limitW6)*scale)) / valueW6)
	// W11 likewise: its limit stays, and the scale applies to the 2x the
	// limit written past it.
	p.N11 = int((limitW11 + int64(float64(dataW11-limitW11)*scale)) / valueW11)
	return p
}

func (p params) base4() int { return p.N1 }
func (p params) base5() int { return p.N1 + p.N4 }
func (p params) base6() int { return p.N1 + p.N4 + p.N5 }
func (p params) keys() int  { return p.N1 + p.N4 + p.N5 + p.N6 }

// base11 is W11's first key, past the keys the spec file holds: the Python
// peer makes W11's keys itself (key in pydiskcache.py), as the spec would
// otherwise triple in size and weigh on every Python run's memory.
func (p params) base11() int { return p.keys() }

// mix64 is SplitMix64's finalizer: a bijection on uint64, so distinct
// inputs give distinct keys.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// key returns key i: 16 hex digits of mix64(i) (unique), then 0-8 more
// characters, so keys are 16-24 bytes long.
func key(i int) string {
	h := mix64(uint64(i) ^ seed)
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], h)
	binary.BigEndian.PutUint64(raw[8:], mix64(h))
	var b [32]byte
	hex.Encode(b[:], raw[:])
	return string(b[:16+int(h>>56)%9])
}

// keyRange returns keys [from, to).
func keyRange(from, to int) []string {
	ks := make([]string, to-from)
	for i := range ks {
		ks[i] = key(from + i)
	}
	return ks
}

// pools are the bytes values are cut from: even keys get incompressible
// bytes, odd keys text, so half the values of every workload compress.
type pools struct {
	random, text []byte
}

var words = []string{
	"cache", "disk", "value", "the", "of", "and", "a", "to", "in", "is",
	"request", "response", "user", "session", "page", "render", "token",
	"embedding", "model", "vector", "query", "result", "server", "time",
	"expiry", "record", "store", "write", "read", "hit", "miss", "key",
	"json", "http", "status", "ok", "error", "id", "name", "list",
}

func newPools() pools {
	r := rand.New(rand.NewPCG(seed, 1))
	p := pools{random: make([]byte, poolSize), text: make([]byte, 0, poolSize)}
	for i := 0; i < poolSize; i += 8 {
		binary.LittleEndian.PutUint64(p.random[i:], r.Uint64())
	}
	for len(p.text) < poolSize {
		p.text = append(p.text, words[r.IntN(len(words))]...)
		p.text = append(p.text, ' ')
	}
	p.text = p.text[:poolSize]
	return p
}

// appendValue appends the value of key index i at size n (n >= 8) with a
// salt: an 8-byte tag that makes it unique, then a window of a pool.
func (p pools) appendValue(dst []byte, i, n int, salt uint64) []byte {
	pool := p.random
	if i%2 == 1 {
		pool = p.text
	}
	return appendWindow(dst, pool, i, n, salt)
}

// appendRandom is appendValue from the random pool whatever i is: W11
// measures how many entries a limit holds, which compression would blur.
func (p pools) appendRandom(dst []byte, i, n int, salt uint64) []byte {
	return appendWindow(dst, p.random, i, n, salt)
}

func appendWindow(dst, pool []byte, i, n int, salt uint64) []byte {
	tag := uint64(i)<<8 | salt
	off := int(mix64(tag^seed) % uint64(poolSize-n+9))
	dst = binary.LittleEndian.AppendUint64(dst, tag)
	return append(dst, pool[off:off+n-8]...)
}

// The operation streams. Indexes are global key indexes.

// orderW1 is the random order in which W1 fills keys [0, N1).
func orderW1(p params) []uint32 {
	r := rand.New(rand.NewPCG(seed, 11))
	o := make([]uint32, p.N1)
	for i := range o {
		o[i] = uint32(i)
	}
	r.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
	return o
}

// getsW2 are N2 uniform random Gets over W1's keys.
func getsW2(p params) []uint32 {
	r := rand.New(rand.NewPCG(seed, 12))
	o := make([]uint32, p.N2)
	for i := range o {
		o[i] = uint32(r.IntN(p.N1))
	}
	return o
}

// setBit marks a Set in an op stream that mixes Gets and Sets.
const setBit = 1 << 31

// opsW3 are N3 ops over W1's keys, zipf-distributed (s = 1.1) by rank, the
// ranks scattered over the keys; one in setShare is a Set.
func opsW3(p params) []uint32 {
	r := rand.New(rand.NewPCG(seed, 13))
	rank := make([]uint32, p.N1)
	for i := range rank {
		rank[i] = uint32(i)
	}
	r.Shuffle(len(rank), func(i, j int) { rank[i], rank[j] = rank[j], rank[i] })
	z := rand.NewZipf(r, zipfS, 1, uint64(p.N1-1))
	o := make([]uint32, p.N3)
	for i := range o {
		o[i] = rank[z.Uint64()]
		if r.IntN(setShare) == 0 {
			o[i] |= setBit
		}
	}
	return o
}

// getsW4 are N4 uniform random Gets over W4's keys.
func getsW4(p params) []uint32 {
	r := rand.New(rand.NewPCG(seed, 14))
	o := make([]uint32, p.N4)
	for i := range o {
		o[i] = uint32(p.base4() + r.IntN(p.N4))
	}
	return o
}

// W5 sets keys [base5, base5+N5) in order with ttlW5. W6 sets its hot set
// (the first Hot6 of its keys), then each remaining key followed by a Get of
// hot key (j mod Hot6); a hot Get that misses sets that key again. W11 sets
// keys [base11, base11+N11) in order, values from the random pool.

// chunk returns part k of n of ops, as contiguous slices.
func chunk[T any](ops []T, k, n int) []T {
	return ops[len(ops)*k/n : len(ops)*(k+1)/n]
}

// digests are SHA-256 sums over every operation of each workload, in the
// form the Python script prints them. W7 reuses W2's and W3's streams; W8's
// is its one-process loop (the preload, then one Set a cycle); W9 runs on
// the Go peers only.
func digests(p params) map[string]string {
	pl := newPools()
	d := map[string]string{}
	h := sha256.New()
	var buf []byte
	opOf := func(value func([]byte, int, int, uint64) []byte, kind byte, i int, n int, salt uint64, ttl time.Duration) {
		k := key(i)
		buf = append(buf[:0], kind)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(k)))
		buf = append(buf, k...)
		if kind == 'S' {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(ttl.Milliseconds()))
			buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
			buf = value(buf, i, n, salt)
		}
		h.Write(buf)
	}
	op := func(kind byte, i int, n int, salt uint64, ttl time.Duration) {
		opOf(pl.appendValue, kind, i, n, salt, ttl)
	}
	done := func(name string) {
		d[name] = hex.EncodeToString(h.Sum(nil))
		h.Reset()
	}
	for _, i := range orderW1(p) {
		op('S', int(i), valueW1, saltW1, 0)
	}
	done("W1")
	for _, i := range getsW2(p) {
		op('G', int(i), 0, 0, 0)
	}
	done("W2")
	for _, o := range opsW3(p) {
		if o&setBit != 0 {
			op('S', int(o&^setBit), valueW1, saltW3, 0)
		} else {
			op('G', int(o), 0, 0, 0)
		}
	}
	done("W3")
	for i := range p.N4 {
		op('S', p.base4()+i, valueW4, saltW4, 0)
	}
	for _, i := range getsW4(p) {
		op('G', int(i), 0, 0, 0)
	}
	done("W4")
	for i := range p.N5 {
		op('S', p.base5()+i, valueW1, saltW5, ttlW5)
	}
	done("W5")
	for i := range p.Hot6 {
		op('S', p.base6()+i, valueW6, saltW6, 0)
	}
	for j := p.Hot6; j < p.N6; j++ {
		op('S', p.base6()+j, valueW6, saltW6, 0)
		op('G', p.base6()+(j%p.Hot6), 0, 0, 0)
	}
	done("W6")
	for i := range keysW8 {
		op('S', i, valueW1, saltW8, 0)
	}
	for j := range p.N8 {
		op('S', j%keysW8, valueW1, saltW8, ttlW8)
	}
	done("W8")
	for j := range p.N11 {
		opOf(pl.appendRandom, 'S', p.base11()+j, valueW11, saltW11, 0)
	}
	done("W11")
	return d
}

// getsW9 calls fn with n uniform random key indexes in [0, keys): W9's
// Gets, generated as they go so that the store's process holds no key list.
func getsW9(keys, n int, fn func(i int) error) error {
	r := rand.New(rand.NewPCG(seed, 19))
	for range n {
		if err := fn(r.IntN(keys)); err != nil {
			return err
		}
	}
	return nil
}
