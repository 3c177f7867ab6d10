package resp

import (
	"math"
	"time"
)

// maxAt is the latest expiry a Store needs to hold: the last instant whose
// Unix time in nanoseconds fits an int64 (year 2262). Later expiries are
// lowered to it; they are "never" for any practical purpose.
var maxAt = time.Unix(0, math.MaxInt64)

// expiryIn is an expiry ms milliseconds from now (ms > 0).
func expiryIn(ms int64) Expiry {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return Expiry{At: maxAt}
	}
	return Expiry{TTL: time.Duration(ms) * time.Millisecond}
}

// expiryAt is an expiry at the Unix time ms, in milliseconds.
func expiryAt(ms int64) Expiry {
	if ms > maxAt.UnixMilli() {
		return Expiry{At: maxAt}
	}
	if ms <= 0 {
		// Any time not in the future expires the key; keep At non-zero.
		return Expiry{At: time.Unix(0, 1)}
	}
	return Expiry{At: time.UnixMilli(ms)}
}

// setOptions are the options of SET and GETEX as Redis parses them
// (parseExtendedStringArgumentsOrReply).
type setOptions struct {
	nx, xx, get, keepTTL, persist bool
	unit                          byte   // 0, or 'e' EX, 'p' PX, 'E' EXAT, 'P' PXAT
	when                          []byte // the expiry argument
}

// parseSetOptions parses args (after the key, or key and value) for SET
// (forSet) or GETEX. Options conflict as in Redis; repeating one is allowed.
func parseSetOptions(args [][]byte, forSet bool) (setOptions, error) {
	var o setOptions
	for i := 0; i < len(args); i++ {
		a := args[i]
		hasNext := i+1 < len(args)
		switch {
		case forSet && equalFold(a, "nx") && !o.xx:
			o.nx = true
		case forSet && equalFold(a, "xx") && !o.nx:
			o.xx = true
		case forSet && equalFold(a, "get"):
			o.get = true
		case forSet && equalFold(a, "keepttl") && o.unit == 0:
			o.keepTTL = true
		case !forSet && equalFold(a, "persist") && o.unit == 0:
			o.persist = true
		case equalFold(a, "ex") && o.free('e') && hasNext:
			o.unit, o.when = 'e', args[i+1]
			i++
		case equalFold(a, "px") && o.free('p') && hasNext:
			o.unit, o.when = 'p', args[i+1]
			i++
		case equalFold(a, "exat") && o.free('E') && hasNext:
			o.unit, o.when = 'E', args[i+1]
			i++
		case equalFold(a, "pxat") && o.free('P') && hasNext:
			o.unit, o.when = 'P', args[i+1]
			i++
		default:
			return o, errSyntax
		}
	}
	return o, nil
}

// free reports whether an expiry option of unit u may follow: no other
// expiry unit, KEEPTTL or PERSIST came before.
func (o *setOptions) free(u byte) bool {
	return !o.keepTTL && !o.persist && (o.unit == 0 || o.unit == u)
}

// expiry turns the expiry option into an Expiry, with Redis's checks
// (getExpireMillisecondsOrReply); cmd names the command in the error.
func (o *setOptions) expiry(cmd string) (Expiry, error) {
	if o.unit == 0 {
		return Expiry{}, nil
	}
	return parseExpiry(o.when, o.unit, cmd)
}

// parseExpiry parses a positive expiry argument of unit 'e' (seconds from
// now), 'p' (milliseconds from now), 'E' (Unix seconds) or 'P' (Unix ms).
func parseExpiry(arg []byte, unit byte, cmd string) (Expiry, error) {
	ms, err := parseInt64(arg)
	if err != nil {
		return Expiry{}, errNotInt
	}
	seconds := unit == 'e' || unit == 'E'
	if ms <= 0 || (seconds && ms > math.MaxInt64/1000) {
		return Expiry{}, invalidExpire(cmd)
	}
	if seconds {
		ms *= 1000
	}
	if unit == 'e' || unit == 'p' {
		if ms > math.MaxInt64-time.Now().UnixMilli() {
			return Expiry{}, invalidExpire(cmd)
		}
		return expiryIn(ms), nil
	}
	return expiryAt(ms), nil
}
