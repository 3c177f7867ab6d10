package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/diskcache-go/diskcache/lru"
)

// The access clock's snapshot is 4-byte ticks, slot after slot, and a
// compressor sees their bytes interleaved: the high bytes of ticks written
// minutes apart are alike, the low bytes are not, and zeros (empty slots)
// sit between them. laneWriter regroups each accessBlock of the snapshot by
// byte lane (every first byte, then every second, ...), so that alike bytes
// are neighbours; laneReader puts them back. Measured on the snapshot of a
// 500,000-key store (4,194,304 slots, 2,200,072 of them set), 16 MiB:
// S2 2.83 MB in 22 ms, S2 by lanes 2.20 MB in 24 ms; on a full clock of
// 5,000,000 keys 10.9 and 9.7 MB. zstd by lanes took 1.49 MB (6.9 for the
// full clock) but 38-46 ms, which a Close of such a store waits for: its
// Close went from 30 to 43-50 ms. Not taken.

// laneWriter writes what is written to it to w regrouped by byte lane, a
// block of accessBlock bytes at a time; Close writes the last, shorter
// block. The snapshot's length is a multiple of 4, and so is every block.
type laneWriter struct {
	w        io.Writer
	buf, out []byte
}

func newLaneWriter(w io.Writer) *laneWriter {
	return &laneWriter{w: w, buf: make([]byte, 0, accessBlock), out: make([]byte, accessBlock)}
}

func (l *laneWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(l.buf[len(l.buf):cap(l.buf)], p)
		l.buf, p = l.buf[:len(l.buf)+k], p[k:]
		if len(l.buf) == cap(l.buf) {
			if err := l.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// Close writes the last block; it does not close w.
func (l *laneWriter) Close() error { return l.flush() }

func (l *laneWriter) flush() error {
	if len(l.buf)%4 != 0 {
		return fmt.Errorf("a snapshot block of %d bytes, not a multiple of 4", len(l.buf))
	}
	out := l.out[:len(l.buf)]
	toLanes(out, l.buf)
	l.buf = l.buf[:0]
	_, err := l.w.Write(out)
	return err
}

// laneReader reads what a laneWriter wrote to r, in its first order.
type laneReader struct {
	r       io.Reader
	buf, in []byte
	off     int
	done    bool
}

func newLaneReader(r io.Reader) *laneReader {
	return &laneReader{r: r, in: make([]byte, accessBlock), buf: make([]byte, 0, accessBlock)}
}

func (l *laneReader) Read(p []byte) (int, error) {
	if l.off == len(l.buf) {
		if l.done {
			return 0, io.EOF
		}
		n, err := io.ReadFull(l.r, l.in)
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			l.done = true // the last, shorter block
		case err != nil:
			return 0, err
		}
		if n%4 != 0 {
			return 0, fmt.Errorf("%w: a block of %d bytes, not a multiple of 4", lru.ErrBadSnapshot, n)
		}
		if n == 0 {
			return 0, io.EOF
		}
		l.buf = l.buf[:n]
		fromLanes(l.buf, l.in[:n])
		l.off = 0
	}
	k := copy(p, l.buf[l.off:])
	l.off += k
	return k, nil
}

// toLanes writes src (a multiple of 4 bytes) to dst by byte lane.
func toLanes(dst, src []byte) {
	n := len(src) / 4
	l0, l1, l2, l3 := dst[:n], dst[n:2*n], dst[2*n:3*n], dst[3*n:4*n]
	for i := range l0 {
		v := binary.LittleEndian.Uint32(src[4*i:])
		l0[i], l1[i], l2[i], l3[i] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
}

// fromLanes undoes toLanes.
func fromLanes(dst, src []byte) {
	n := len(src) / 4
	l0, l1, l2, l3 := src[:n], src[n:2*n], src[2*n:3*n], src[3*n:4*n]
	for i := range l0 {
		v := uint32(l0[i]) | uint32(l1[i])<<8 | uint32(l2[i])<<16 | uint32(l3[i])<<24
		binary.LittleEndian.PutUint32(dst[4*i:], v)
	}
}
