package engine

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// faultFS is Pebble's error-injecting file system (errorfs) with one gap
// filled: errorfs does not wrap the file that ReuseForWrite returns, and
// Pebble recycles its WAL files, so most WAL writes would escape it.
type faultFS struct {
	*errorfs.FS
	inj errorfs.Injector
}

func newFaultFS(inj errorfs.Injector) faultFS {
	return faultFS{FS: errorfs.Wrap(vfs.Default, inj), inj: inj}
}

func (fs faultFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, path: newname, inj: fs.inj}, nil
}

// faultFile injects errors into the writes, reads and syncs of a file.
type faultFile struct {
	vfs.File
	path string
	inj  errorfs.Injector
}

func (f *faultFile) op(kind errorfs.OpKind, off int64) error {
	return f.inj.MaybeError(errorfs.Op{Kind: kind, Path: f.path, Offset: off})
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.op(errorfs.OpFileWrite, 0); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.op(errorfs.OpFileWriteAt, off); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.op(errorfs.OpFileReadAt, off); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *faultFile) Sync() error {
	if err := f.op(errorfs.OpFileSync, 0); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultFile) SyncData() error {
	if err := f.op(errorfs.OpFileSyncData, 0); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *faultFile) SyncTo(n int64) (bool, error) {
	if err := f.op(errorfs.OpFileSyncTo, 0); err != nil {
		return false, err
	}
	return f.File.SyncTo(n)
}

// fileKind names the files a fault targets.
type fileKind string

const (
	anyFile      fileKind = ""
	walFile      fileKind = ".log"
	tableFile    fileKind = ".sst"
	manifestFile fileKind = "MANIFEST-"
)

func (k fileKind) matches(path string) bool {
	base := filepath.Base(path)
	switch k {
	case anyFile:
		return true
	case manifestFile:
		return strings.HasPrefix(base, string(k))
	}
	return strings.HasSuffix(base, string(k))
}

// opClass groups errorfs's operations the way a fault hits them.
type opClass int

const (
	writes opClass = iota // write, write-at, create, preallocate
	reads                 // read, read-at
	syncs                 // fsync, fdatasync, sync_file_range
)

func (c opClass) matches(k errorfs.OpKind) bool {
	switch c {
	case writes:
		return k == errorfs.OpFileWrite || k == errorfs.OpFileWriteAt || k == errorfs.OpCreate ||
			k == errorfs.OpFilePreallocate || k == errorfs.OpReuseForWrite
	case reads:
		return k == errorfs.OpFileRead || k == errorfs.OpFileReadAt
	default:
		return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
	}
}

// fault is an errorfs.Injector that a test switches on and off: while on,
// every operation of its class on its kind of file fails with errno.
type fault struct {
	mu    sync.Mutex
	on    bool
	class opClass
	kind  fileKind
	errno syscall.Errno
	hits  atomic.Int64
}

func (f *fault) set(class opClass, kind fileKind, errno syscall.Errno) {
	f.mu.Lock()
	f.on, f.class, f.kind, f.errno = true, class, kind, errno
	f.mu.Unlock()
}

func (f *fault) clear() {
	f.mu.Lock()
	f.on = false
	f.mu.Unlock()
}

func (f *fault) String() string { return "test fault" }

func (f *fault) MaybeError(op errorfs.Op) error {
	f.mu.Lock()
	on, class, kind, errno := f.on, f.class, f.kind, f.errno
	f.mu.Unlock()
	if !on || !class.matches(op.Kind) || !kind.matches(op.Path) {
		return nil
	}
	f.hits.Add(1)
	return &os.PathError{Op: "injected", Path: op.Path, Err: errno}
}
