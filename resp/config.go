package resp

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Config's limits; they are Redis's.
const (
	DefaultMaxBulk    = 512 << 20 // proto-max-bulk-len
	DefaultMaxArgs    = 1 << 20   // Redis's limit on a multibulk count
	DefaultMaxClients = 10000     // maxclients

	// DefaultScriptTimeout is Redis's busy-reply-threshold.
	DefaultScriptTimeout = 5 * time.Second
)

// RedisVersion is the Redis version whose commands the handler implements.
// HELLO and INFO report it as the server's version, because clients gate
// features on it; the server's own version is Config.Version.
const RedisVersion = "7.0.0"

// Config configures a Server. The zero value is valid.
type Config struct {
	// Password, when set, makes clients authenticate (AUTH, or HELLO with
	// AUTH) before any other command, as Redis's requirepass.
	Password string

	// MaxBulk is the longest argument a request may carry, in bytes; 0
	// means DefaultMaxBulk. A longer one closes the connection with
	// "ERR Protocol error: invalid bulk length", as in Redis.
	MaxBulk int
	// MaxArgs is the most arguments a command may have; 0 means
	// DefaultMaxArgs.
	MaxArgs int
	// MaxClients is the most connections served at once; 0 means
	// DefaultMaxClients. A connection past it is answered
	// "ERR max number of clients reached" and closed.
	MaxClients int

	// ScriptTimeout bounds how long an EVAL may run, holding every other
	// client off (scripts are atomic); past it the script fails with an
	// error. 0 means DefaultScriptTimeout.
	ScriptTimeout time.Duration

	// Lock, when set, is taken shared by every command and exclusively by
	// EXEC, scripts and the commands that read a key and write it back.
	// Servers given the same Lock are atomic with respect to each other's
	// clients: the engine gives its owner socket's Server and the Servers
	// of Cache.Serve one, so that a transaction on `diskcache serve` is
	// atomic against the calls of every process of the directory. nil: the
	// Server's own.
	Lock *sync.RWMutex

	// Logger receives connection failures and recovered panics; nil means
	// slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told about every command (for metrics).
	Observer Observer

	// Extension, when set, serves commands of its own beside Redis's (the
	// engine's private protocol on its owner socket). It sees every command
	// of an authenticated client before the Redis command table does.
	Extension Extension

	// ServerName is what HELLO and INFO call the server; "" means
	// "diskcache". Version is its version; "" means "dev".
	ServerName string
	Version    string
}

// Extension serves commands that are not Redis's. ServeCommand is called
// from many connections at once. If args (the command's name first) is one
// of its commands, it appends the whole reply, RESP-encoded, to out and
// returns it with true; otherwise it returns out and false and the Redis
// command table runs the command.
type Extension interface {
	ServeCommand(ctx context.Context, args [][]byte, out []byte) ([]byte, bool)
}

// Observer is told about each command a Server runs. It is called from many
// connections at once and must be quick and safe for concurrent use.
type Observer interface {
	// ObserveCommand reports a command: its lower-case name ("unknown" for
	// a command the server does not have, so that names stay a small set),
	// how long it took, and the error it replied with (nil for a success;
	// a missing key is not an error). Commands run as one batch (pipelined
	// GETs or SETs) share the batch's time equally.
	ObserveCommand(name string, took time.Duration, err error)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(name string, took time.Duration, err error)

// ObserveCommand calls f.
func (f ObserverFunc) ObserveCommand(name string, took time.Duration, err error) {
	f(name, took, err)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxBulk <= 0 {
		c.MaxBulk = DefaultMaxBulk
	}
	if c.MaxArgs <= 0 {
		c.MaxArgs = DefaultMaxArgs
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.ScriptTimeout <= 0 {
		c.ScriptTimeout = DefaultScriptTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ServerName == "" {
		c.ServerName = "diskcache"
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c
}
