// Package vlog is a value log: append-only segment files for values too
// large to keep in an LSM.
//
// A value kept in Pebble is rewritten by every compaction that passes over
// it, and the space of a deleted one comes back only once a compaction
// reaches the bottom level; with keys spread by hash, every byte a size
// limit evicts costs a rewrite of the live data around it. A value in the
// log is written once; its record in Pebble holds a codec.Ref (16 bytes)
// instead, and the log gives space back a whole segment at a time: a
// collector (the engine's) moves the entries of an old segment that are
// still referenced to the head of the log and removes the file.
//
// # Layout
//
// A directory of segments named by an increasing number, "00000001.vlog".
// A segment starts with an 8-byte magic and holds entries back to back:
//
//	offset  size  field
//	0       4     CRC-32C (Castagnoli) of bytes 4 to the end of the entry
//	4       4     key length (uint32, little-endian)
//	8       4     value length (uint32, little-endian)
//	12      k     key
//	12+k    v     the stored value
//
// A Ref names the segment, the entry's offset and length and its checksum;
// Read checks all of them and the key, so a Ref that points at the wrong
// bytes reads as corrupt, never as another key's value.
//
// # Crashes
//
// Writes to a segment are serialised and a log never appends to a segment
// it did not create, so the only torn entry a crash can leave is the last
// one of a segment; nothing refers to it (its record was never written).
// The log's user writes an entry before the record that refers to it, and
// holds a Pin on the entry's segment until that record is committed, so
// that no collection removes the segment in between.
package vlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/diskcache-go/diskcache/codec"
)

// Errors. ErrGone means the segment a Ref names has been removed: the
// entry was moved (read its record again) or dropped. ErrCorrupt wraps
// every mismatch between a Ref and what the log holds.
var (
	ErrGone    = errors.New("vlog: segment removed")
	ErrCorrupt = errors.New("vlog: corrupt entry")
	ErrClosed  = errors.New("vlog: closed")
)

