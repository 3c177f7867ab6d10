// Package resp serves a Store over the Redis protocol (RESP2, and RESP3 after
// HELLO 3), with Redis's semantics and error wording for the string and
// keyspace commands a cache needs.
//
// The engine uses it twice: the process that owns a cache directory serves
// its Unix socket with it, and `diskcache serve` serves TCP clients with it.
// Package resp never imports the engine; the engine hands it a Store.
//
// Parsing and reply encoding come from github.com/tidwall/redcon. What this
// package adds around them: limits checked before a request is buffered
// (guard.go), a connection loop that runs each pipelined batch of commands
// at once and turns runs of GET and SET into one Store call (conn.go), the
// RESP3 replies redcon does not write (reply.go), and the commands.
package resp
