// Command quickstart shows diskcache at work: it opens a cache directory
// (./diskcache-data unless told otherwise), writes some entries with and
// without a time to live, reads them back, and prints what the cache holds.
// Run it twice: the second run finds the first run's entries on disk.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/diskcache-go/diskcache/engine"
)

func main() {
	dir := flag.String("dir", "diskcache-data", "cache directory")
	n := flag.Int("n", 10000, "entries to write")
	flag.Parse()
	ctx := context.Background()

	c, err := engine.Open(*dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	before, err := c.Len(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if v, err := c.Get(ctx, "greeting"); err == nil {
		fmt.Printf("found from an earlier run: greeting = %q (%d entries)\n", v, before)
	} else if errors.Is(err, engine.ErrNotFound) {
		fmt.Printf("a new cache in %s\n", c.Dir())
	} else {
		log.Fatal(err)
	}

	start := time.Now()
	if err := c.Set(ctx, "greeting", []byte("hello from "+start.Format(time.RFC3339)), 0); err != nil {
		log.Fatal(err)
	}
	for i := 0; i < *n; i++ {
		value := fmt.Appendf(nil, "rendered page %d, kept for an hour", i)
		if err := c.Set(ctx, fmt.Sprintf("page:%d", i), value, time.Hour); err != nil {
			log.Fatal(err)
		}
	}
	wrote := time.Since(start)

	start = time.Now()
	for i := 0; i < *n; i++ {
		if _, err := c.Get(ctx, fmt.Sprintf("page:%d", i)); err != nil {
			log.Fatal(err)
		}
	}
	read := time.Since(start)
	ttl, _ := c.TTL(ctx, "page:0")

	l, _ := c.Len(ctx)
	s := c.Stats()
	fmt.Printf("wrote %d entries in %v (%.0f/s), read them in %v (%.0f/s)\n",
		*n, wrote.Round(time.Millisecond), float64(*n)/wrote.Seconds(),
		read.Round(time.Millisecond), float64(*n)/read.Seconds())
	fmt.Printf("page:0 expires in %v\n", ttl.Round(time.Second))
	fmt.Printf("entries %d, stored bytes %d, on disk %d bytes, hits %d, misses %d\n",
		l, s.Bytes, s.DiskBytes, s.Hits, s.Misses)
}