const (
	magic       = "dcvlog1\n"
	headerSize  = int64(len(magic))
	entryHeader = 12
	suffix      = ".vlog"
	// MaxEntry bounds one entry: offsets and lengths are uint32.
	MaxEntry = 1<<31 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configure a Log.
type Options struct {
	// SegmentSize is the size past which a segment is sealed and the next
	// entry starts a new one; a collection frees this much at a time.
	SegmentSize int64
	// Sync makes the creation of a segment durable (the directory is
	// synced); the entries themselves are synced by Log.Sync.
	Sync bool
}

// Log is a value log in one directory. It is safe for concurrent use.
type Log struct {
	fs   vfs.FS
	dir  string
	opts Options

	mu     sync.RWMutex // guards segs and closed
	segs   map[uint32]*segment
	closed bool

	appendMu sync.Mutex // serialises writes; guards active and next
	active   *segment
	next     uint32

	size atomic.Int64 // bytes of all segments
}

type segment struct {
	id   uint32
	path string
	f    vfs.File
	// size is the bytes written so far (the offset of the next entry).
	size atomic.Int64
	// refs counts the readers holding the file open, plus one for the
	// log while the segment is listed; the last release closes it.
	refs atomic.Int32
	// pending counts entries whose records are not committed yet (Pin).
	pending atomic.Int32
	sealed  atomic.Bool

	syncMu sync.Mutex
	synced int64 // guarded by syncMu
}

// Open opens the log in dir, creating dir if needed. Segments already
// there are sealed: new entries go to a new segment.
func Open(fs vfs.FS, dir string, opts Options) (*Log, error) {
	if opts.SegmentSize <= headerSize {
		return nil, fmt.Errorf("vlog: segment size %d is too small", opts.SegmentSize)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vlog: create %s: %w", dir, err)
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("vlog: list %s: %w", dir, err)
	}
	l := &Log{fs: fs, dir: dir, opts: opts, segs: map[uint32]*segment{}, next: 1}
	for _, name := range names {
		id, ok := parseName(name)
		if !ok {
			continue // not ours: never touched
		}
		path := fs.PathJoin(dir, name)
		f, err := fs.Open(path)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("vlog: open %s: %w", path, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			l.Close()
			return nil, fmt.Errorf("vlog: stat %s: %w", path, err)
		}
		s := &segment{id: id, path: path, f: f}
		s.size.Store(st.Size())
		s.synced = st.Size()
		s.refs.Store(1)
		s.sealed.Store(true)
		l.segs[id] = s
		l.size.Add(st.Size())
		l.next = max(l.next, id+1)
	}
	return l, nil
}

func parseName(name string) (uint32, bool) {
	base, ok := strings.CutSuffix(name, suffix)
	if !ok || len(base) != 8 {
		return 0, false
	}
	id, err := strconv.ParseUint(base, 10, 32)
	return uint32(id), err == nil && id > 0
}

// Size returns the bytes the log's segments take.
func (l *Log) Size() int64 { return l.size.Load() }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Pin keeps a segment from collection until its entry's record is
// committed (or given up). The zero Pin releases nothing.
type Pin struct{ s *segment }

// Release ends the pin. It may be called once.
func (p Pin) Release() {
	if p.s != nil {
		p.s.pending.Add(-1)
	}
}

// Append writes an entry for key and the stored value and returns its Ref
// and a Pin on its segment, which the caller releases once the record that
// holds the Ref is committed. The bytes have reached the OS when Append
// returns (a process crash keeps them); Sync makes them durable.
func (l *Log) Append(key, stored []byte) (codec.Ref, Pin, error) {
	n := int64(entryHeader + len(key) + len(stored))
	if n > MaxEntry {
		return codec.Ref{}, Pin{}, fmt.Errorf("vlog: an entry of %d bytes is more than %d", n, MaxEntry)
	}
	buf := make([]byte, n)
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(key)))
	binary.LittleEndian.PutUint32(buf[8:], uint32(len(stored)))
	copy(buf[entryHeader:], key)
	copy(buf[entryHeader+len(key):], stored)
	sum := crc32.Checksum(buf[4:], castagnoli)
	binary.LittleEndian.PutUint32(buf, sum)

	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	s := l.active
	if s == nil || s.size.Load() > headerSize && s.size.Load()+n > l.opts.SegmentSize || s.size.Load()+n > MaxEntry {
		var err error
		if s, err = l.rotate(); err != nil {
			return codec.Ref{}, Pin{}, err
		}
	}
	off := s.size.Load()
	w, err := s.f.Write(buf)
	s.size.Add(int64(w))
	l.size.Add(int64(w))
	if err != nil {
		// Whatever part of the entry reached the file stays its last: the
		// next entry starts a new segment.
		l.seal(s)
		return codec.Ref{}, Pin{}, fmt.Errorf("vlog: write %s: %w", s.path, err)
	}
	s.pending.Add(1)
	return codec.Ref{Segment: s.id, Offset: uint32(off), Length: uint32(n), Sum: sum}, Pin{s}, nil
}

// rotate seals the active segment and starts the next. The caller holds
// appendMu.
func (l *Log) rotate() (*segment, error) {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if l.active != nil {
		l.seal(l.active)
	}
	id := l.next
	path := l.fs.PathJoin(l.dir, fmt.Sprintf("%08d%s", id, suffix))
	f, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("vlog: create %s: %w", path, err)
	}
	l.next++
	s := &segment{id: id, path: path, f: f}
	s.refs.Store(1)
	w, err := f.Write([]byte(magic))
	s.size.Store(int64(w))
	l.size.Add(int64(w))
	if err == nil && l.opts.Sync {
		err = l.syncDir()
	}
	l.mu.Lock()
	l.segs[id] = s
	l.mu.Unlock()
	if err != nil {
		s.sealed.Store(true) // collected like any other
		return nil, fmt.Errorf("vlog: create %s: %w", path, err)
	}
	l.active = s
	return s, nil
}

