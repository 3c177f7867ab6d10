package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/diskcache-go/diskcache/resp"
)

// sockName is the owner's socket in the cache directory.
const sockName = "owner.sock"

// socketPath returns where the owner of dir listens. A Unix socket path
// must fit in 108 bytes with its terminating NUL; for a longer directory
// the socket is abstract (Linux), named after a hash of the directory's
// absolute path, so every process derives the same name.
func socketPath(dir string) string {
	p := filepath.Join(dir, sockName)
	if len(p) < 108 {
		return p
	}
	sum := sha256.Sum256([]byte(dir))
	return "@diskcache-" + hex.EncodeToString(sum[:16])
}

// ownerServer serves the owner's store to the other processes.
type ownerServer struct {
	ln     net.Listener
	srv    *resp.Server
	cancel context.CancelFunc
	done   chan struct{}
	// conns counts the connections accepted and not yet closed, from the
	// moment Accept returns them: the server counts a connection only
	// once it has admitted it, and a linger that looked in between saw
	// nobody (linger).
	conns atomic.Int64
}

// listenOwner listens on the directory's socket. The caller holds the owner
// lock, so a socket file left by a dead owner is stale and is removed
// first. It listens before the store opens: a process that arrives
// meanwhile connects and waits in the socket's backlog until serveOwner
// answers, instead of polling the lock, and the owner's Close sees it
// (linger).
func listenOwner(dir string) (net.Listener, error) {
	path := socketPath(dir)
	if path[0] != '@' {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("diskcache: remove stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("diskcache: listen on %s: %w", path, err)
	}
	if path[0] != '@' {
		// The directory is created 0700, but one made by someone else may
		// be more open; the socket itself is for this user only.
		if err := os.Chmod(path, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("diskcache: chmod socket %s: %w", path, err)
		}
	}
	return ln, nil
}

// serveOwner serves s on ln (listenOwner) to the forwarders in the private
// command set (contract.go), and over the Redis protocol to any other
// client of this user, under lock (the Cache's, which its Serve shares, so
// that transactions of `diskcache serve` are atomic against other
// processes).
func serveOwner(s *store, ln net.Listener, lock *sync.RWMutex) *ownerServer {
	ctx, cancel := context.WithCancel(context.Background())
	o := &ownerServer{cancel: cancel, done: make(chan struct{})}
	o.ln = sameUser{Listener: ln, accepted: s.tier.share, conns: &o.conns}
	o.srv = resp.NewServer(respStore{c: s, dir: s.dir, opts: s.opts, started: time.Now()}, resp.Config{
		Logger:     s.log,
		ServerName: "diskcache-owner",
		// The forwarders' calls, beside Redis's commands (contract.go).
		Extension: protocol{s: s},
		// The owner serves every process of the machine that shares the
		// directory; its clients are pools of a few connections each.
		MaxClients: 4096,
		Lock:       lock,
	})
	go func() {
		defer close(o.done)
		if err := o.srv.Serve(ctx, o.ln); err != nil {
			s.log.Error("diskcache: owner socket failed", "err", err)
		}
	}()
	return o
}

// How long a closing owner keeps serving the processes connected to it
// (linger): until none is connected, or none has sent anything for
// lingerIdle, and at most lingerMax.
// Variables so that a test can make them long.
var (
	lingerIdle = 10 * time.Millisecond
	lingerMax  = 100 * time.Millisecond
)

const lingerPoll = 500 * time.Microsecond

// testHookListening, when set by a test, runs once the socket of a new
// owner listens, before its store opens.
var testHookListening func(ln net.Listener)

// linger runs at the start of the owner's Close: while other processes are
// connected and busy, it keeps serving them. Short-lived processes that
// start together (the model's example, pre-fork workers, a burst of cron
// jobs) then all use the store the first of them opened, instead of
// queueing for the lock to open and close it one after the other: each
// owner's Open and Close would be on the path of all the processes behind
// it. An owner nobody is connected to closes at once; one whose other
// processes are idle waits lingerIdle; one whose other processes stay busy
// hands them off after lingerMax, as before.
func (o *ownerServer) linger() {
	if !o.connected() {
		return
	}
	last := o.srv.Activity()
	start := time.Now()
	quiet := start
	for {
		time.Sleep(lingerPoll)
		now := time.Now()
		if events := o.srv.Activity(); events != last {
			last, quiet = events, now
		}
		if !o.connected() || now.Sub(quiet) >= lingerIdle || now.Sub(start) >= lingerMax {
			return
		}
	}
}

// connected reports whether another process is connected to the owner or
// waits in the socket's backlog. The count is read before the backlog: a
// connection moves from the backlog to the count, never the other way.
func (o *ownerServer) connected() bool {
	return o.conns.Load() > 0 || o.pending()
}

// pending reports whether a connection waits in the socket's backlog: a
// process that connected while the store was opening, which the accept
// loop has not taken yet.
func (o *ownerServer) pending() bool { return backlogged(o.ln.(sameUser).Listener) }

// backlogged reports whether a connection to ln waits to be accepted.
func backlogged(ln net.Listener) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ready = err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
	})
	return ready
}

// shutdown stops accepting, finishes the calls in flight and closes the
// connections; the forwarders then hand off.
func (o *ownerServer) shutdown() {
	o.cancel()
	<-o.done
	o.ln.Close()
}

// sameUser accepts only connections from processes of this user. An
// abstract socket has no file permissions, and a socket file's permissions
// are set just after it is created; the peer's credentials close both gaps.
// accepted runs for each connection before it is served.
type sameUser struct {
	net.Listener
	accepted func()
	conns    *atomic.Int64 // connections returned and not closed
}

func (l sameUser) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if peerUID(c) == os.Getuid() {
			l.accepted()
			l.conns.Add(1)
			return &countedConn{Conn: c, conns: l.conns}, nil
		}
		c.Close()
	}
}

// countedConn takes itself off the count of open connections when it is
// first closed.
type countedConn struct {
	net.Conn
	conns  *atomic.Int64
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.conns.Add(-1)
	}
	return c.Conn.Close()
}

// peerUID returns the user id of the process at the other end of a Unix
// connection, or -1 if it cannot be read.
func peerUID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			uid = int(cred.Uid)
		}
	})
	return uid
}
