package engine

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The fsyncs of Pebble's Open that the default mode leaves out.
//
// Pebble's Open of a store that exists makes eight: the cache directory
// (the store's parent, in case Open just created the store), the table it
// flushes the replayed log into and the directory, a new manifest, its
// marker and the directory, the directory again for the new log, and the
// OPTIONS file and the directory after its rename. At 0.3-0.6 ms each on
// this VM they were most of an Open of a small cache, and an Open is most
// of what a process that sets a key and exits pays (benchmarks W8).
//
// In the default mode four guard nothing that mode promises:
//   - the parent's sync makes the store's entry durable, which the Open
//     that created it already did;
//   - the new log's entry: its writes are never synced while it is the
//     newest log, so a power cut may lose it whole whatever its entry; by
//     the time it is an older log (the first switch to the next one), the
//     sync of the directory that switch makes has made its entry durable;
//   - the OPTIONS file and its rename: Pebble reads the newest OPTIONS only
//     to check that the comparer and the log's directory did not change;
//     an Open that fails on one the power cut short removes it and tries
//     again (openPebbleDB); an empty one, or none, Pebble accepts.
//
// So while Pebble opens, a directory's sync is made only if something that
// must survive a power cut (a table, a manifest, a marker, a directory)
// was created in it since its last sync during this Open, and the OPTIONS
// file is not synced. The table's and the manifest's syncs stay, and with
// them the order Pebble needs (a table on disk before the manifest that
// names it). After Open every sync is made as before. With Sync nothing of
// this applies (processSafeFS is the default mode's file system).
type openSyncs struct {
	on    atomic.Bool
	mu    sync.Mutex
	dirty map[string]bool // directories with an entry that matters, created since their last sync
}

// begin starts an Open; the function it returns ends it.
func (o *openSyncs) begin() func() {
	o.mu.Lock()
	o.dirty = make(map[string]bool)
	o.mu.Unlock()
	o.on.Store(true)
	return func() { o.on.Store(false) }
}

// created notes that name was created (or renamed or linked to) in its
// directory. Logs and OPTIONS files do not count.
func (o *openSyncs) created(name string) {
	if !o.on.Load() || strings.HasSuffix(name, ".log") || isOptions(name) {
		return
	}
	o.mu.Lock()
	o.dirty[filepath.Clean(filepath.Dir(name))] = true
	o.mu.Unlock()
}

// mustSync reports whether a sync of the directory dir is needed, and
// takes it as made.
func (o *openSyncs) mustSync(dir string) bool {
	if !o.on.Load() {
		return true
	}
	dir = filepath.Clean(dir)
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.dirty[dir]
	delete(o.dirty, dir)
	return d
}

func (fs processSafeFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return openSyncDir{f, &fs.openSyncs, name}, nil
}

func (fs processSafeFS) MkdirAll(dir string, perm os.FileMode) error {
	// Each directory MkdirAll creates is an entry of its parent.
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fs.FS.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		made = append(made, d)
	}
	if err := fs.FS.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, d := range made {
		fs.created(d)
	}
	return nil
}

func (fs processSafeFS) Rename(oldname, newname string) error {
	if err := fs.FS.Rename(oldname, newname); err != nil {
		return err
	}
	fs.created(newname)
	return nil
}

func (fs processSafeFS) Link(oldname, newname string) error {
	if err := fs.FS.Link(oldname, newname); err != nil {
		return err
	}
	fs.created(newname)
	return nil
}

// openSyncDir is a directory whose sync during Open is made only when
// needed (openSyncs.mustSync).
type openSyncDir struct {
	vfs.File
	syncs *openSyncs
	name  string
}

func (d openSyncDir) Sync() error {
	if !d.syncs.mustSync(d.name) {
		return nil
	}
	return d.File.Sync()
}

// isOptionsTemp reports whether name is the temporary file Pebble writes
// the OPTIONS into; it writes no other temporary file.
func isOptionsTemp(name string) bool {
	b := filepath.Base(name)
	return strings.HasPrefix(b, "temporary.") && strings.HasSuffix(b, ".dbtmp")
}

func isOptions(name string) bool { return strings.HasPrefix(filepath.Base(name), "OPTIONS-") }

// openPebbleDB opens Pebble on path. An Open that fails on the newest
// OPTIONS file because a power cut left it torn, which the default mode
// allows (it does not sync it, openSyncs), removes it and tries again:
// Pebble reads it only to check its comparer and log directory. Looked for
// only when Open fails, it costs a good Open nothing.
func openPebbleDB(path string, po *pebble.Options, log *slog.Logger) (*pebble.DB, error) {
	db, err := pebble.Open(path, po)
	if err == nil {
		return db, nil
	}
	torn, terr := dropTornOptions(po.FS, path)
	if terr != nil || torn == "" {
		return nil, err
	}
	log.Info("diskcache: removed an OPTIONS file a power cut left incomplete", "file", torn)
	return pebble.Open(path, po)
}

// dropTornOptions removes the newest OPTIONS file of the store at path if
// it is torn (tornOptions). It reports the file it removed.
func dropTornOptions(fsys vfs.FS, path string) (string, error) {
	torn, err := tornOptions(fsys, path)
	if err != nil || torn == "" {
		return "", err
	}
	if err := fsys.Remove(fsys.PathJoin(path, torn)); err != nil {
		return "", err
	}
	return torn, nil
}

// tornOptions returns the name of the newest OPTIONS file of the store at
// path if it is torn: it holds a NUL byte or does not end its last line.
// Pebble writes it whole, ending with a newline; an empty one it reads as
// no options.
func tornOptions(fsys vfs.FS, path string) (string, error) {
	names, err := fsys.List(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil // a new store
	} else if err != nil {
		return "", err
	}
	newest, num := "", uint64(0)
	for _, n := range names {
		if d, ok := strings.CutPrefix(n, "OPTIONS-"); ok {
			if k, err := strconv.ParseUint(d, 10, 64); err == nil && k >= num {
				newest, num = n, k
			}
		}
	}
	if newest == "" {
		return "", nil
	}
	f, err := fsys.Open(fsys.PathJoin(path, newest))
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	data := make([]byte, fi.Size())
	n, err := f.ReadAt(data, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	data = data[:n] // a file that shrank under the read reads as cut short
	if len(data) == 0 || (data[len(data)-1] == '\n' && bytes.IndexByte(data, 0) < 0) {
		return "", nil
	}
	return newest, nil
}

// hiddenFS hides one file of a directory from List, which is how Pebble's
// Open finds the files it reads: Check opens a store whose torn OPTIONS
// file the next Open will remove as if it were gone already.
type hiddenFS struct {
	vfs.FS
	dir, name string
}

func (h hiddenFS) List(dir string) ([]string, error) {
	names, err := h.FS.List(dir)
	if err != nil || filepath.Clean(dir) != filepath.Clean(h.dir) {
		return names, err
	}
	return slices.DeleteFunc(names, func(n string) bool { return n == h.name }), nil
}
