// Package engine is diskcache's cache on Pebble: one directory on local disk
// holds entries that survive restarts, carry an optional time to live, and
// are read and written by many goroutines at once.
//
//	c, err := engine.Open("/var/cache/myapp", nil)
//	...
//	err = c.Set(ctx, "user:42", data, 10*time.Minute)
//	v, err := c.Get(ctx, "user:42") // engine.ErrNotFound when missing or expired
//
// Durability: by default a write that returned has reached the operating
// system and survives kill -9 of the process (not power loss);
// Options.Sync makes every write fsync; Options.FlushInterval trades the
// last interval's writes on a crash for speed.
//
// Expiry: reads never return an expired entry; a sweeper deletes expired
// entries every Options.SweepInterval and compacts their space away.
//
// docs/ARCHITECTURE.md is the map: layers, keyspace, the owner/forwarder
// contract, durability, the size limit and what each file is for. The
// reasons are next to the code that keeps them: keys.go, contract.go,
// calls.go, package codec, durability.go, pebble.go, keystate.go.
package engine
