// Command opensetclose opens a cache directory, sets one key with a TTL and
// closes it: the smallest Go program a user of diskcache runs. The harness
// builds it and starts it four at a time in W8, so that process start is
// comparable with a fresh python3 running pyopensetclose.py.
//
//	opensetclose DIR KEY VALUE TTL
//
// It prints what each step took as one JSON line in the harness's result
// format.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/diskcache-go/diskcache/benchmarks/internal/lifecycle"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: opensetclose DIR KEY VALUE TTL")
		os.Exit(2)
	}
	ttl, err := time.ParseDuration(os.Args[4])
	if err != nil {
		fmt.Fprintln(os.Stderr, "opensetclose: TTL:", err)
		os.Exit(2)
	}
	m, err := lifecycle.OpenSetClose(os.Args[1], os.Args[2], []byte(os.Args[3]), ttl)
	res := map[string]any{"metrics": m}
	if err != nil {
		res["error"] = err.Error()
	}
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	if err != nil {
		os.Exit(1)
	}
}
