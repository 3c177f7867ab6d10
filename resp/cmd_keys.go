package resp

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

func cmdDel(c *conn, args [][]byte) error {
	keys := make([]string, len(args)-1)
	for i, a := range args[1:] {
		keys[i] = string(a)
	}
	if err := c.modifiedIfPresent(keys); err != nil {
		return err
	}
	n, err := c.s.store.Delete(c.ctx, keys...)
	if err != nil {
		return err
	}
	c.w.int(int64(n))
	return nil
}

// modifiedIfPresent marks the watched keys among keys that are present as
// modified, before a command removes them: Redis signals only the keys a
// DEL or FLUSHDB actually removes.
func (c *conn) modifiedIfPresent(keys []string) error {
	if !c.s.anyWatched() {
		return nil
	}
	for _, k := range keys {
		ok, err := c.s.store.Exists(c.ctx, k)
		if err != nil {
			return err
		}
		if ok {
			c.modified(k)
		}
	}
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
	when, err := parseInt64(args[2])
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
	if ok {
		c.modified(key)
	}
	c.w.int(b2i(ok))
	return nil
}

func cmdPersist(c *conn, args [][]byte) error {
	ok, err := c.s.store.Expire(c.ctx, string(args[1]), Expiry{Persist: true})
	if err != nil {
		return err
	}
	if ok {
		c.modified(string(args[1]))
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

// keyState is a key's value and expiry, for the commands that move keys.
type keyState struct {
	value  []byte
	expiry Expiry // zero: none
}

// readKey returns key's value and expiry.
func (c *conn) readKey(key string) (keyState, bool, error) {
	v, ok, err := c.s.store.Get(c.ctx, key)
	if err != nil || !ok {
		return keyState{}, false, err
	}
	ttl, ok, err := c.s.store.TTL(c.ctx, key)
	if err != nil || !ok {
		return keyState{}, false, err
	}
	st := keyState{value: v}
	if ttl > 0 {
		st.expiry = Expiry{At: time.Now().Add(ttl)}
	}
	if st.value == nil {
		st.value = []byte{}
	}
	return st, true, nil
}

// cmdRename is RENAME and RENAMENX key newkey; the value keeps its expiry.
func cmdRename(c *conn, args [][]byte) error {
	nx := equalFold(args[0], "renamenx")
	src, dst := string(args[1]), string(args[2])
	st, ok, err := c.readKey(src)
	if err != nil {
		return err
	}
	if !ok {
		return replyErr("ERR no such key")
	}
	if src == dst {
		if nx {
			c.w.int(0)
		} else {
			c.w.ok()
		}
		return nil
	}
	res, err := c.s.store.Set(c.ctx, dst, st.value, SetOptions{Expiry: st.expiry, NX: nx})
	if err != nil {
		return err
	}
	if !res.Written {
		c.w.int(0)
		return nil
	}
	if _, err := c.s.store.Delete(c.ctx, src); err != nil {
		return err
	}
	c.modified(src, dst)
	if nx {
		c.w.int(1)
	} else {
		c.w.ok()
	}
	return nil
}

// cmdCopy is COPY source destination [DB 0] [REPLACE].
func cmdCopy(c *conn, args [][]byte) error {
	replace := false
	for j := 3; j < len(args); j++ {
		switch {
		case equalFold(args[j], "replace"):
			replace = true
		case equalFold(args[j], "db") && j < len(args)-1:
			db, err := strconv.ParseInt(string(args[j+1]), 10, 32)
			if err != nil {
				return errNotInt
			}
			if db != 0 {
				return replyErr("ERR DB index is out of range")
			}
			j++
		default:
			return errSyntax
		}
	}
	src, dst := string(args[1]), string(args[2])
	if src == dst {
		return replyErr("ERR source and destination objects are the same")
	}
	st, ok, err := c.readKey(src)
	if err != nil {
		return err
	}
	if !ok {
		c.w.int(0)
		return nil
	}
	res, err := c.s.store.Set(c.ctx, dst, st.value, SetOptions{Expiry: st.expiry, NX: !replace})
	if err != nil {
		return err
	}
	if res.Written {
		c.modified(dst)
	}
	c.w.int(b2i(res.Written))
	return nil
}

// cmdRandomKey is RANDOMKEY: the first key Scan finds from a random
// position of its cursor space (the cursor is a position in hash order),
// or null for an empty cache.
func cmdRandomKey(c *conn, args [][]byte) error {
	cursor := rand.Uint64()
	wrapped := false
	for range 1024 {
		keys, next, err := c.s.store.Scan(c.ctx, cursor, "", 16)
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			c.w.bulkString(keys[rand.IntN(len(keys))])
			return nil
		}
		if next == 0 {
			if wrapped {
				break
			}
			wrapped = true
		}
		cursor = next
	}
	c.w.null()
	return nil
}

// objectEncoding is the encoding Redis gives a string value it stores
// from a client: "int" for a canonical 64-bit integer, "embstr" up to 44
// bytes, "raw" beyond.
func objectEncoding(v []byte) string {
	if len(v) <= 20 {
		if _, err := parseInt64(v); err == nil {
			return "int"
		}
	}
	if len(v) <= 44 {
		return "embstr"
	}
	return "raw"
}

// cmdObject is OBJECT ENCODING, FREQ, IDLETIME, REFCOUNT and HELP.
func cmdObject(c *conn, args [][]byte) error {
	sub := args[1]
	if equalFold(sub, "help") && len(args) == 2 {
		c.w.bulkStrings([]string{
			"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ENCODING <key>", "    Return the kind of internal representation used in order to store the value", "    associated with a <key>.",
			"FREQ <key>", "    Return the access logarithmic counter of a <key>. Only when `maxmemory-policy`", "    is set to an LFU policy.",
			"IDLETIME <key>", "    Return the idle time of a <key>, that is the approximated number of", "    seconds elapsed since the last access to the key.",
			"REFCOUNT <key>", "    Return the number of references of the value associated with the specified", "    <key>.",
			"HELP", "    Print this help.",
		})
		return nil
	}
	var name string
	for _, n := range []string{"encoding", "freq", "idletime", "refcount"} {
		if equalFold(sub, n) {
			name = n
		}
	}
	if name == "" {
		return unknownSubcommand("object", sub)
	}
	if len(args) != 3 {
		return wrongArity("object|" + name)
	}
	v, ok, err := c.s.store.Get(c.ctx, string(args[2]))
	if err != nil {
		return err
	}
	if !ok {
		c.w.null()
		return nil
	}
	switch name {
	case "encoding":
		c.w.bulkString(objectEncoding(v))
	case "freq":
		return replyErr("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	case "idletime":
		// Recency is the engine's, sampled; the protocol sees none.
		c.w.int(0)
	case "refcount":
		c.w.int(1)
	}
	return nil
}

// memoryOverhead approximates what a string key costs Redis beyond its key
// and value bytes (dict entry, robj, sds headers), so MEMORY USAGE answers
// in the same range as Redis.
const memoryOverhead = 56

// cmdMemory is MEMORY USAGE key [SAMPLES n] and MEMORY HELP.
func cmdMemory(c *conn, args [][]byte) error {
	sub := args[1]
	switch {
	case equalFold(sub, "usage"):
		if len(args) < 3 {
			return wrongArity("memory|usage")
		}
		for j := 3; j < len(args); j++ {
			if equalFold(args[j], "samples") && j+1 < len(args) {
				if _, err := parseInt64(args[j+1]); err != nil {
					return err
				}
				j++
				continue
			}
			return errSyntax
		}
		v, ok, err := c.s.store.Get(c.ctx, string(args[2]))
		if err != nil {
			return err
		}
		if !ok {
			c.w.null()
			return nil
		}
		c.w.int(int64(len(args[2]) + len(v) + memoryOverhead))
	case equalFold(sub, "help") && len(args) == 2:
		c.w.bulkStrings([]string{
			"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"USAGE <key> [SAMPLES <count>]", "    Return memory in bytes used by <key> and its value.",
			"HELP", "    Print this help.",
		})
	default:
		return unknownSubcommand("memory", sub)
	}
	return nil
}
