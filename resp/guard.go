package resp

import (
	"io"
	"strconv"
)

// Redis's limits before a client has authenticated, and on inline commands.
const (
	unauthMaxArgs = 10
	unauthMaxBulk = 16 << 10
	maxInline     = 64 << 10
	maxHeaderLine = 32 // "*1048576\r\n" and "$536870912\r\n" fit easily
)

// protocolError is a malformed or oversized request. The connection answers
// "ERR " + its text and closes, as Redis does.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "Protocol error: " + e.msg }

// guard sits between a connection and redcon's reader and checks the
// framing of requests as bytes arrive: multibulk counts, bulk lengths and
// inline line lengths. redcon buffers a command until it is complete and
// grows its buffer without a bound, so a limit has to act before the bytes
// reach it. On a violation guard passes on the bytes before it (complete
// commands run first, as in Redis) and then fails every read.
type guard struct {
	r       io.Reader
	maxBulk int
	maxArgs int
	authed  func() bool // the client has authenticated (or needs not)

	err   error
	state guardState
	line  []byte // header line read so far (without '*' or '$')
	args  int    // bulks left in the current multibulk
	skip  int    // bulk bytes left to pass, CRLF included
	inl   int    // bytes of the current inline command
}

type guardState uint8

const (
	gStart    guardState = iota // at the start of a command
	gCount                      // in "*<count>\r\n"
	gDollar                     // expecting '$'
	gBulkLen                    // in "$<len>\r\n"
	gBulkData                   // in a bulk's bytes and its CRLF
	gInline                     // in an inline command line
)

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if n > 0 {
		if ok := g.scan(p[:n]); ok < n {
			if ok == 0 {
				return 0, g.err
			}
			return ok, nil
		}
	}
	return n, err
}

// scan advances the framing state over b and returns how many bytes of b
// are valid; fewer than len(b) means g.err is set.
func (g *guard) scan(b []byte) int {
	i := 0
	for i < len(b) {
		switch g.state {
		case gStart:
			if b[i] == '*' {
				g.state, g.line = gCount, g.line[:0]
			} else {
				g.state, g.inl = gInline, 0
				continue // the first byte belongs to the line
			}
			i++
		case gInline:
			for i < len(b) && b[i] != '\n' {
				i++
				if g.inl++; g.inl > maxInline {
					return g.fail(i, "too big inline request")
				}
			}
			if i < len(b) {
				i++
				g.state = gStart
			}
		case gCount, gBulkLen:
			c := b[i]
			if c != '\n' {
				if len(g.line) >= maxHeaderLine {
					return g.fail(i, g.lengthError())
				}
				g.line = append(g.line, c)
				i++
				continue
			}
			i++
			if len(g.line) == 0 || g.line[len(g.line)-1] != '\r' {
				return g.fail(i, g.lengthError())
			}
			n, err := strconv.Atoi(string(g.line[:len(g.line)-1]))
			if g.state == gCount {
				switch {
				case err != nil || n <= 0 || n > g.maxArgs:
					// Redis skips "*0" and "*-1"; redcon rejects them.
					return g.fail(i, "invalid multibulk length")
				case n > unauthMaxArgs && !g.authed():
					return g.fail(i, "unauthenticated multibulk length")
				}
				g.args, g.state = n, gDollar
				continue
			}
			switch {
			case err != nil || n < 0 || n > g.maxBulk:
				return g.fail(i, "invalid bulk length")
			case n > unauthMaxBulk && !g.authed():
				return g.fail(i, "unauthenticated bulk length")
			}
			g.skip, g.state = n+2, gBulkData
		case gDollar:
			if b[i] != '$' {
				return g.fail(i, "expected '$', got '"+string(b[i:i+1])+"'")
			}
			g.state, g.line = gBulkLen, g.line[:0]
			i++
		case gBulkData:
			take := min(g.skip, len(b)-i)
			g.skip -= take
			i += take
			if g.skip == 0 {
				if g.args--; g.args == 0 {
					g.state = gStart
				} else {
					g.state = gDollar
				}
			}
		}
	}
	return i
}

func (g *guard) lengthError() string {
	if g.state == gCount {
		return "invalid multibulk length"
	}
	return "invalid bulk length"
}

// fail records a protocol error in the byte before b[i] and returns how
// many bytes to pass on: those before it, which complete no further command.
func (g *guard) fail(i int, msg string) int {
	g.err = &protocolError{msg}
	return max(i-1, 0)
}
