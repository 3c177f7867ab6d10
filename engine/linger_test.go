package engine

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setLinger makes a closing owner linger for idle and at most max, for the
// length of the test.
func setLinger(t *testing.T, idle, max time.Duration) {
	oldIdle, oldMax := lingerIdle, lingerMax
	lingerIdle, lingerMax = idle, max
	t.Cleanup(func() { lingerIdle, lingerMax = oldIdle, oldMax })
}

// TestBurstSharesOneOwner: a process that opens the directory while its
// owner's store is still opening waits on the owner's socket, and the
// owner, closed right after its own call, keeps serving it until it is
// done: the burst uses one store, and the latecomer never has to open and
// close it after the first (the model's example of short-lived processes).
func TestBurstSharesOneOwner(t *testing.T) {
	setLinger(t, time.Minute, time.Minute) // only the forwarder ends the linger here
	dir := t.TempDir()
	listening := make(chan net.Listener)
	release := make(chan struct{})
	var once sync.Once
	testHookListening = func(ln net.Listener) {
		once.Do(func() {
			listening <- ln
			<-release
		})
	}
	t.Cleanup(func() { testHookListening = nil })

	type opened struct {
		c   *Cache
		err error
	}
	first, second := make(chan opened, 1), make(chan opened, 1)
	go func() {
		c, err := Open(dir, nil)
		first <- opened{c, err}
	}()
	ln := <-listening
	go func() {
		c, err := Open(dir, nil)
		second <- opened{c, err}
	}()
	for !backlogged(ln) { // the second Open waits on the socket
		time.Sleep(time.Millisecond)
	}
	close(release)

	a := <-first
	if a.err != nil {
		t.Fatal(a.err)
	}
	if !a.c.IsOwner() {
		t.Fatal("the first Open is not the owner")
	}
	b := <-second
	if b.err != nil {
		t.Fatal(b.err)
	}
	if b.c.IsOwner() {
		t.Fatal("the second Open took the directory over instead of using the owner's store")
	}
	if err := a.c.Set(ctx, "first", []byte("1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- a.c.Close() }()

	if err := b.c.Set(ctx, "second", []byte("2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if b.c.IsOwner() {
		t.Fatal("the owner closed while the second process was still using it: it took over")
	}
	select {
	case err := <-closed:
		t.Fatalf("the owner's Close returned (%v) while another process was still connected", err)
	default:
	}
	if err := b.c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}

	c, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for k, want := range map[string]string{"first": "1", "second": "2"} {
		if v, err := c.Get(ctx, k); err != nil || string(v) != want {
			t.Errorf("Get %q after the burst: %q, %v", k, v, err)
		}
	}
}

// TestLingerEnds: an owner's Close does not wait for ever on the other
// processes: an idle one lets it go after lingerIdle, a busy one after
// lingerMax, and both then take the directory over and go on.
func TestLingerEnds(t *testing.T) {
	for _, busy := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "busy"}[busy]
		t.Run(name, func(t *testing.T) {
			if busy {
				setLinger(t, time.Minute, 50*time.Millisecond)
			} else {
				setLinger(t, 10*time.Millisecond, time.Minute)
			}
			dir := t.TempDir()
			a, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.IsOwner() {
				t.Fatal("the second Open owns the directory")
			}
			var (
				stop   atomic.Bool
				wrote  atomic.Int64
				failed = make(chan error, 1)
				done   = make(chan struct{})
			)
			if busy {
				go func() {
					defer close(done)
					for i := 0; !stop.Load(); i++ {
						if err := b.Set(context.Background(), "k", []byte{byte(i)}, 0); err != nil {
							failed <- err
							return
						}
						wrote.Add(1)
					}
				}()
				for wrote.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
			} else {
				close(done)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			// The other process takes over at its next call.
			for n := wrote.Load(); busy && wrote.Load() < n+10; {
				time.Sleep(time.Millisecond)
			}
			stop.Store(true)
			<-done
			select {
			case err := <-failed:
				t.Fatalf("a Set failed across the owner's Close: %v", err)
			default:
			}
			if err := b.Set(ctx, "after", []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
			if !b.IsOwner() {
				t.Error("the remaining process did not take the directory over")
			}
			if _, err := b.Get(ctx, "after"); errors.Is(err, ErrNotFound) || err != nil {
				t.Errorf("Get after the takeover: %v", err)
			}
		})
	}
}
