package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"

	"github.com/diskcache-go/diskcache/resp"
	"github.com/diskcache-go/diskcache/resp/storetest"
)

// cacheOnly are Cache's methods that do not reach the data, so are not in
// the contract; cacheAliases are data methods written over one that is.
var (
	cacheOnly    = map[string]bool{"Close": true, "Dir": true, "IsOwner": true, "Serve": true}
	cacheAliases = map[string]string{"Add": "SetWithOptions"}
)

// TestContractCoversCache: every method of Cache that reaches the data is
// an entry of the contract, with one private command each, and the store
// and the forwarder both have it with Cache's signature. A method added to
// Cache and forgotten in the contract fails here.
func TestContractCoversCache(t *testing.T) {
	inTable := map[string]*method{}
	commands := map[string]bool{}
	for _, m := range methods {
		if inTable[m.name] != nil || commands[m.command()] {
			t.Errorf("%s is in the contract twice", m.name)
		}
		inTable[m.name] = m
		commands[m.command()] = true
	}
	ct := reflect.TypeOf(&Cache{})
	for i := 0; i < ct.NumMethod(); i++ {
		cm := ct.Method(i)
		name := cm.Name
		if cacheOnly[name] {
			continue
		}
		if alias, ok := cacheAliases[name]; ok {
			name = alias
		}
		if inTable[name] == nil {
			t.Errorf("Cache.%s is not in the contract (contract.go: methods)", cm.Name)
			continue
		}
		if name != cm.Name {
			continue
		}
		for _, impl := range []reflect.Type{reflect.TypeOf(&store{}), reflect.TypeOf(&forwarder{})} {
			im, ok := impl.MethodByName(name)
			if !ok {
				t.Errorf("%v has no %s", impl, name)
				continue
			}
			// Drop the receivers and compare the rest of the signatures.
			if a, b := signature(cm.Type), signature(im.Type); a != b {
				t.Errorf("%v.%s is %s, Cache's is %s", impl, name, b, a)
			}
		}
	}
	for name := range inTable {
		if _, ok := ct.MethodByName(name); !ok {
			t.Errorf("the contract has %s, which Cache does not", name)
		}
	}
}

func signature(ft reflect.Type) string {
	var in, out []string
	for i := 1; i < ft.NumIn(); i++ {
		in = append(in, ft.In(i).String())
	}
	for i := 0; i < ft.NumOut(); i++ {
		out = append(out, ft.Out(i).String())
	}
	return fmt.Sprintf("(%s) (%s)", strings.Join(in, ", "), strings.Join(out, ", "))
}

