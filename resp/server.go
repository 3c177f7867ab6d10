package resp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// drainTimeout bounds how long a shutdown waits for a client to take the
// replies of its last commands.
const drainTimeout = 5 * time.Second

// Server serves a Store over the Redis protocol. One Server may serve
// several listeners at once (each with its own Serve call); clients of all
// of them share its limits, client IDs and INFO figures.
type Server struct {
	store   Store
	cfg     Config
	log     *slog.Logger
	started time.Time

	nextID   atomic.Uint64
	mu       sync.Mutex
	conns    map[*conn]struct{}
	received atomic.Int64 // total_connections_received
	rejected atomic.Int64 // rejected_connections
	commands atomic.Int64 // total_commands_processed

	// xmu is taken shared by every command and exclusively by those that
	// must see no other command in their midst (EXEC, EVAL, read-modify-
	// write commands); see multi.go. It is Config.Lock when set.
	xmu *sync.RWMutex
	// watchers are the connections watching each key (WATCH), guarded by
	// wmu; watchCount is len(watchers), read without the lock.
	wmu        sync.Mutex
	watchers   map[string]map[*conn]struct{}
	watchCount atomic.Int64

	scripts scriptCache

	runID    string        // INFO's run_id: random, one per Server
	peakHeap atomic.Uint64 // INFO's used_memory_peak
}

// NewServer returns a Server of s with the configuration cfg.
func NewServer(s Store, cfg Config) *Server {
	cfg = cfg.withDefaults()
	if cfg.Lock == nil {
		cfg.Lock = new(sync.RWMutex)
	}
	return &Server{
		store:   s,
		cfg:     cfg,
		log:     cfg.Logger,
		started: time.Now(),
		conns:   make(map[*conn]struct{}),

		xmu:      cfg.Lock,
		runID:    newRunID(),
		watchers: make(map[string]map[*conn]struct{}),
		scripts:  scriptCache{m: make(map[string]string)},
	}
}

// Serve accepts connections on ln and serves them until ctx is done or ln
// fails. When ctx is done it stops accepting, lets every connection finish
// the commands it has read, closes the connections and returns nil. When
// Accept fails for good it does the same and returns the error. Serve closes
// ln in both cases.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	// Commands in flight finish after ctx is done: they run under a context
	// that only keeps ctx's values.
	cmdCtx := context.WithoutCancel(ctx)

	var (
		wg    sync.WaitGroup
		mine  = make(map[*conn]struct{})
		mu    sync.Mutex // guards mine
		delay time.Duration
		err   error
	)
	for {
		nc, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if temporary(aerr) {
				// Out of file descriptors and the like: wait and retry,
				// as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("resp: accept failed; retrying", "addr", ln.Addr().String(), "err", aerr, "in", delay)
				select {
				case <-time.After(delay):
				case <-ctx.Done():
				}
				continue
			}
			err = fmt.Errorf("resp: accept on %s: %w", ln.Addr(), aerr)
			break
		}
		delay = 0
		s.received.Add(1)
		c := s.newConn(cmdCtx, nc)
		if !s.admit(c) {
			s.rejected.Add(1)
			go reject(nc)
			continue
		}
		mu.Lock()
		mine[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.serve()
			s.remove(c)
			mu.Lock()
			delete(mine, c)
			mu.Unlock()
		}()
	}
	ln.Close()
	mu.Lock()
	for c := range mine {
		c.shutdown()
	}
	mu.Unlock()
	wg.Wait()
	return err
}

// newRunID returns 40 random hex digits, as Redis's run_id.
func newRunID() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// admit registers c unless the server has MaxClients connections already.
func (s *Server) admit(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.cfg.MaxClients {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// clients returns the connections being served, in no order.
func (s *Server) clients() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) numClients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Activity returns a count that grows with every connection accepted and
// every command run: a server about to shut down can tell whether its
// clients are still busy with it.
func (s *Server) Activity() int64 {
	return s.received.Load() + s.commands.Load()
}

// reject tells a connection past MaxClients why it is closed, as Redis does.
func reject(nc net.Conn) {
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	nc.Write([]byte("-ERR max number of clients reached\r\n"))
	nc.Close()
}

// temporary reports whether an Accept error is worth retrying.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM)
}