// Seal ends the segment being written, if it holds entries: it becomes
// collectable once its pins are released, and the next entry starts a new
// segment. For a log that has stopped growing and whose newest entries
// are garbage.
func (l *Log) Seal() {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.active != nil && l.active.size.Load() > headerSize {
		l.seal(l.active)
	}
}

func (l *Log) seal(s *segment) {
	s.sealed.Store(true)
	if l.active == s {
		l.active = nil
	}
}

func (l *Log) syncDir() error {
	d, err := l.fs.OpenDir(l.dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// acquire returns segment id with a reference the caller releases.
func (l *Log) acquire(id uint32) (*segment, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	s := l.segs[id]
	if s == nil {
		return nil, fmt.Errorf("%w: %s", ErrGone, l.fs.PathJoin(l.dir, fmt.Sprintf("%08d%s", id, suffix)))
	}
	s.refs.Add(1)
	return s, nil
}

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.f.Close()
	}
}

// Sync makes the entry at ref and every entry before it in its segment
// durable. Concurrent callers share one fsync (group commit).
func (l *Log) Sync(ref codec.Ref) error {
	s, err := l.acquire(ref.Segment)
	if err != nil {
		return err
	}
	defer s.release()
	end := int64(ref.Offset) + int64(ref.Length)
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= end {
		return nil
	}
	upTo := s.size.Load()
	if err := s.f.SyncData(); err != nil {
		return fmt.Errorf("vlog: sync %s: %w", s.path, err)
	}
	s.synced = upTo
	return nil
}

// Read appends the stored value that ref points at to dst[:0] (reusing
// its room) and returns it, after checking the entry's checksum, length
// and key against ref and key.
func (l *Log) Read(dst []byte, ref codec.Ref, key []byte) ([]byte, error) {
	s, err := l.acquire(ref.Segment)
	if err != nil {
		return nil, err
	}
	defer s.release()
	if int64(ref.Offset) < headerSize || ref.Length < entryHeader || int64(ref.Offset)+int64(ref.Length) > s.size.Load() {
		return nil, s.corrupt(ref.Offset, "a reference of %d bytes past the segment's %d", ref.Length, s.size.Load())
	}
	buf := slices.Grow(dst[:0], int(ref.Length))[:ref.Length]
	if n, err := s.f.ReadAt(buf, int64(ref.Offset)); n < len(buf) {
		return nil, s.corrupt(ref.Offset, "read %d of %d bytes: %v", n, len(buf), err)
	}
	k, v, sum, err := parseEntry(buf)
	if err != nil {
		return nil, s.corrupt(ref.Offset, "%v", err)
	}
	if sum != ref.Sum || entryHeader+len(k)+len(v) != len(buf) {
		return nil, s.corrupt(ref.Offset, "the entry does not match its reference (checksum %#08x, want %#08x)", sum, ref.Sum)
	}
	if string(k) != string(key) {
		return nil, s.corrupt(ref.Offset, "the entry is another key's")
	}
	return v, nil
}

// parseEntry checks the entry at the start of b and returns its key, value
// and checksum.
func parseEntry(b []byte) (key, value []byte, sum uint32, err error) {
	if len(b) < entryHeader {
		return nil, nil, 0, fmt.Errorf("%d bytes, an entry is at least %d", len(b), entryHeader)
	}
	kl := int64(binary.LittleEndian.Uint32(b[4:]))
	vl := int64(binary.LittleEndian.Uint32(b[8:]))
	n := entryHeader + kl + vl
	if n > int64(len(b)) {
		return nil, nil, 0, fmt.Errorf("an entry of %d bytes in %d", n, len(b))
	}
	sum = binary.LittleEndian.Uint32(b)
	if got := crc32.Checksum(b[4:n], castagnoli); got != sum {
		return nil, nil, 0, fmt.Errorf("checksum mismatch: computed %#08x, stored %#08x", got, sum)
	}
	return b[entryHeader : entryHeader+kl], b[entryHeader+kl : n], sum, nil
}

