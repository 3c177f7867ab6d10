package resp

import (
	"bytes"
	"math"
	"math/big"
	"strings"
	"time"
)

func cmdGet(c *conn, args [][]byte) error {
	v, ok, err := c.s.store.Get(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	c.w.value(v, ok)
	return nil
}

// cmdSet is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL].
func cmdSet(c *conn, args [][]byte) error {
	o, err := parseSetOptions(args[3:], true)
	if err != nil {
		return err
	}
	e, err := o.expiry("set")
	if err != nil {
		return err
	}
	res, err := c.s.store.Set(c.ctx, string(args[1]), args[2], SetOptions{
		Expiry: e, KeepTTL: o.keepTTL, NX: o.nx, XX: o.xx, Get: o.get,
	})
	if err != nil {
		return err
	}
	if res.Written {
		c.modified(string(args[1]))
		if !e.At.IsZero() && !e.At.After(time.Now()) {
			// The Store would keep an expired record that DBSIZE counts
			// until swept; Redis 7.0 counts it until it is accessed, 7.2
			// deletes it at once, as this does.
			if _, err := c.s.store.Delete(c.ctx, string(args[1])); err != nil {
				return err
			}
		}
	}
	switch {
	case o.get:
		c.w.value(res.Old, res.HadOld)
	case res.Written:
		c.w.ok()
	default:
		c.w.null()
	}
	return nil
}

// cmdSetEx is SETEX key seconds value and PSETEX key ms value.
func cmdSetEx(c *conn, args [][]byte) error {
	name, unit := "setex", byte('e')
	if equalFold(args[0], "psetex") {
		name, unit = "psetex", 'p'
	}
	e, err := parseExpiry(args[2], unit, name)
	if err != nil {
		return err
	}
	if _, err := c.s.store.Set(c.ctx, string(args[1]), args[3], SetOptions{Expiry: e}); err != nil {
		return err
	}
	c.modified(string(args[1]))
	c.w.ok()
	return nil
}

func cmdSetNX(c *conn, args [][]byte) error {
	res, err := c.s.store.Set(c.ctx, string(args[1]), args[2], SetOptions{NX: true})
	if err != nil {
		return err
	}
	if res.Written {
		c.modified(string(args[1]))
	}
	c.w.int(b2i(res.Written))
	return nil
}

func cmdGetSet(c *conn, args [][]byte) error {
	res, err := c.s.store.Set(c.ctx, string(args[1]), args[2], SetOptions{Get: true})
	if err != nil {
		return err
	}
	c.modified(string(args[1]))
	c.w.value(res.Old, res.HadOld)
	return nil
}

func cmdGetDel(c *conn, args [][]byte) error {
	v, ok, err := c.s.store.GetDelete(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	if ok {
		c.modified(string(args[1]))
	}
	c.w.value(v, ok)
	return nil
}

// cmdGetEx is GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST].
func cmdGetEx(c *conn, args [][]byte) error {
	o, err := parseSetOptions(args[2:], false)
	if err != nil {
		return err
	}
	key := string(args[1])
	e, err := o.expiry("getex")
	if err != nil {
		// Redis looks the key up before it checks the time: a missing key
		// is a null, not an error.
		if _, ok, gerr := c.s.store.Get(c.ctx, key); gerr != nil || !ok {
			if gerr == nil {
				c.w.null()
			}
			return gerr
		}
		return err
	}
	e.Persist = o.persist
	// PERSIST changes a key only if it has a TTL: Redis signals WATCH only
	// then. The TTL is read first only when someone watches.
	changes := !e.IsZero()
	if e.Persist && c.s.anyWatched() {
		ttl, _, err := c.s.store.TTL(c.ctx, key)
		if err != nil {
			return err
		}
		changes = ttl > 0
	}
	v, ok, err := c.s.store.GetExpire(c.ctx, key, e)
	if err != nil {
		return err
	}
	if ok && changes {
		c.modified(key)
	}
	c.w.value(v, ok)
	return nil
}

func cmdMGet(c *conn, args [][]byte) error {
	keys := make([]string, len(args)-1)
	for i, a := range args[1:] {
		keys[i] = string(a)
	}
	vals, err := c.s.store.GetMany(c.ctx, keys)
	if err != nil {
		return err
	}
	c.w.array(len(vals))
	for _, v := range vals {
		c.w.value(v, v != nil)
	}
	return nil
}

// cmdMSet is MSET and MSETNX key value [key value ...].
func cmdMSet(c *conn, args [][]byte) error {
	nx := equalFold(args[0], "msetnx")
	if len(args)%2 == 0 {
		if nx {
			return wrongArity("msetnx")
		}
		return wrongArity("mset")
	}
	entries := make([]Entry, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		entries = append(entries, Entry{Key: string(args[i]), Value: args[i+1]})
	}
	written, err := c.s.store.SetMany(c.ctx, entries, nx)
	if err != nil {
		return err
	}
	if written {
		for _, e := range entries {
			c.modified(e.Key)
		}
	}
	if nx {
		c.w.int(b2i(written))
	} else {
		c.w.ok()
	}
	return nil
}

// cmdIncr is INCR, DECR, INCRBY and DECRBY.
func cmdIncr(c *conn, args [][]byte) error {
	delta := int64(1)
	if len(args) == 3 {
		d, err := parseInt64(args[2])
		if err != nil {
			return errNotInt
		}
		delta = d
	}
	if equalFold(args[0], "decr") || equalFold(args[0], "decrby") {
		if delta == math.MinInt64 {
			return errDecrOverflow
		}
		delta = -delta
	}
	n, err := c.s.store.IncrBy(c.ctx, string(args[1]), delta)
	if err != nil {
		return err
	}
	c.modified(string(args[1]))
	c.w.int(n)
	return nil
}

func cmdAppend(c *conn, args [][]byte) error {
	n, err := c.s.store.Append(c.ctx, string(args[1]), args[2])
	if err != nil {
		return err
	}
	c.modified(string(args[1]))
	c.w.int(int64(n))
	return nil
}

func cmdStrlen(c *conn, args [][]byte) error {
	v, _, err := c.s.store.Get(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	c.w.int(int64(len(v)))
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// floatPrec is the precision of INCRBYFLOAT's arithmetic: the 64-bit
// mantissa of the x87 long double Redis computes in, so that results
// print alike (0.1 + 0.2 is "0.3" in Redis, not "0.30000000000000004").
const floatPrec = 64

// parseLongDouble parses a float argument as Redis's string2ld: no spaces,
// no NaN, at most 5 KiB.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) >= 5<<10 || b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r' || b[0] == '\v' || b[0] == '\f' {
		return nil, false
	}
	if bytes.IndexByte(b, '_') >= 0 {
		return nil, false // base 10 parsing would take "1_0"; strtold does not
	}
	f, _, err := big.ParseFloat(string(b), 10, floatPrec, big.ToNearestEven)
	if err != nil || f.IsInf() {
		return nil, false
	}
	return f, true
}

// formatLongDouble prints f as Redis's ld2string in human mode: 17
// decimals, trailing zeros and point dropped, "-0" as "0".
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// cmdIncrByFloat is INCRBYFLOAT key increment; the key keeps its expiry.
// It reads and writes back under the exclusive lock.
func cmdIncrByFloat(c *conn, args [][]byte) error {
	key := string(args[1])
	v, ok, err := c.s.store.Get(c.ctx, key)
	if err != nil {
		return err
	}
	cur := new(big.Float).SetPrec(floatPrec)
	if ok {
		if cur, ok = parseLongDouble(v); !ok {
			return replyErr("ERR value is not a valid float")
		}
	}
	incr, ok2 := parseLongDouble(args[2])
	if !ok2 {
		return replyErr("ERR value is not a valid float")
	}
	sum := new(big.Float).SetPrec(floatPrec).SetMode(big.ToNearestEven).Add(cur, incr)
	// A long double overflows past about 1.19e4932.
	if sum.IsInf() || sum.MantExp(nil) > 16384 {
		return replyErr("ERR increment would produce NaN or Infinity")
	}
	out := []byte(formatLongDouble(sum))
	if _, err := c.s.store.Set(c.ctx, key, out, SetOptions{KeepTTL: true}); err != nil {
		return err
	}
	c.modified(key)
	c.w.bulk(out)
	return nil
}
