package resp

import (
	"math/bits"
	"strconv"
)

// The commands in this file address a string's bytes and bits, after
// Redis's t_string.c and bitops.c (GETRANGE, SETRANGE, GETBIT, SETBIT,
// BITCOUNT, BITPOS, BITOP, LCS). Those that write read the value and
// write it back, so the command table runs them under the Server's
// exclusive lock.

// rewrite stores v under key keeping its expiry, as Redis overwrites a
// string in place.
func (c *conn) rewrite(key string, v []byte) error {
	if v == nil {
		v = []byte{}
	}
	if _, err := c.s.store.Set(c.ctx, key, v, SetOptions{KeepTTL: true}); err != nil {
		return err
	}
	c.modified(key)
	return nil
}

// checkStringLength is Redis's check that a write leaves a string no
// longer than proto-max-bulk-len.
func (c *conn) checkStringLength(total int64) error {
	if total > int64(c.s.cfg.MaxBulk) {
		return replyErr("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
	}
	return nil
}

// parseInt64 parses an integer argument as Redis's string2ll: no sign
// but '-', no leading zeros, no spaces.
func parseInt64(b []byte) (int64, error) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || (digits[0] == '0' && len(b) > 1) {
		return 0, errNotInt
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || b[0] == '+' {
		return 0, errNotInt
	}
	return n, nil
}

// cmdGetRange is GETRANGE and SUBSTR key start end.
func cmdGetRange(c *conn, args [][]byte) error {
	start, err := parseInt64(args[2])
	if err != nil {
		return err
	}
	end, err := parseInt64(args[3])
	if err != nil {
		return err
	}
	v, _, err := c.s.store.Get(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		c.w.bulk(nil)
		return nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		c.w.bulk(nil)
		return nil
	}
	c.w.bulk(v[start : end+1])
	return nil
}

// cmdSetRange is SETRANGE key offset value.
func cmdSetRange(c *conn, args [][]byte) error {
	off, err := parseInt64(args[2])
	if err != nil {
		return err
	}
	if off < 0 {
		return replyErr("ERR offset is out of range")
	}
	key, val := string(args[1]), args[3]
	v, ok, err := c.s.store.Get(c.ctx, key)
	if err != nil {
		return err
	}
	if len(val) == 0 {
		c.w.int(int64(len(v)))
		return nil
	}
	if err := c.checkStringLength(off + int64(len(val))); err != nil {
		return err
	}
	nv := make([]byte, max(int64(len(v)), off+int64(len(val))))
	copy(nv, v)
	copy(nv[off:], val)
	if ok {
		err = c.rewrite(key, nv)
	} else {
		_, err = c.s.store.Set(c.ctx, key, nv, SetOptions{})
		c.modified(key)
	}
	if err != nil {
		return err
	}
	c.w.int(int64(len(nv)))
	return nil
}

const errBitOffset = replyErr("ERR bit offset is not an integer or out of range")

// bitOffset parses a bit offset as Redis's getBitOffsetFromArgument.
func (c *conn) bitOffset(b []byte) (int64, error) {
	n, err := parseInt64(b)
	if err != nil || n < 0 || n>>3 >= int64(c.s.cfg.MaxBulk) {
		return 0, errBitOffset
	}
	return n, nil
}

func cmdGetBit(c *conn, args [][]byte) error {
	off, err := c.bitOffset(args[2])
	if err != nil {
		return err
	}
	v, _, err := c.s.store.Get(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	bit := int64(0)
	if i := off >> 3; i < int64(len(v)) && v[i]&(1<<(7-uint(off&7))) != 0 {
		bit = 1
	}
	c.w.int(bit)
	return nil
}

func cmdSetBit(c *conn, args [][]byte) error {
	off, err := c.bitOffset(args[2])
	if err != nil {
		return err
	}
	on, err := parseInt64(args[3])
	if err != nil || on&^1 != 0 {
		return replyErr("ERR bit is not an integer or out of range")
	}
	key := string(args[1])
	v, ok, err := c.s.store.Get(c.ctx, key)
	if err != nil {
		return err
	}
	i := off >> 3
	nv := make([]byte, max(int64(len(v)), i+1))
	copy(nv, v)
	mask := byte(1 << (7 - uint(off&7)))
	old := int64(0)
	if nv[i]&mask != 0 {
		old = 1
	}
	if on == 1 {
		nv[i] |= mask
	} else {
		nv[i] &^= mask
	}
	if ok {
		err = c.rewrite(key, nv)
	} else {
		_, err = c.s.store.Set(c.ctx, key, nv, SetOptions{})
		c.modified(key)
	}
	if err != nil {
		return err
	}
	c.w.int(old)
	return nil
}

func popcount(b []byte) int64 {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return int64(n)
}

// bitRange turns a BITCOUNT or BITPOS range into byte offsets and the
// masks of the bits outside it in the edge bytes, as Redis does.
func bitRange(start, end, n int64, isBit bool) (s, e int64, firstNeg, lastNeg byte) {
	total := n
	if isBit {
		total <<= 3
	}
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	if end >= total {
		end = total - 1
	}
	if isBit && start <= end {
		firstNeg = ^byte((1<<(8-(start&7)))-1) & 0xFF
		lastNeg = byte((1 << (7 - (end & 7))) - 1)
		start >>= 3
		end >>= 3
	}
	return start, end, firstNeg, lastNeg
}

// rangeUnit parses the BYTE or BIT of a range.
func rangeUnit(b []byte) (isBit bool, err error) {
	switch {
	case equalFold(b, "bit"):
		return true, nil
	case equalFold(b, "byte"):
		return false, nil
	}
	return false, errSyntax
}

// cmdBitCount is BITCOUNT key [start end [BYTE|BIT]].
func cmdBitCount(c *conn, args [][]byte) error {
	// Redis 7.0 looks the key up first: a missing key is 0 whatever the
	// range says.
	v, ok, err := c.s.store.Get(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	if !ok {
		c.w.int(0)
		return nil
	}
	var start, end int64
	isBit := false
	var firstNeg, lastNeg byte
	switch len(args) {
	case 4, 5:
		if start, err = parseInt64(args[2]); err != nil {
			return err
		}
		if end, err = parseInt64(args[3]); err != nil {
			return err
		}
		if len(args) == 5 {
			if isBit, err = rangeUnit(args[4]); err != nil {
				return err
			}
		}
	case 2:
	default:
		return errSyntax
	}
	n := int64(len(v))
	if len(args) == 2 {
		start, end = 0, n-1
	} else {
		if start < 0 && end < 0 && start > end {
			c.w.int(0)
			return nil
		}
		start, end, firstNeg, lastNeg = bitRange(start, end, n, isBit)
	}
	if start > end {
		c.w.int(0)
		return nil
	}
	count := popcount(v[start : end+1])
	if firstNeg != 0 || lastNeg != 0 {
		var fl [2]byte
		if firstNeg != 0 {
			fl[0] = v[start] & firstNeg
		}
		if lastNeg != 0 {
			fl[1] = v[end] & lastNeg
		}
		count -= popcount(fl[:])
	}
	c.w.int(count)
	return nil
}

// bitpos is Redis's redisBitpos: the position of the first bit equal to
// bit in b; for 0 with none found, the first bit past b; for 1, -1.
func bitpos(b []byte, bit int64) int64 {
	for i, x := range b {
		if bit == 1 && x != 0 {
			return int64(i)*8 + int64(bits.LeadingZeros8(x))
		}
		if bit == 0 && x != 0xff {
			return int64(i)*8 + int64(bits.LeadingZeros8(^x))
		}
	}
	if bit == 1 {
		return -1
	}
	return int64(len(b)) * 8
}

// cmdBitPos is BITPOS key bit [start [end [BYTE|BIT]]], after Redis's
// bitposCommand.
func cmdBitPos(c *conn, args [][]byte) error {
	bit, err := parseInt64(args[2])
	if err != nil {
		return err
	}
	if bit != 0 && bit != 1 {
		return replyErr("ERR The bit argument must be 1 or 0.")
	}
	v, ok, err := c.s.store.Get(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	if !ok {
		c.w.int(map[bool]int64{true: -1, false: 0}[bit == 1])
		return nil
	}
	n := int64(len(v))
	var start, end int64
	var firstNeg, lastNeg byte
	endGiven := false
	switch len(args) {
	case 4, 5, 6:
		isBit := false
		if start, err = parseInt64(args[3]); err != nil {
			return err
		}
		if len(args) == 6 {
			if isBit, err = rangeUnit(args[5]); err != nil {
				return err
			}
		}
		if len(args) >= 5 {
			if end, err = parseInt64(args[4]); err != nil {
				return err
			}
			endGiven = true
		} else if isBit {
			end = n<<3 + 7
		} else {
			end = n - 1
		}
		start, end, firstNeg, lastNeg = bitRange(start, end, n, isBit)
	case 3:
		start, end = 0, n-1
	default:
		return errSyntax
	}
	if start > end {
		c.w.int(-1)
		return nil
	}
	nbytes := end - start + 1
	var pos int64
	func() {
		if firstNeg != 0 {
			t := v[start] | firstNeg
			if bit == 1 {
				t = v[start] &^ firstNeg
			}
			if lastNeg != 0 && nbytes == 1 {
				if bit == 1 {
					t &^= lastNeg
				} else {
					t |= lastNeg
				}
			}
			pos = bitpos([]byte{t}, bit)
			if nbytes == 1 || (pos != -1 && pos != 8) {
				return
			}
			start++
			nbytes--
		}
		cur := nbytes
		if lastNeg != 0 {
			cur--
		}
		if cur > 0 {
			pos = bitpos(v[start:start+cur], bit)
			if nbytes == cur || (pos != -1 && pos != cur<<3) {
				return
			}
			start += cur
			nbytes -= cur
		}
		t := v[end] | lastNeg
		if bit == 1 {
			t = v[end] &^ lastNeg
		}
		pos = bitpos([]byte{t}, bit)
	}()
	if endGiven && bit == 0 && pos == nbytes<<3 {
		c.w.int(-1)
		return nil
	}
	if pos != -1 {
		pos += start << 3
	}
	c.w.int(pos)
	return nil
}

// cmdBitOp is BITOP AND|OR|XOR|NOT destkey key [key ...].
func cmdBitOp(c *conn, args [][]byte) error {
	op := args[1]
	if !equalFold(op, "and") && !equalFold(op, "or") && !equalFold(op, "xor") && !equalFold(op, "not") {
		return errSyntax
	}
	not := equalFold(op, "not")
	if not && len(args) != 4 {
		return replyErr("ERR BITOP NOT must be called with a single source key.")
	}
	srcs := make([][]byte, len(args)-3)
	maxLen := 0
	for i, k := range args[3:] {
		v, _, err := c.s.store.Get(c.ctx, string(k))
		if err != nil {
			return err
		}
		srcs[i] = v
		maxLen = max(maxLen, len(v))
	}
	dest := string(args[2])
	if maxLen == 0 {
		n, err := c.s.store.Delete(c.ctx, dest)
		if err != nil {
			return err
		}
		if n > 0 {
			c.modified(dest)
		}
		c.w.int(0)
		return nil
	}
	at := func(b []byte, j int) byte {
		if j < len(b) {
			return b[j]
		}
		return 0
	}
	res := make([]byte, maxLen)
	for j := range res {
		out := at(srcs[0], j)
		if not {
			out = ^out
		}
		for _, s := range srcs[1:] {
			switch {
			case equalFold(op, "and"):
				out &= at(s, j)
			case equalFold(op, "or"):
				out |= at(s, j)
			default:
				out ^= at(s, j)
			}
		}
		res[j] = out
	}
	if _, err := c.s.store.Set(c.ctx, dest, res, SetOptions{}); err != nil {
		return err
	}
	c.modified(dest)
	c.w.int(int64(maxLen))
	return nil
}

// lcsMaxTable bounds LCS's table (4 bytes a cell), where Redis bounds it by
// proto-max-bulk-len: it is allocated at once.
const lcsMaxTable = 256 << 20

// cmdLCS is LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN], after
// Redis's lcsCommand, so that ties resolve to the same subsequence.
func cmdLCS(c *conn, args [][]byte) error {
	a, _, err := c.s.store.Get(c.ctx, string(args[1]))
	if err != nil {
		return err
	}
	b, _, err := c.s.store.Get(c.ctx, string(args[2]))
	if err != nil {
		return err
	}
	var getLen, getIdx, withLen bool
	var minLen int64
	for j := 3; j < len(args); j++ {
		more := len(args) - 1 - j
		switch o := args[j]; {
		case equalFold(o, "idx"):
			getIdx = true
		case equalFold(o, "len"):
			getLen = true
		case equalFold(o, "withmatchlen"):
			withLen = true
		case equalFold(o, "minmatchlen") && more > 0:
			if minLen, err = parseInt64(args[j+1]); err != nil {
				return err
			}
			minLen = max(minLen, 0)
			j++
		default:
			return errSyntax
		}
	}
	if getIdx && getLen {
		return replyErr("ERR If you want both the length and indexes, please just use IDX.")
	}
	alen, blen := len(a), len(b)
	cells := int64(alen+1) * int64(blen+1)
	if cells*4 > min(int64(c.s.cfg.MaxBulk), lcsMaxTable) {
		return replyErr("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
	}
	lcs := make([]uint32, cells)
	at := func(i, j int) *uint32 { return &lcs[j+i*(blen+1)] }
	for i := 1; i <= alen; i++ {
		for j := 1; j <= blen; j++ {
			if a[i-1] == b[j-1] {
				*at(i, j) = *at(i-1, j-1) + 1
			} else {
				*at(i, j) = max(*at(i-1, j), *at(i, j-1))
			}
		}
	}
	idx := int(*at(alen, blen))
	compute := getIdx || !getLen
	result := make([]byte, idx)
	type match struct{ a0, a1, b0, b1 int }
	var matches []match
	i, j := alen, blen
	aStart, aEnd, bStart, bEnd := alen, 0, 0, 0
	for compute && i > 0 && j > 0 {
		emit := false
		if a[i-1] == b[j-1] {
			result[idx-1] = a[i-1]
			if aStart == alen {
				aStart, aEnd, bStart, bEnd = i-1, i-1, j-1, j-1
			} else if aStart == i && bStart == j {
				aStart--
				bStart--
			} else {
				emit = true
			}
			if aStart == 0 || bStart == 0 {
				emit = true
			}
			idx--
			i--
			j--
		} else {
			if *at(i-1, j) > *at(i, j-1) {
				i--
			} else {
				j--
			}
			if aStart != alen {
				emit = true
			}
		}
		if emit {
			if minLen == 0 || int64(aEnd-aStart+1) >= minLen {
				matches = append(matches, match{aStart, aEnd, bStart, bEnd})
			}
			aStart = alen
		}
	}
	total := int64(*at(alen, blen))
	switch {
	case getIdx:
		c.w.mapHeader(2)
		c.w.bulkString("matches")
		c.w.array(len(matches))
		for _, m := range matches {
			c.w.array(2 + int(b2i(withLen)))
			c.w.array(2)
			c.w.int(int64(m.a0))
			c.w.int(int64(m.a1))
			c.w.array(2)
			c.w.int(int64(m.b0))
			c.w.int(int64(m.b1))
			if withLen {
				c.w.int(int64(m.a1 - m.a0 + 1))
			}
		}
		c.w.bulkString("len")
		c.w.int(total)
	case getLen:
		c.w.int(total)
	default:
		c.w.bulk(result)
	}
	return nil
}
