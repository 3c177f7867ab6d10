package ttl

import (
	"sync"
	"time"
)

// Round is what one call of Target.Sweep did.
type Round struct {
	Visited int   // index entries looked at
	Expired int   // records deleted because they had expired
	Bytes   int64 // stored bytes of the deleted records
	More    bool  // expired index entries remain past this round
}

// Target is the store a Sweeper cleans.
type Target interface {
	// Sweep walks at most max expiry index entries that expire at or before
	// now, deletes the records that really have expired (an overwritten key
	// leaves its record alone and drops only the stale index entry), and
	// reports what it did.
	Sweep(now int64, max int) (Round, error)
	// Reclaim is called once per tick, after the sweep rounds, with the bytes
	// those rounds deleted. Deleting a record frees nothing on disk until
	// compaction drops it, so this is where the store decides whether to
	// compact.
	Reclaim(freed int64) error
}

// Config tunes a Sweeper. The zero value is a sweeper that runs every minute.
type Config struct {
	Interval  time.Duration // time between ticks; 0 means 1 minute
	RoundSize int           // index entries per Sweep call; 0 means 1024
	// MaxRounds bounds the work of one tick, so a backlog of expired entries
	// is worked off over several ticks instead of starving the writers; 0
	// means 256 (256Ki entries a tick at the default round size).
	MaxRounds int
	Clock     Clock       // nil means SystemClock
	OnError   func(error) // called with errors from the Target; nil drops them
}

func (c *Config) ensureDefaults() {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.RoundSize <= 0 {
		c.RoundSize = 1024
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = 256
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
}

// Sweeper deletes expired records in the background, one tick every
// Interval. Its methods are safe for concurrent use.
type Sweeper struct {
	target Target
	cfg    Config

	tickMu sync.Mutex // one tick at a time, from the loop or from Tick

	mu      sync.Mutex
	stop    chan struct{}
	done    chan struct{}
	stopped bool
}

// NewSweeper returns a Sweeper over t. It does nothing until Start.
func NewSweeper(t Target, cfg Config) *Sweeper {
	cfg.ensureDefaults()
	return &Sweeper{target: t, cfg: cfg}
}

// Start runs the sweeper in its own goroutine until Stop. Starting a started
// or stopped sweeper does nothing.
func (s *Sweeper) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil || s.stopped {
		return
	}
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.loop(s.stop, s.done)
}

// Stop ends the sweeper's goroutine and waits for a tick in progress to
// finish. It is idempotent.
func (s *Sweeper) Stop() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	already := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if already || stop == nil {
		return
	}
	close(stop)
	<-done
}

func (s *Sweeper) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := s.tick(stop); err != nil && s.cfg.OnError != nil {
				s.cfg.OnError(err)
			}
		}
	}
}

// Tick runs one tick now: up to MaxRounds sweep rounds, then Reclaim. It
// returns the sum of the rounds.
func (s *Sweeper) Tick() (Round, error) { return s.tick(nil) }

func (s *Sweeper) tick(stop <-chan struct{}) (Round, error) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	var total Round
	now := s.cfg.Clock.Now().UnixNano()
	for i := 0; i < s.cfg.MaxRounds; i++ {
		r, err := s.target.Sweep(now, s.cfg.RoundSize)
		total.Visited += r.Visited
		total.Expired += r.Expired
		total.Bytes += r.Bytes
		total.More = r.More
		if err != nil {
			return total, err
		}
		if !r.More || stopping(stop) {
			break
		}
	}
	return total, s.target.Reclaim(total.Bytes)
}

func stopping(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
