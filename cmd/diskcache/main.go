// Command diskcache reads and writes a diskcache directory from the shell,
// and serves it to any Redis client with `diskcache serve`.
//
// Exit codes: 0 success, 1 a runtime error (including a missing key for get
// and ttl), 2 a usage error. Errors go to standard error.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