// TestConformance runs the same random sequence of calls, drawn from every
// data method of Cache found by reflection, against an owner and against a
// forwarder (whose owner is another Cache in this process), and compares
// results, errors (by sentinel) and Stats after every step.
func TestConformance(t *testing.T) {
	opts := &Options{SizeLimit: 64 << 20, HotTierSize: 1 << 20}
	owner, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	dir := t.TempDir()
	other, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	fwd, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	if !owner.IsOwner() || fwd.IsOwner() {
		t.Fatal("roles are not owner and forwarder")
	}

	ct := reflect.TypeOf(&Cache{})
	var names []string
	for i := 0; i < ct.NumMethod(); i++ {
		if n := ct.Method(i).Name; !cacheOnly[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	g := newArgGen(owner.opts.MaxValueSize)
	rng := rand.New(rand.NewPCG(1, 2))
	steps := len(names) * 40
	for step := 0; step < steps; step++ {
		// Every method once in order first, then at random.
		name := names[step%len(names)]
		if step >= len(names) {
			name = names[rng.IntN(len(names))]
		}
		if name == "Clear" && rng.IntN(8) != 0 {
			continue // keep the keyspace populated most of the time
		}
		mt, _ := ct.MethodByName(name)
		args := g.args(rng, mt.Type)
		want := callMethod(owner, name, args)
		got := callMethod(fwd, name, args)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("step %d: %s(%s):\n owner     %v\n forwarder %v", step, name, showArgs(args), want, got)
		}
		if a, b := comparableStats(owner.Stats()), comparableStats(fwd.Stats()); a != b {
			t.Fatalf("step %d: after %s(%s) Stats differ:\n owner     %+v\n forwarder %+v", step, name, showArgs(args), a, b)
		}
	}
}

// comparableStats are the counters an owner and a forwarder running the
// same calls must agree on.
func comparableStats(s Stats) Stats {
	return Stats{Hits: s.Hits, Misses: s.Misses, Sets: s.Sets, Deletes: s.Deletes, Entries: s.Entries}
}

// callMethod calls c's method name and returns its results, normalised:
// an error by the sentinel it wraps, a remaining time rounded to minutes
// (the two caches ran the call moments apart).
func callMethod(c *Cache, name string, args []reflect.Value) []any {
	m := reflect.ValueOf(c).MethodByName(name)
	var outs []reflect.Value
	if m.Type().IsVariadic() {
		outs = m.CallSlice(args)
	} else {
		outs = m.Call(args)
	}
	res := make([]any, len(outs))
	for i, o := range outs {
		switch v := o.Interface().(type) {
		case error:
			res[i] = errClass(v)
		case time.Duration:
			res[i] = v.Round(time.Minute)
		case Stats:
			res[i] = comparableStats(v)
		default:
			res[i] = v
		}
		if o.Kind() == reflect.Interface && o.IsNil() {
			res[i] = "nil"
		}
	}
	return res
}

func errClass(err error) string {
	for _, s := range []error{ErrNotFound, ErrClosed, ErrKeyTooLarge, ErrValueTooLarge, ErrCorrupt,
		ErrNotInteger, ErrOverflow, ErrStoreFailed, ErrWritesSuspended} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other error: " + err.Error()
}

func showArgs(args []reflect.Value) string {
	var parts []string
	for _, a := range args {
		if _, ok := a.Interface().(context.Context); ok {
			continue
		}
		s := fmt.Sprintf("%v", a.Interface())
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// argGen draws arguments by type from small pools, so that calls collide
// on keys and every branch (missing, present, not an integer, too large)
// comes up.
type argGen struct {
	keys   []string
	values [][]byte
	ttls   []time.Duration
	at     time.Time
}

func newArgGen(maxValue int) *argGen {
	return &argGen{
		keys:   []string{"a", "b", "n", "big", "", strings.Repeat("k", MaxKeySize+1)},
		values: [][]byte{[]byte("1"), []byte("42"), []byte("x"), {}, []byte("9223372036854775807"), make([]byte, maxValue+1)},
		ttls:   []time.Duration{0, time.Hour, 2 * time.Hour},
		at:     time.Now().Add(3 * time.Hour),
	}
}

func (g *argGen) key(r *rand.Rand) string {
	if r.IntN(20) == 0 {
		return g.keys[len(g.keys)-1] // too large
	}
	return g.keys[r.IntN(len(g.keys)-1)]
}

func (g *argGen) value(r *rand.Rand) []byte {
	if r.IntN(20) == 0 {
		return g.values[len(g.values)-1] // too large
	}
	return g.values[r.IntN(len(g.values)-1)]
}

func (g *argGen) expiry(r *rand.Rand) Expiry {
	switch r.IntN(5) {
	case 0:
		return Expiry{}
	case 1:
		return Expiry{Persist: true}
	case 2:
		return Expiry{At: g.at}
	case 3:
		return Expiry{At: time.Unix(0, 1)} // in the past: deletes
	}
	return Expiry{TTL: g.ttls[1+r.IntN(2)]}
}

func (g *argGen) entries(r *rand.Rand) []Entry {
	es := make([]Entry, r.IntN(4))
	for i := range es {
		es[i] = Entry{Key: g.keys[r.IntN(len(g.keys)-2)], Value: g.values[r.IntN(len(g.values)-1)], TTL: g.ttls[r.IntN(len(g.ttls))]}
	}
	return es
}

// args draws the arguments of a method of type mt (receiver first).
func (g *argGen) args(r *rand.Rand, mt reflect.Type) []reflect.Value {
	var args []reflect.Value
	for i := 1; i < mt.NumIn(); i++ {
		if mt.In(i) == reflect.TypeOf((*context.Context)(nil)).Elem() {
			args = append(args, reflect.ValueOf(ctx))
			continue
		}
		var v any
		switch in := mt.In(i); in {
		case reflect.TypeOf(""):
			v = g.key(r)
		case reflect.TypeOf([]byte(nil)):
			v = g.value(r)
		case reflect.TypeOf(time.Duration(0)):
			v = g.ttls[r.IntN(len(g.ttls))]
		case reflect.TypeOf([]string(nil)):
			ks := make([]string, r.IntN(4))
			for j := range ks {
				ks[j] = g.key(r)
			}
			v = ks
		case reflect.TypeOf([]Entry(nil)):
			v = g.entries(r)
		case reflect.TypeOf(Expiry{}):
			v = g.expiry(r)
		case reflect.TypeOf(SetOptions{}):
			o := SetOptions{NX: r.IntN(3) == 0, Get: r.IntN(2) == 0}
			o.XX = !o.NX && r.IntN(3) == 0
			if e := g.expiry(r); !e.Persist {
				o.Expiry = e
			}
			o.KeepTTL = o.Expiry.IsZero() && r.IntN(3) == 0
			v = o
		case reflect.TypeOf(int64(0)):
			v = []int64{1, -3, math.MaxInt64, math.MinInt64}[r.IntN(4)]
		case reflect.TypeOf(uint64(0)):
			v = uint64(0)
		case reflect.TypeOf(0):
			v = r.IntN(5)
		default:
			panic(fmt.Sprintf("no arguments of type %v: teach argGen", in))
		}
		args = append(args, reflect.ValueOf(v))
	}
	return args
}

// TestReplyCodesDecode: a malformed call gets codeBadRequest and applies
// nothing, and every code maps back to its sentinel.
func TestReplyCodesDecode(t *testing.T) {
	c, _ := openTest(t, nil)
	p := protocol{s: c.local()}
	var w wbuf
	w.str("k")
	w.bytes([]byte("v"))
	// No TTL: the arguments end early.
	out, ok := p.ServeCommand(context.Background(), [][]byte{[]byte(mSet.command()), w.b}, nil)
	if !ok || !strings.Contains(string(out), string([]byte{codeBadRequest})) {
		t.Fatalf("malformed Set answered %q", out)
	}
	mustMiss(t, c, "k")
	for _, ce := range codeErrors {
		if got := errOfCode(codeOf(fmt.Errorf("wrapped: %w", ce.err))); got != ce.err {
			t.Errorf("code %d round trip gave %v", ce.code, got)
		}
	}
}

// TestOldOwnerIsIncompatible: an owner that answers Redis's commands but
// not the private ones (an older diskcache) makes Open fail at once with
// ErrIncompatible, and so does an owner of another protocol version.
func TestOldOwnerIsIncompatible(t *testing.T) {
	for _, tc := range []struct {
		name string
		ext  resp.Extension
	}{
		{"no private commands", nil},
		{"another version", otherVersion{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lock, err := lockDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.release()
			ln, err := net.Listen("unix", socketPath(dir))
			if err != nil {
				t.Fatal(err)
			}
			sctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- resp.NewServer(storetest.New(), resp.Config{Extension: tc.ext}).Serve(sctx, ln)
			}()
			defer func() { stop(); <-done }()
			_, err = Open(dir, &Options{HandoffWindow: time.Minute})
			if !errors.Is(err, ErrIncompatible) {
				t.Fatalf("Open against an owner with %s: %v, want ErrIncompatible", tc.name, err)
			}
		})
	}
}

// otherVersion answers hello as an owner of a later protocol would.
type otherVersion struct{}

func (otherVersion) ServeCommand(ctx context.Context, args [][]byte, out []byte) ([]byte, bool) {
	if string(args[0]) != cmdHello {
		return out, false
	}
	return redcon.AppendBulk(out, encodeReply(fmt.Errorf("%w: version %d", ErrIncompatible, protocolVersion+1), nil, nil)), true
}

// TestTokensLeaveCheckClean: call tokens ('c' keys) written by forwarded
// calls are neither entries nor damage to Check, and Len does not count
// them.
func TestTokensLeaveCheckClean(t *testing.T) {
	dir := t.TempDir()
	owner, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fwd.IncrBy(ctx, "n", 2); err != nil {
		t.Fatal(err)
	}
	if ok, err := fwd.Add(ctx, "lease", []byte("x"), time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if n, err := fwd.Len(ctx); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v; want 2", n, err)
	}
	fwd.Close()
	owner.Close()
	r, err := Check(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Damaged() || r.Entries != 2 {
		t.Fatalf("Check of a store with call tokens: %d entries, problems %v", r.Entries, r.Problems)
	}
}
