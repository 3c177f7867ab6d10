package resp

import (
	"math"
	"strconv"
	"strings"
	"time"
)

func cmdDel(c *conn, args [][]byte) error {
	keys := make([]string, len(args)-1)
	for i, a := range args[1:] {
		keys[i] = string(a)
	}
	n, err := c.s.store.Delete(c.ctx, keys...)
	if err != nil {
		return err
	}
	c.w.int(int64(n))
	return nil
}

// cmdExists is EXISTS and TOUCH: how many of the keys are present, a key
// named twice counting twice.
func cmdExists(c *conn, args [][]byte) error {
	var n int64
	for _, a := range args[1:] {
		ok, err := c.s.store.Exists(c.ctx, string(a))
		if err != nil {
			return err
		}
		n += b2i(ok)
	}
	c.w.int(n)
	return nil
}

func cmdType(c *conn, args [][]byte) error {
	ok, err := c.s.store.Exists(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	if ok {
		c.w.simple("string")
	} else {
		c.w.simple("none")
	}
	return nil
}

// cmdExpire is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT key time
// [NX|XX|GT|LT], after Redis's expireGenericCommand.
//
// The NX, XX, GT and LT conditions read the key's expiry and then set it in
// two Store calls: a write of the same key by another client in between
// can slip through, where Redis would see it first.
func cmdExpire(c *conn, args [][]byte) error {
	name := strings.ToLower(string(args[0]))
	var nx, xx, gt, lt bool
	for _, a := range args[3:] {
		switch {
		case equalFold(a, "nx"):
			nx = true
		case equalFold(a, "xx"):
			xx = true
		case equalFold(a, "gt"):
			gt = true
		case equalFold(a, "lt"):
			lt = true
		default:
			return replyErr("ERR Unsupported option " + clip(a, 128))
		}
	}
	if nx && (xx || gt || lt) {
		return replyErr("ERR NX and XX, GT or LT options at the same time are not compatible")
	}
	if gt && lt {
		return replyErr("ERR GT and LT options at the same time are not compatible")
	}
	when, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errNotInt
	}
	if name == "expire" || name == "expireat" {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			return invalidExpire(name)
		}
		when *= 1000
	}
	now := time.Now().UnixMilli()
	relative := name == "expire" || name == "pexpire"
	if relative {
		if when > math.MaxInt64-now {
			return invalidExpire(name)
		}
		when += now
	}
	key := string(args[1])
	if nx || xx || gt || lt {
		ttl, ok, err := c.s.store.TTL(c.ctx, key)
		if err != nil {
			return err
		}
		cur := int64(-1) // no expiry: an infinite TTL
		if ttl > 0 {
			cur = now + int64((ttl+time.Millisecond/2)/time.Millisecond)
		}
		if !ok || (nx && cur != -1) || (xx && cur == -1) ||
			(gt && (cur == -1 || when <= cur)) || (lt && cur != -1 && when >= cur) {
			c.w.int(0)
			return nil
		}
	}
	e := expiryAt(when)
	if relative && when > now {
		e = expiryIn(when - now)
	}
	ok, err := c.s.store.Expire(c.ctx, key, e)
	if err != nil {
		return err
	}
	c.w.int(b2i(ok))
	return nil
}

func cmdPersist(c *conn, args [][]byte) error {
	ok, err := c.s.store.Expire(c.ctx, string(args[1]), Expiry{Persist: true})
	if err != nil {
		return err
	}
	c.w.int(b2i(ok))
	return nil
}

// cmdTTL is TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing key,
// -1 for a key without an expiry. Seconds are rounded as Redis rounds them.
func cmdTTL(c *conn, args [][]byte) error {
	ttl, ok, err := c.s.store.TTL(c.ctx, string(args[1]))
	switch {
	case err != nil:
		return err
	case !ok:
		c.w.int(-2)
		return nil
	case ttl <= 0:
		c.w.int(-1)
		return nil
	}
	ms := int64((ttl + time.Millisecond/2) / time.Millisecond)
	name := lookup(args[0]).name
	if strings.HasSuffix(name, "expiretime") {
		ms += time.Now().UnixMilli()
	}
	if name[0] != 'p' {
		ms = (ms + 500) / 1000
	}
	c.w.int(ms)
	return nil
}

// scanMaxCount bounds the work one SCAN asks of the Store.
const scanMaxCount = 1 << 20

// cmdScan is SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
func cmdScan(c *conn, args [][]byte) error {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		return errInvalidCursor
	}
	count, match, onlyString := 10, "", true
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return errSyntax
		}
		switch v := args[i+1]; {
		case equalFold(args[i], "count"):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return errNotInt
			}
			if n < 1 {
				return errSyntax
			}
			count = int(min(n, scanMaxCount))
		case equalFold(args[i], "match"):
			match = string(v)
			if match == "*" {
				match = ""
			}
		case equalFold(args[i], "type"):
			onlyString = equalFold(v, "string")
		default:
			return errSyntax
		}
	}
	var keys []string
	next := uint64(0)
	// Every key is a string: asking for another type finds nothing.
	if onlyString {
		keys, next, err = c.s.store.Scan(c.ctx, cursor, match, count)
		if err != nil {
			return err
		}
	}
	c.w.array(2)
	c.w.bulkString(strconv.FormatUint(next, 10))
	c.w.bulkStrings(keys)
	return nil
}

// cmdKeys is KEYS pattern, through Store.Scan; a key Scan returns twice is
// listed once.
func cmdKeys(c *conn, args [][]byte) error {
	match := string(args[1])
	if match == "*" {
		match = ""
	}
	var keys []string
	seen := make(map[string]struct{})
	cursor := uint64(0)
	for {
		batch, next, err := c.s.store.Scan(c.ctx, cursor, match, 1000)
		if err != nil {
			return err
		}
		for _, k := range batch {
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				keys = append(keys, k)
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	c.w.bulkStrings(keys)
	return nil
}
