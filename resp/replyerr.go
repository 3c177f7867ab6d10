package resp

import (
	"errors"
	"strings"
)

// replyErr is an error reply, its text as Redis words it, code first.
type replyErr string

func (e replyErr) Error() string { return string(e) }

// Redis's error replies.
const (
	errSyntax        = replyErr("ERR syntax error")
	errNotInt        = replyErr("ERR value is not an integer or out of range")
	errNoAuth        = replyErr("NOAUTH Authentication required.")
	errWrongPass     = replyErr("WRONGPASS invalid username-password pair or user is disabled.")
	errNoPassword    = replyErr("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	errDBIndex       = replyErr("ERR DB index is out of range")
	errInvalidCursor = replyErr("ERR invalid cursor")
	errDecrOverflow  = replyErr("ERR decrement would overflow")
	errNoProto       = replyErr("NOPROTO unsupported protocol version")
	errClientName    = replyErr("ERR Client names cannot contain spaces, newlines or special characters.")
	errHelloNoAuth   = replyErr("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
)

// replyText is the error reply for err: a replyErr as it is, a Store's
// typed errors in Redis's words, anything else after "ERR ".
func replyText(err error) string {
	var re replyErr
	switch {
	case errors.As(err, &re):
		return string(re)
	case errors.Is(err, ErrNotInteger):
		return string(errNotInt)
	case errors.Is(err, ErrOverflow):
		return "ERR increment or decrement would overflow"
	}
	return "ERR " + err.Error()
}

func wrongArity(name string) error {
	return replyErr("ERR wrong number of arguments for '" + name + "' command")
}

func invalidExpire(name string) error {
	return replyErr("ERR invalid expire time in '" + name + "' command")
}

func unknownSubcommand(cmd string, sub []byte) error {
	return replyErr("ERR unknown subcommand '" + clip(sub, 128) + "'. Try " + strings.ToUpper(cmd) + " HELP.")
}

// unknownCommand words the reply to a command the server does not have as
// Redis does, quoting the first 128 bytes or so of its arguments.
func unknownCommand(args [][]byte) error {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		n := 128 - b.Len()
		b.WriteByte('\'')
		b.WriteString(clip(a, n))
		b.WriteString("' ")
	}
	return replyErr("ERR unknown command '" + clip(args[0], 128) + "', with args beginning with: " + b.String())
}

func clip(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
