// Package lifecycle is one process's part of W8's multi-process example:
// open a cache directory, set one key with a TTL, close. The harness's own
// child and the tiny opensetclose command both run it, so that the two
// differ only in what starting the process costs.
package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/diskcache-go/diskcache/engine"
)

// OpenSetClose opens dir with the default options, sets key, and closes,
// and returns what each step took in seconds (open_s, set_s, close_s).
// Open may wait for another process's Close: that wait is part of open_s.
func OpenSetClose(dir, key string, value []byte, ttl time.Duration) (map[string]float64, error) {
	m := map[string]float64{}
	t0 := time.Now()
	c, err := engine.Open(dir, nil)
	if err != nil {
		return m, err
	}
	t1 := time.Now()
	m["open_s"] = t1.Sub(t0).Seconds()
	if err := c.Set(context.Background(), key, value, ttl); err != nil {
		c.Close()
		return m, fmt.Errorf("set %q in %s: %w", key, dir, err)
	}
	t2 := time.Now()
	m["set_s"] = t2.Sub(t1).Seconds()
	if err := c.Close(); err != nil {
		return m, err
	}
	m["close_s"] = time.Since(t2).Seconds()
	return m, nil
}
