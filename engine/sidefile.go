package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Side files hold state the cache keeps beside Pebble rather than in it:
// the access clock's snapshot (accessFile) and the presence filter
// (presenceFile), both in store/. They are written whole at Close, never
// through Pebble: a 16 MiB clock snapshot written as one Pebble value cost
// a 32 MiB batch, a 16 MiB WAL record that the next Open replayed and
// flushed, ~150 MB of transient memory and ~0.4 s at Close.
//
// A file of the size it had is overwritten in place; another is written
// beside and renamed. A new file costs ext4 a few tenths of a millisecond
// (a CPU profile of W8's Open + Set + Close loop: 2.6 ms of a 6 ms cycle
// in openat, two of the files ours), and a store's side files mostly keep
// their size from one Close to the next. Only the owner reads them, at
// Open, so no reader meets a file half written; after a crash in the
// middle of a write the file fails its checksum and is done without.
//
// A side file is never synced. Each one is a hint the store can do
// without, and it says whether it can be trusted: a trailing CRC-32C catches
// a file cut short or left with zeros by a power cut, and the presence
// filter also carries the id of the clean state it belongs to (keystate.go),
// so a stale one is never used.
//
// Layout: an 8-byte magic naming the file's kind and version, the body,
// then the CRC-32C of the body, little-endian.
const sideTrailer = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeSideFile writes magic, what body writes (size bytes), and the
// checksum to path: over the file in place if it has that size, else
// through a temporary file renamed into place. A size of -1 (a body of
// unknown size, compressed) always takes the second way.
func writeSideFile(fs vfs.FS, path, magic string, size int64, body func(io.Writer) error) (err error) {
	if fi, serr := fs.Stat(path); serr == nil && size >= 0 && fi.Size() == int64(len(magic))+size+sideTrailer {
		return overwriteSideFile(fs, path, magic, size, body)
	}
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			fs.Remove(tmp)
		}
	}()
	_, err = writeSide(f, magic, body)
	if err == nil {
		// Remove the old file first: ext4 (auto_da_alloc) starts writing
		// out a file renamed over another at once, which cost a third of
		// a millisecond at every Close. Between the two steps there is no
		// file, which a reader takes as a file it cannot use.
		if rerr := fs.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// overwriteSideFile is writeSideFile over a file of the same size. A write
// that fails, or that body makes another size, removes the file: it would
// fail its checksum anyway, and the next Open learns so at once.
func overwriteSideFile(fs vfs.FS, path, magic string, size int64, body func(io.Writer) error) (err error) {
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			fs.Remove(path)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	n, err := writeSide(f, magic, body)
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes of body, %d expected", n, size)
	}
	return err
}

// writeSide writes magic, what body writes and the checksum of the latter
// to f from its start, closes f, and returns the bytes body wrote.
func writeSide(f vfs.File, magic string, body func(io.Writer) error) (int64, error) {
	sum := crc32.New(castagnoli)
	w := &countingWriter{w: io.MultiWriter(f, sum)}
	_, err := io.WriteString(f, magic)
	if err == nil {
		err = body(w)
	}
	if err == nil {
		_, err = f.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return w.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readSideFile reads path, written by writeSideFile with the same magic,
// handing its body, of n bytes, to body. It fails if the file is missing,
// of another kind, or damaged; body's result counts only when the checksum
// matches, which readSideFile checks once body has read the whole body.
func readSideFile(fs vfs.FS, path, magic string, body func(r io.Reader, n int64) error) error {
	return readSideFileOf(fs, path, []string{magic}, func(r io.Reader, n int64, _ string) error { return body(r, n) })
}

// readSideFileOf is readSideFile of a file of any of the kinds magics name
// (all of one length), telling body which.
func readSideFileOf(fs vfs.FS, path string, magics []string, body func(r io.Reader, n int64, magic string) error) error {
	magic := magics[0]
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	n := fi.Size() - int64(len(magic)) - sideTrailer
	if n < 0 {
		return fmt.Errorf("%s: %w: %d bytes", path, errBadSideFile, fi.Size())
	}
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(f, head); err != nil || !slices.Contains(magics, string(head)) {
		return fmt.Errorf("%s: %w: not a %q file", path, errBadSideFile, magic)
	}
	sum := crc32.New(castagnoli)
	lr := &io.LimitedReader{R: f, N: n}
	if err := body(io.TeeReader(lr, sum), n, string(head)); err != nil {
		return fmt.Errorf("%s: %w: %w", path, errBadSideFile, err)
	}
	if lr.N != 0 {
		return fmt.Errorf("%s: %w: %d bytes of body, %d left unread", path, errBadSideFile, n, lr.N)
	}
	var t [sideTrailer]byte
	if _, err := io.ReadFull(f, t[:]); err != nil {
		return fmt.Errorf("%s: %w: %w", path, errBadSideFile, err)
	}
	if binary.LittleEndian.Uint32(t[:]) != sum.Sum32() {
		return fmt.Errorf("%s: %w: checksum mismatch", path, errBadSideFile)
	}
	return nil
}

// errBadSideFile marks a side file that cannot be used: the state it held
// is rebuilt (the filter) or done without (the clock).
var errBadSideFile = fmt.Errorf("%w: damaged side file", ErrCorrupt)