func (s *segment) corrupt(off uint32, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, s.path, off, fmt.Sprintf(format, args...))
}

// Info describes a segment.
type Info struct {
	ID   uint32
	Path string
	Size int64
	// Collectable is set for a sealed segment with no entry waiting for
	// its record: Scan it, move what is still referenced, Remove it.
	Collectable bool
}

// Segments lists the segments, oldest first.
func (l *Log) Segments() []Info {
	l.mu.RLock()
	out := make([]Info, 0, len(l.segs))
	for _, s := range l.segs {
		out = append(out, Info{ID: s.id, Path: s.path, Size: s.size.Load(), Collectable: s.sealed.Load() && s.pending.Load() == 0})
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Scan calls fn for each entry of segment id in order, with its key, its
// stored value (both valid only during the call) and its Ref. It stops at
// the end of the written entries: a torn last entry (a crash while it was
// written, which nothing refers to) ends the scan quietly. Damage before
// the last entry is an error wrapping ErrCorrupt, after the entries before
// it were scanned.
func (l *Log) Scan(id uint32, fn func(key, stored []byte, ref codec.Ref) error) error {
	s, err := l.acquire(id)
	if err != nil {
		return err
	}
	defer s.release()
	size := s.size.Load()
	if size >= headerSize {
		m := make([]byte, headerSize)
		if n, _ := s.f.ReadAt(m, 0); n < len(m) || string(m) != magic {
			return s.corrupt(0, "not a value log segment")
		}
	}
	const chunk = 256 << 10
	var buf []byte
	off := headerSize
	for off+entryHeader <= size {
		var hdr [entryHeader]byte
		if n, err := s.f.ReadAt(hdr[:], off); n < entryHeader {
			return s.corrupt(uint32(off), "read %d of %d bytes: %v", n, entryHeader, err)
		}
		n := entryHeader + int64(binary.LittleEndian.Uint32(hdr[4:])) + int64(binary.LittleEndian.Uint32(hdr[8:]))
		if off+n > size {
			return nil // torn last entry
		}
		buf = slices.Grow(buf[:0], int(n))[:n]
		if r, err := s.f.ReadAt(buf, off); int64(r) < n {
			return s.corrupt(uint32(off), "read %d of %d bytes: %v", r, n, err)
		}
		k, v, sum, err := parseEntry(buf)
		if err != nil {
			if off+n == size {
				return nil // torn last entry
			}
			return s.corrupt(uint32(off), "%v", err)
		}
		if err := fn(k, v, codec.Ref{Segment: id, Offset: uint32(off), Length: uint32(n), Sum: sum}); err != nil {
			return err
		}
		off += n
		if cap(buf) > chunk {
			buf = nil
		}
	}
	return nil
}

// Remove deletes segment id, which must be collectable. Readers that hold
// it open finish their reads; later ones get ErrGone.
func (l *Log) Remove(id uint32) error {
	l.mu.Lock()
	s := l.segs[id]
	if s == nil || !s.sealed.Load() || s.pending.Load() != 0 {
		l.mu.Unlock()
		return fmt.Errorf("vlog: segment %d is not collectable", id)
	}
	delete(l.segs, id)
	l.mu.Unlock()
	err := l.fs.Remove(s.path)
	l.size.Add(-s.size.Load())
	s.release()
	if err != nil {
		return fmt.Errorf("vlog: remove %s: %w", s.path, err)
	}
	return nil
}

// Close closes the segments. Later calls give ErrClosed; Close twice is
// nil.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	segs := l.segs
	l.segs = map[uint32]*segment{}
	l.active = nil
	l.mu.Unlock()
	for _, s := range segs {
		s.release()
	}
	return nil
}
